"""The inside of the mouth: cavity, upper teeth fixed to the skull, lower teeth and tongue on the jaw.

Everything is prepared at rig time as RGBA layers in the crop's coordinates, placed where they
would sit in the photo; per frame, the upper layer moves with the head alone and the lower layer
with the head and the jaw (affine warps of small patches), and the result is shown only inside the
deformed inner-lip outline, so the lips always stay in front.

Teeth: if the photo shows its own teeth, they are reused. Otherwise real photographic teeth are
cut from `skimage.data.astronaut()` (a public-domain NASA portrait of Eileen Collins smiling,
shipped inside scikit-image), scaled to this mouth and colour-matched to this face's lighting.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..face import topology as topo

OPEN_PHOTO_GAP = 0.06  # inner-lip gap (x face scale) above which the photo's own mouth is reused
OWN_OPENING_START = 0.012  # x face scale: lips parted less than this show no interior (a seam)


@dataclass
class TeethSample:
    """Photographic upper teeth: rgb (h, w, 3) float32, alpha (h, w) float32, skin (3,) reference colour."""

    rgb: np.ndarray
    alpha: np.ndarray
    skin: np.ndarray


@functools.lru_cache(maxsize=1)
def reference_teeth() -> TeethSample:
    """Upper teeth cut from skimage's astronaut portrait (run once per process)."""
    import skimage.data

    from ..face.tracking import FaceTracker
    img = skimage.data.astronaut()
    with FaceTracker(max_faces=1) as tr:
        lm = tr.landmarks(img)[0].landmarks
    inner = lm[topo.LIPS_INNER, :2]
    x0, y0 = np.floor(inner.min(0)).astype(int)
    x1, y1 = np.ceil(inner.max(0)).astype(int) + 1
    patch = img[y0:y1, x0:x1].astype(np.float32)
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((inner - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    # teeth = bright, low-saturation pixels inside the mouth; keep the upper row (above the gap)
    hsv = cv2.cvtColor(patch.astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    bright = np.clip((hsv[..., 2] - 110) / 50, 0, 1) * np.clip((150 - hsv[..., 1]) / 60, 0, 1)
    alpha = cv2.GaussianBlur(bright * (mask / 255.0), (3, 3), 0)
    skin_pts = lm[[50, 280, 205, 425], :2].astype(int)
    skin = np.array([img[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(0) for x, y in skin_pts]).mean(0)
    return TeethSample(patch, alpha.astype(np.float32), skin.astype(np.float32))


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
    cavity = np.clip(lip * np.float32([0.32, 0.16, 0.16]), 0, 255).astype(np.float32)
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
        upper, lower = _reference_layers(rig, skin, centre, width, F)
    return MouthModel(cavity, upper, lower, upper_anchors, lower_anchors,
                      lm[upper_anchors, :2].astype(np.float32), lm[lower_anchors, :2].astype(np.float32), own,
                      float(F))


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
    return Layer(patch.astype(np.float32), ua, (x0, y0)), Layer(patch.astype(np.float32), la, (x0, y0))


def _teeth_split(patch: np.ndarray, up: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Per column of the photo's open mouth, the row between the upper and lower teeth (w,).

    The darkest row in the lower two thirds of the opening (the gap between the rows of teeth,
    or the dark mouth behind them); where it is not clearly darker than the teeth above, only
    upper teeth show and the split is the lower lip itself.
    """
    lum = cv2.GaussianBlur(patch.mean(2), (5, 5), 0)
    h, w = lum.shape
    split = lo.copy()
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
    # smooth along the mouth so the split does not zig-zag between columns
    return cv2.GaussianBlur(split.astype(np.float32)[None, :], (1, 9), 0)[0]


def _sorted_xy(c: np.ndarray):
    o = np.argsort(c[:, 0])
    return c[o, 0], c[o, 1]


def _reference_layers(rig, skin, centre, width, F) -> tuple[Layer, Layer]:
    ref = reference_teeth()
    # colour-match: scale by the ratio of skin colours (lighting), softened towards neutral
    gain = np.clip((skin + 10) / (ref.skin + 10), 0.35, 1.5) ** 0.7
    rgb = ref.rgb * gain[None, None, :]
    # upper row: the reference is scaled so its teeth span the mouth's inner width
    tw = width * 0.98
    s = tw / ref.rgb.shape[1]
    th = max(4, int(round(ref.rgb.shape[0] * s)))
    tw_i = max(4, int(round(tw)))
    up_rgb = cv2.resize(rgb, (tw_i, th), interpolation=cv2.INTER_AREA)
    up_a = cv2.resize(ref.alpha, (tw_i, th), interpolation=cv2.INTER_AREA)
    # shade towards the corners (teeth curve away into the dark)
    xs = np.linspace(-1, 1, tw_i)[None, :]
    shade = (1.0 - 0.55 * np.abs(xs) ** 2.2).astype(np.float32)
    up_rgb = up_rgb * shade[..., None]
    up_a = up_a * np.clip(1.25 - np.abs(xs) ** 3, 0, 1)
    # the top of the teeth hides under the upper lip
    ux0 = int(round(centre[0] - tw_i / 2))
    uy0 = int(round(rig.landmarks[13, 1] - 0.42 * th))
    upper = Layer(up_rgb.astype(np.float32), up_a.astype(np.float32), (ux0, uy0))
    # lower row: the same texture flipped, narrower and in more shadow, below the upper row
    lw = max(4, int(round(tw_i * 0.82)))
    lh = max(3, int(round(th * 0.8)))
    lo_rgb = cv2.resize(rgb[::-1], (lw, lh), interpolation=cv2.INTER_AREA)
    lo_a = cv2.resize(ref.alpha[::-1], (lw, lh), interpolation=cv2.INTER_AREA)
    xs = np.linspace(-1, 1, lw)[None, :]
    lo_rgb = lo_rgb * (0.78 * (1.0 - 0.55 * np.abs(xs) ** 2.2))[..., None]
    lo_a = lo_a * np.clip(1.25 - np.abs(xs) ** 3, 0, 1)
    # tongue: a soft dark-red mound behind the lower teeth
    tongue_h = lh * 2
    canvas_rgb = np.zeros((tongue_h, lw, 3), np.float32)
    canvas_a = np.zeros((tongue_h, lw), np.float32)
    yy, xx = np.mgrid[0:tongue_h, 0:lw].astype(np.float32)
    ell = ((xx - lw / 2) / (lw * 0.42)) ** 2 + ((yy - tongue_h * 0.75) / (tongue_h * 0.55)) ** 2
    t_a = np.clip((1.0 - ell) * 3, 0, 1)
    lip_like = skin * np.float32([0.72, 0.38, 0.38])
    tshade = np.clip(0.45 + 0.4 * (yy / tongue_h), 0, 1)[..., None]
    canvas_rgb[:] = lip_like * tshade
    canvas_a[:] = t_a
    # lower teeth drawn over the tongue at the top of the canvas
    ta = lo_a[..., None]
    canvas_rgb[:lh] = canvas_rgb[:lh] * (1 - ta) + lo_rgb * ta
    canvas_a[:lh] = np.maximum(canvas_a[:lh], lo_a)
    lx0 = int(round(centre[0] - lw / 2))
    ly0 = int(round(rig.landmarks[13, 1] + 0.12 * th))   # lower incisors just behind the upper ones
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
    # cavity: darkest in the middle depth, lighter near the lips
    dist = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    depth = np.clip(dist / max(2.0, float(dist.max())), 0, 1)[..., None]
    out = mouth.cavity[None, None, :] * (1.35 - 0.6 * depth)
    for layer, src, dst in ((mouth.lower, mouth.anchor_xy_lower, lower_dst),
                            (mouth.upper, mouth.anchor_xy_upper, upper_dst)):
        rgb, a = _warp_layer(layer, src, dst, lo, shape)
        a = a[..., None]
        out = out * (1 - a) + rgb * a
    if not mouth.own_teeth:
        # lip shadow: the upper lip shades the top of the opening
        yy = np.arange(shape[0], dtype=np.float32)[:, None]
        top = np.interp(np.arange(shape[1]) + lo[0], *_sorted_xy(deformed_lm[topo.LIPS_INNER_UPPER])) - lo[1]
        shadow = np.clip((yy - top[None, :]) / max(2.0, 0.06 * shape[1]), 0, 1) * 0.35 + 0.65
        out = out * shadow[..., None]
    region = frame[lo[1]:hi[1], lo[0]:hi[0]]
    m = mask.astype(np.float32)[..., None] * (visible / 255.0)
    region[:] = np.clip(region + m * (out - region) + 0.5, 0, 255).astype(np.uint8)
