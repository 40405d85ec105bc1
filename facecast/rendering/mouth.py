"""The inside of the mouth: cavity, upper teeth fixed to the skull, lower teeth and tongue on the jaw.

Everything is prepared at rig time as RGBA layers in the crop's coordinates, placed where they
would sit in the photo; per frame, the upper layer moves with the head alone and the lower layer
with the head and the jaw (affine warps of small patches), and the result is shown only inside the
deformed inner-lip outline (`opening_alpha`: feathered over 1-2 px inside it), so the lips always
stay in front and keep their thickness.

Colours (`palette`) come from the image's own skin and lips: a grayscale or sepia photo gets a
grayscale or sepia mouth; the lips' tint is taken halfway, so lipstick does not colour the throat.
The cavity is lighter near the lips (the wet lining) and darkens with depth; the upper lip shades
what lies under it.

Teeth: if the photo shows its own teeth, they are reused (and follow a raised upper lip part of
the way down). Otherwise two distinct rows are drawn (`_tooth_row`): upper teeth under a
scalloped gum line, narrower lower teeth on the jaw, each tooth rounded, shaded towards the
mouth's corners and separated by a faint line, with a soft specular on the front teeth; a domed,
shaded tongue with a highlight and a median groove lies behind the lower teeth.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.ndimage

from ..face import topology as topo

OPEN_PHOTO_GAP = 0.06  # inner-lip gap (x face scale) above which the photo's own mouth is reused
OWN_TEETH_DROP = 0.6    # x how far the photo's raised upper lip comes down at rest: how far its own teeth are lowered
OWN_OPENING_START = 0.012  # x face scale: lips parted less than this show no interior (a seam)


@dataclass
class Layer:
    """An RGBA patch in crop coordinates: rgb (h, w, 3) float32, alpha (h, w) float32, origin (x0, y0)."""

    rgb: np.ndarray
    alpha: np.ndarray
    origin: tuple[int, int]


@dataclass
class MouthModel:
    """Mouth interior of one rig: cavity colour and the upper (skull) and lower (jaw) layers.

    upper_anchors / lower_anchors: 3 landmark ids whose motion places each layer.
    """

    cavity: np.ndarray
    upper: Layer
    lower: Layer
    upper_anchors: list[int]
    lower_anchors: list[int]
    anchor_xy_upper: np.ndarray
    anchor_xy_lower: np.ndarray
    own_teeth: bool
    face_scale: float = 0.0
    palette: Palette | None = None
    lip_ref: np.ndarray | None = None  # (2,) the photo's upper inner lip (landmark 13)
    teeth_drop: float = 0.0            # x how far that lip has come down: how far the upper layer follows
    softness: float = 1.0              # how much the crop is enlarged from the photo: drawn edges soften as much


def _skin_colour(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    pts = lm[[50, 280, 205, 425], :2].astype(int)
    s = image.shape[0]
    vals = [image[np.clip(y - 2, 0, s - 1):y + 3, np.clip(x - 2, 0, s - 1):x + 3].reshape(-1, 3).mean(0)
            for x, y in pts]
    return np.mean(vals, axis=0).astype(np.float32)


def build_mouth(rig) -> MouthModel:
    lm = rig.landmarks
    F = rig.face_scale
    img = rig.image.astype(np.float32)
    skin = _skin_colour(rig.image, lm)
    lip_px = img[rig.masks["lips"] > 128]
    lip = lip_px.mean(0) if len(lip_px) else skin * np.float32([0.8, 0.5, 0.5])
    pal = palette(skin, lip)
    cavity = pal.mucosa
    # anchors far from collinear: mouth corners + nose tip (skull), lower lip + chin (jaw)
    upper_anchors = [61, 291, 1]
    lower_anchors = [84, 314, 152]
    # where the teeth sit: centred between the mouth's inner corners, just behind the lips
    left, right = lm[308, :2], lm[78, :2]
    centre = (left + right) / 2
    width = float(np.linalg.norm(left - right))
    own = rig.mouth_gap() > OPEN_PHOTO_GAP
    if own:
        upper, lower = _own_layers(rig)
    else:
        upper, lower = _reference_layers(rig, skin, centre, width, F, pal)
    # a crop enlarged from a small photo is soft; what is drawn into it is made as soft (a photo's
    # own mouth already is)
    soft = 1.0 if own else float(np.clip(rig.size / max(rig.crop_box[2], 1e-6), 1.0, 3.0))
    if soft > 1.05:
        s = 0.6 * float(np.sqrt(soft * soft - 1.0))
        for layer in (upper, lower):
            layer.rgb = cv2.GaussianBlur(layer.rgb, (0, 0), s)
            layer.alpha = cv2.GaussianBlur(layer.alpha, (0, 0), s)
    return MouthModel(cavity, upper, lower, upper_anchors, lower_anchors,
                      lm[upper_anchors, :2].astype(np.float32), lm[lower_anchors, :2].astype(np.float32), own,
                      float(F), pal, lm[13, :2].astype(np.float32), OWN_TEETH_DROP if own else 0.0, soft)


def _own_layers(rig) -> tuple[Layer, Layer]:
    """The photo's visible mouth interior, split between the rows of teeth into skull and jaw halves.

    The interior is extended beyond the photo's opening (inpainted, fading into shadow), so a
    smile or an opening wider than the photo's shows more mouth, not a hole.
    """
    lm = rig.landmarks
    S = rig.size
    inner = lm[topo.LIPS_INNER, :2]
    x0, y0 = np.floor(inner.min(0)).astype(int) - 2
    x1, y1 = np.ceil(inner.max(0)).astype(int) + 3
    mx, my = int(0.3 * (x1 - x0)) + 2, int(0.6 * (y1 - y0)) + 2
    x0, y0, x1, y1 = max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, S), min(y1 + my, S)
    photo = rig.image[y0:y1, x0:x1]
    h, w = photo.shape[:2]
    known = np.zeros((h, w), np.uint8)
    cv2.fillPoly(known, [np.round((inner - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    known = cv2.dilate(known, np.ones((5, 5), np.uint8))   # covers the outline's anti-aliased edge
    filled = cv2.inpaint(photo, 255 - known, 5, cv2.INPAINT_TELEA).astype(np.float32)
    dist = cv2.distanceTransform(255 - known, cv2.DIST_L2, 3)
    shade = 0.5 + 0.5 * np.exp(-dist / max(2.0, 0.12 * w))
    patch = np.where(known[..., None] > 0, photo.astype(np.float32), filled * shade[..., None])
    xs = np.arange(w) + x0
    up = np.interp(xs, *_sorted_xy(lm[topo.LIPS_INNER_UPPER, :2]))
    lo = np.interp(xs, *_sorted_xy(lm[topo.LIPS_INNER_LOWER, :2]))
    split = _teeth_split(patch, up - y0, lo - y0) + y0
    yy = np.arange(h)[:, None] + y0
    # the lower (jaw) half is opaque wherever the upper half is not fully opaque, so the two
    # together reproduce the photo exactly when nothing moves
    ua = np.clip(split[None, :] - yy + 0.5, 0, 1).astype(np.float32)
    la = np.clip(yy - (split[None, :] - 3.0), 0, 1).astype(np.float32)
    # beyond the photo's opening the layers fade into the cavity, so an opening much wider than
    # the photo's shows dark mouth around the photo's teeth, not the edges of an inpainted patch
    fade = np.clip(1.0 - dist / max(2.0, 0.05 * w), 0.0, 1.0).astype(np.float32)
    ua *= fade
    la *= fade
    return (Layer(patch.astype(np.float32), ua, (x0, y0)),
            Layer(patch.astype(np.float32), la, (x0, y0)))


def _teeth_split(patch: np.ndarray, up: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Per column of the photo's open mouth, the row between the upper and lower teeth (w,).

    The darkest row in the lower two thirds of the opening (the gap between the rows of teeth,
    or the dark mouth behind them), where it is clearly darker than the teeth above; columns
    without such a row take the split of the columns beside them (it is one curve across the
    mouth: a column that fell back to the lower lip drew a spike of upper layer down to it). Where
    no column has one, only upper teeth show and the split is the lower lip itself.
    """
    lum = cv2.GaussianBlur(patch.mean(2), (5, 5), 0)
    h, w = lum.shape
    split = lo.copy()
    found = np.zeros(w, bool)
    for x in range(w):
        a, b = int(np.ceil(up[x])), int(np.floor(lo[x]))
        if b - a < 3:
            continue
        col = lum[a:b + 1, x]
        start = int(0.35 * len(col))
        k = start + int(np.argmin(col[start:]))
        teeth = float(np.percentile(col[:max(start, 1)], 75))
        if col[k] < 0.7 * teeth:
            split[x] = a + k
            found[x] = True
    if found.any():
        xs = np.arange(w)
        split = np.clip(np.interp(xs, xs[found], split[found]), np.minimum(up, lo), lo)
    # one curve along the mouth: a median drops single columns that found another dark row (a
    # gap between two teeth), a Gaussian smooths the steps between whole rows
    split = scipy.ndimage.median_filter(split.astype(np.float32), size=9, mode="nearest")
    return cv2.GaussianBlur(split[None, :], (9, 1), 0)[0]


def _sorted_xy(c: np.ndarray):
    o = np.argsort(c[:, 0])
    return c[o, 0], c[o, 1]


def _tint(c: np.ndarray) -> np.ndarray:
    """A colour's hue and saturation as a multiplier around 1 (grey -> [1, 1, 1])."""
    c = np.maximum(np.asarray(c, np.float32), 1.0)
    return c / float(_luma(c))


def _luma(c) -> float:
    c = np.asarray(c, np.float32)
    return float(0.299 * c[..., 0] + 0.587 * c[..., 1] + 0.114 * c[..., 2])


@dataclass
class Palette:
    """The interior's colours, all from the image's own skin and lips: a grey photo gets a grey
    mouth, a sepia one a sepia mouth. Each is a luminance times a power of the lips' tint."""

    teeth: np.ndarray
    gum: np.ndarray
    mucosa: np.ndarray
    throat: np.ndarray
    tongue: np.ndarray
    gap: np.ndarray


def palette(skin: np.ndarray, lip: np.ndarray) -> Palette:
    ys = max(20.0, _luma(skin))
    t_skin = _tint(skin)
    # the inside of the mouth is redder than the skin, as the lips are; half the lips' own
    # difference from the skin is taken, so lipstick does not colour the throat
    t_lip = t_skin * (_tint(lip) / t_skin) ** 0.6

    def col(lum, tint, k):
        return np.clip(lum * ys * tint ** k, 0, 255).astype(np.float32)
    return Palette(teeth=np.minimum(col(1.35, t_skin, 0.6), 240).astype(np.float32), gum=col(0.62, t_lip, 1.5),
                   mucosa=col(0.75, t_lip, 1.7), throat=col(0.2, t_lip, 1.3), tongue=col(0.6, t_lip, 1.3),
                   gap=col(0.2, t_lip, 1.3))


# projected tooth widths from the middle of the arch outwards (central incisor first), arch units
UPPER_TEETH = (1.0, 0.78, 0.85, 0.75, 0.75, 0.75)
LOWER_TEETH = (0.62, 0.66, 0.75, 0.75, 0.78, 0.8)


def _tooth_row(w: int, h: int, widths, length, teeth, gum, gap, upper: bool, gum_h: int):
    """One row of teeth (w, h + gum_h): per column the tooth it lies on (the arch curves away, so
    teeth round it look narrower), each rounded, separated by a thin dark line, with its biting
    edge a little translucent and a soft specular on the front teeth; the gum is scalloped
    between them. upper: crowns hang down from the gum; otherwise they rise from it."""
    H = h + gum_h
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1            # -1..1 across the row
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    edges = edges / edges[-1]                                          # arch position 0..1 per side
    ang = np.arcsin(np.clip(np.abs(xs), 0, 0.999)) / np.arcsin(0.999)  # foreshortening round the arch
    k = np.clip(np.searchsorted(edges, ang, side="right") - 1, 0, len(widths) - 1)
    s = (ang - edges[k]) / np.maximum(edges[k + 1] - edges[k], 1e-6)  # 0..1 across the tooth
    c = 2 * s - 1
    lens = np.asarray(length, np.float32)[k] * h                        # crown length per column
    tip = np.where(k == 2, 0.06 * np.abs(c) + 0.12 * c ** 4, 0.2 * c ** 4)            # canines pointed, others rounded
    crown = lens * (1 - tip)
    base = gum_h * (0.25 + 0.75 * c ** 2)                                # scalloped gum line
    yy = np.arange(H, dtype=np.float32)[:, None]
    if upper:
        d_gum = yy - base[None, :]                      # px below the gum line
        d_edge = (gum_h + crown)[None, :] - yy          # px above the biting edge
    else:
        d_gum = (H - base)[None, :] - yy
        d_edge = yy - (H - gum_h - crown)[None, :]
    tooth_a = np.clip(d_edge + 0.5, 0, 1) * np.clip(d_gum + 0.5, 0, 1)
    rel = np.clip(1 - d_edge / np.maximum(crown, 1)[None, :], 0, 1)     # 0 at the gum, 1 at the edge
    shade = (1 - 0.3 * np.abs(c) ** 4)[None, :] * (0.84 + 0.16 * np.sin(np.pi * np.clip(rel, 0, 1) ** 0.8))
    shade = shade * (1 - 0.12 * np.clip((rel - 0.8) / 0.2, 0, 1))      # translucent biting edge
    shade = shade * (1 - 0.55 * np.abs(xs) ** 2.2)[None, :]            # teeth turn away into the dark
    spec = 0.18 * np.exp(-((c + 0.3) / 0.25) ** 2)[None, :] * np.exp(-((rel - 0.45) / 0.25) ** 2) * (k < 2)[None, :]
    rgb = teeth[None, None, :] * shade[..., None] + spec[..., None] * (255 - teeth)[None, None, :] * 0.8
    # a dark line between teeth, fainter on small teeth (a pixel-wide line would read as a grid)
    tooth_px = 0.5 * w * widths[0] / float(np.sum(widths))
    sep = np.clip((np.abs(c) - 0.88) / 0.12, 0, 1)[None, :, None] ** 2 * (0.4 * np.clip((tooth_px - 3) / 10, 0.25, 1))
    rgb = rgb * (1 - sep) + gap[None, None, :] * sep
    gum_rgb = gum[None, None, :] * (0.75 + 0.25 * np.clip(-d_gum / max(gum_h, 1), 0, 1))[..., None]
    gum_rgb = gum_rgb * (1 - 0.5 * np.abs(xs) ** 2)[None, :, None]
    out = rgb * tooth_a[..., None] + gum_rgb * (1 - tooth_a[..., None])
    alpha = np.maximum(tooth_a, np.clip(-d_gum + 0.5, 0, 1))
    alpha = alpha * np.clip(1.3 - np.abs(xs) ** 3, 0, 1)[None, :]
    return out.astype(np.float32), alpha.astype(np.float32)


def _reference_layers(rig, skin, centre, width, F, pal: Palette) -> tuple[Layer, Layer]:
    """Teeth for a photo that shows none: both rows drawn at rig time in the image's palette,
    where they sit behind the lips of the face at rest."""
    rest = rig.expression.rest_landmarks[:, :2] if getattr(rig, "expression", None) is not None else rig.landmarks[:, :2]
    seam = float((rest[13, 1] + rest[14, 1]) / 2)
    W = width
    # upper row: central incisors ~0.2 x the mouth's inner width long, with a gum line above
    tw = max(8, int(round(0.98 * W)))
    th = max(4, int(round(0.22 * W)))
    gh = max(2, int(round(0.1 * W)))
    up_rgb, up_a = _tooth_row(tw, th, UPPER_TEETH, (1.0, 0.85, 0.95, 0.8, 0.75, 0.7), pal.teeth, pal.gum,
                              pal.gap, True, gh)
    ux0 = int(round(centre[0] - tw / 2))
    uy0 = int(round(seam + 0.085 * W - th - gh))           # biting edge below the seam: lips parted in speech show it
    upper = Layer(up_rgb, up_a, (ux0, uy0))
    # lower row: narrower teeth, biting edge just behind the upper one, and the tongue behind it
    lw = max(8, int(round(0.8 * W)))
    lh = max(3, int(round(0.17 * W)))
    lgh = max(2, int(round(0.08 * W)))
    lo_rgb, lo_a = _tooth_row(lw, lh, LOWER_TEETH, (0.9, 0.9, 0.95, 0.8, 0.75, 0.7), pal.teeth * 0.9,
                              pal.gum, pal.gap, False, lgh)
    pad = max(2, int(round(0.14 * W)))                     # the tongue's back rises above the teeth's edge
    tongue_h = int(round(0.55 * W)) + pad
    tw2 = max(lw, int(round(0.85 * W)))
    canvas_rgb = np.zeros((tongue_h, tw2, 3), np.float32)
    canvas_a = np.zeros((tongue_h, tw2), np.float32)
    yy, xx = np.mgrid[0:tongue_h, 0:tw2].astype(np.float32)
    top = 0.2 * pad
    ex = (xx - tw2 / 2) / (tw2 * 0.44)
    ey = (yy - top) / (tongue_h - top)
    y_top = top + 0.3 * tongue_h * ex ** 2                  # a dome, falling away to the sides
    body = np.clip((yy - y_top) / 1.5 + 0.5, 0, 1) * np.clip((1 - np.abs(ex)) * 6, 0, 1)
    t_shade = (0.55 + 0.45 * np.exp(-(ey / 0.45) ** 2)) * (1 - 0.35 * ex ** 2)    # lit on top, dark round the sides
    groove = 1 - 0.12 * np.exp(-(ex / 0.06) ** 2) * np.clip(ey * 3, 0, 1)      # the median groove
    t_rgb = pal.tongue[None, None, :] * (t_shade * groove)[..., None]
    t_spec = 0.22 * np.exp(-((ex + 0.15) / 0.3) ** 2 - ((ey - 0.12) / 0.1) ** 2)
    t_rgb = t_rgb + t_spec[..., None] * (255 - pal.tongue)[None, None, :] * 0.6
    canvas_rgb[:] = t_rgb
    canvas_a[:] = body
    ox = (tw2 - lw) // 2
    la = lo_a[..., None]
    rows = slice(pad, pad + lh + lgh)
    sub = canvas_rgb[rows, ox:ox + lw]
    canvas_rgb[rows, ox:ox + lw] = sub * (1 - la) + lo_rgb * la
    canvas_a[rows, ox:ox + lw] = np.maximum(canvas_a[rows, ox:ox + lw], lo_a)
    lx0 = int(round(centre[0] - tw2 / 2))
    ly0 = int(round(seam - 0.08 * W)) - pad                          # lower edges just behind the upper teeth
    lower = Layer(canvas_rgb.astype(np.float32), canvas_a.astype(np.float32), (lx0, ly0))
    return upper, lower


def _warp_layer(layer: Layer, src_anchor: np.ndarray, dst_anchor: np.ndarray, lo: np.ndarray,
                shape: tuple[int, int]):
    src = (src_anchor - np.float32(layer.origin)).astype(np.float32)
    dst = (dst_anchor - lo).astype(np.float32)
    m = cv2.getAffineTransform(src, dst)
    rgb = cv2.warpAffine(layer.rgb, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.warpAffine(layer.alpha, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return rgb, a


def smooth_loop(pts: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Round a closed polygon (N, 2) by Chaikin corner cutting -> (N * 2**iterations, 2)."""
    p = np.asarray(pts, np.float32)
    for _ in range(iterations):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    return p


def opening_alpha(mask: np.ndarray, size: int, softness: float = 1.0) -> np.ndarray:
    """How much of the interior shows (h, w) float32 0..1, from the anti-aliased outline mask
    (uint8): a feathered edge bounded by the outline, fading in over 1-2 px inside it (wider at
    larger sizes) and reaching at most a pixel beyond it. softness: how much the crop was enlarged
    from its photo (the edge is as soft as the photo's own)."""
    sigma = float(np.clip(1.8 * size / 512, 0.8, 2.2)) * max(1.0, softness)
    soft = cv2.GaussianBlur(mask, (0, 0), sigma).astype(np.float32) / 255.0
    alpha = np.clip((soft - 0.3) / 0.7, 0, 1)
    return alpha * alpha * (3 - 2 * alpha)


def composite_mouth(frame: np.ndarray, mouth: MouthModel, deformed_lm: np.ndarray,
                    upper_dst: np.ndarray, lower_dst: np.ndarray, photo_gap: float) -> None:
    """Draw the mouth interior into `frame` (S, S, 3) uint8 in place.

    deformed_lm: (478, 2) final landmark positions (the lips); upper_dst / lower_dst: (3, 2)
    where the upper and lower anchors go (head motion alone / head and jaw); photo_gap: the
    photo's `topology.lip_gap_px`, so lips closed in the photo stay untouched until they part (and
    the photo's own opening, closed by the renderer, shows nothing of the interior: no line of
    teeth along the seam).
    """
    # the opening across the mouth (lips sheared sideways by a smile are still closed)
    across = deformed_lm[topo.MOUTH_CORNERS[1]] - deformed_lm[topo.MOUTH_CORNERS[0]]
    down = np.array([-across[1], across[0]]) / max(1e-6, float(np.hypot(*across)))
    pairs = topo.LIP_GAP_PAIRS
    gap = float(np.mean((deformed_lm[pairs[:, 1]] - deformed_lm[pairs[:, 0]]) @ down))
    if mouth.own_teeth:
        # the photo's own opening shows once the lips part by a little more than a seam
        start = max(0.5, OWN_OPENING_START * mouth.face_scale)
        visible = float(np.clip((gap - start) / max(1.5, start), 0.0, 1.0))
    else:
        visible = float(np.clip((gap - photo_gap) / 1.5, 0.0, 1.0))
    if visible <= 0.0:
        return
    S = frame.shape[0]
    poly = smooth_loop(deformed_lm[topo.LIPS_INNER])
    lo = np.clip(np.floor(poly.min(0)).astype(int) - 2, 0, S)
    hi = np.clip(np.ceil(poly.max(0)).astype(int) + 3, 0, S)
    if np.any(hi - lo < 3):
        return
    shape = (int(hi[1] - lo[1]), int(hi[0] - lo[0]))
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round((poly - lo) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    if int(mask.max()) < 8:
        return
    W = max(4.0, float(np.hypot(*across)))
    # depth: distance from the lips; the throat darkens towards the back, mucosa lines the rim
    dist = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    pal = mouth.palette
    near = np.exp(-dist / max(1.0, 0.08 * W))[..., None]
    deep = np.clip(dist / max(2.0, 0.3 * W), 0, 1)[..., None]
    out = pal.throat[None, None, :] + (pal.mucosa - pal.throat)[None, None, :] * np.maximum(near, 0.6 * (1 - deep))
    # the back of a wide-open mouth falls into darkness (openings under ~0.2 x the width do not reach it)
    back = np.clip((dist - 0.1 * W) / max(1.0, 0.15 * W), 0, 1)[..., None]
    out = out * (1 - 0.55 * back)
    if mouth.teeth_drop > 0.0:
        # a photo that shows its teeth has its upper lip raised; as the lip comes down over them,
        # the photo's upper teeth follow a part of the way (speakers show a little of their upper
        # teeth under the lip); the photo's own expression leaves them where they are
        m = cv2.getAffineTransform(np.ascontiguousarray(mouth.anchor_xy_upper, np.float32),
                                   np.ascontiguousarray(upper_dst, np.float32))
        ref = m[:, :2] @ mouth.lip_ref + m[:, 2]
        dy = float((deformed_lm[13] - ref) @ down)
        shift = mouth.teeth_drop * float(np.clip(dy, 0.0, 0.1 * mouth.face_scale))
        upper_dst = np.asarray(upper_dst, np.float32) + np.float32(shift) * down.astype(np.float32)
    for k, (layer, src, dst) in enumerate(((mouth.lower, mouth.anchor_xy_lower, lower_dst),
                                           (mouth.upper, mouth.anchor_xy_upper, upper_dst))):
        rgb, a = _warp_layer(layer, src, dst, lo, shape)
        a = a[..., None]
        out = out * (1 - a) + rgb * a
        if k == 0 and not mouth.own_teeth:
            out = out * (1 - 0.4 * back)      # the drawn tongue's back is in the mouth's shade too
    if not mouth.own_teeth:
        # occlusion: the upper lip shades what lies under it, the lips shade the rim and corners
        yy = np.arange(shape[0], dtype=np.float32)[:, None]
        top = np.interp(np.arange(shape[1]) + lo[0], *_sorted_xy(deformed_lm[topo.LIPS_INNER_UPPER])) - lo[1]
        under = np.clip((yy - top[None, :]) / max(2.0, 0.08 * W), 0, 1) ** 0.7
        rim = np.clip(dist / max(1.0, 0.05 * W), 0, 1)
        out = out * (0.5 + 0.5 * np.minimum(under, 0.7 + 0.3 * rim))[..., None]
    alpha = opening_alpha(mask, S, mouth.softness)
    region = frame[lo[1]:hi[1], lo[0]:hi[0]]
    m = alpha[..., None] * visible
    region[:] = np.clip(region + m * (out - region) + 0.5, 0, 255).astype(np.uint8)
