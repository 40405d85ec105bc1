"""Framing: where the portrait crop goes, how missing canvas is filled, the soft person matte and
the background behind the person.

Crop policy (`plan_crop`), in order, so that edge pixels are never smeared outwards:

1. A square of `CROP_SCALE` x face size, raised by `CROP_RAISE` x face size, centred on the face.
2. Shifted to stay inside the photo (the face box always stays inside the crop).
3. If it still does not fit, tightened down to `MIN_CROP_SCALE` x face size.
4. Only then does the crop run past the photo's edge; the missing canvas is filled
   (`extend_canvas`): the photo mirrored at its edge and blurred more with the distance, so
   texture, clothes and shoulders continue and fade to their colours, then a coarse inpaint of
   the background far out; the photo's own grain is added back. Edge rows or columns are never
   replicated.

`streak_share` measures what replication leaves behind: the share of pixels in a band that look
like copied rows or columns (flat across the band, textured along it).
"""
from __future__ import annotations

import cv2
import numpy as np

CROP_SCALE = 2.1
MIN_CROP_SCALE = 1.6
CROP_RAISE = 0.06
MATTE_RADIUS = 1 / 64   # x output size: guided-filter radius of the person matte
HOLE_GROW = 1 / 100     # x output size: how far the background hole extends past the matte


def _axis(c: float, s: float, length: float, f0: float, f1: float) -> float:
    """Start of a crop of length s along one axis: centred at c, shifted inside [0, length] when it
    fits (else covering it, overflow split by the centre), and always containing [f0, f1]."""
    x0 = c - s / 2
    if s <= length:
        x0 = min(max(x0, 0.0), length - s)
    else:
        x0 = min(max(x0, length - s), 0.0)
    x0 = min(x0, f0)           # the face stays inside
    x0 = max(x0, f1 - s)
    return x0


def plan_crop(shape: tuple[int, int], bbox, face_size: float) -> tuple[float, float, float]:
    """(x0, y0, side) of the square crop in photo pixels for a face box (x0, y0, x1, y1)."""
    h, w = shape[:2]
    fx0, fy0, fx1, fy1 = map(float, bbox)
    fs = float(face_size)
    side = CROP_SCALE * fs
    if side > min(w, h):
        side = max(MIN_CROP_SCALE * fs, float(min(w, h)))
    side = max(side, fx1 - fx0, fy1 - fy0, 2.0)
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2 - CROP_RAISE * fs
    return _axis(cx, side, w, fx0, fx1), _axis(cy, side, h, fy0, fy1), side


def photo_coverage(shape: tuple[int, int], box, size: int) -> np.ndarray:
    """(size, size) float32: the share of each crop pixel that lies inside the photo."""
    h, w = shape[:2]
    x0, y0, side = box
    k = side / size
    # crop pixel u samples photo x = x0 + u * k: wholly the photo's for 0 <= x <= w - 1
    u = x0 + np.arange(size) * k
    v = y0 + np.arange(size) * k
    cu = np.clip(np.minimum(u + 1, w - u), 0, 1)
    cv = np.clip(np.minimum(v + 1, h - v), 0, 1)
    return (cv[:, None] * cu[None, :]).astype(np.float32)


def extend_canvas(crop: np.ndarray, cover: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fill the part of `crop` that lies outside the photo (`cover` < 1); `crop` comes mirror-padded.

    Past the edge, the mirrored photo is blurred more and more with the distance (texture, clothes
    and shoulders continue, then fade to their colours), then gives way to a coarse inpaint of the
    background; the photo's own grain is added where blurring took it away. Nothing is replicated.
    """
    if cover.min() >= 0.999:
        return crop
    size = crop.shape[0]
    inside = cover >= 0.999
    src = crop.astype(np.float32)
    unit = size / 512.0
    dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)
    # the mirrored photo, blurred more with distance: knots (px at 512) -> blur sigma
    knots = np.array([0.0, 6.0, 16.0, 32.0, 56.0]) * unit
    levels = [src, cv2.GaussianBlur(src, (0, 0), 1.5 * unit)]
    small = cv2.resize(src, (size // 4, size // 4), interpolation=cv2.INTER_AREA)   # wide blurs at 1/4
    for sg in (4.0, 9.0, 16.0):
        blur = cv2.GaussianBlur(small, (0, 0), sg * unit / 4)
        levels.append(cv2.resize(blur, (size, size), interpolation=cv2.INTER_LINEAR))
    out = np.zeros_like(src)
    wsum = np.zeros(dist.shape, np.float32)
    for k, lev in enumerate(levels):
        left = knots[k - 1] if k > 0 else -1.0
        right = knots[k + 1] if k + 1 < len(knots) else np.inf
        w = np.where(dist <= knots[k], np.clip((dist - left) / max(knots[k] - left, 1e-6), 0, 1),
                     np.clip((right - dist) / max(right - knots[k], 1e-6), 0, 1) if np.isfinite(right) else 1.0)
        w = w.astype(np.float32)
        out += lev * w[..., None]
        wsum += w
    out /= np.maximum(wsum, 1e-6)[..., None]
    # far from the photo (the mirror would repeat it): a coarse inpaint of what is missing
    far = np.clip((dist - 56 * unit) / (48 * unit), 0, 1)
    if far.max() > 0:
        q = max(32, size // 4)
        small = cv2.resize(crop, (q, q), interpolation=cv2.INTER_AREA)
        hole = cv2.resize((dist > 40 * unit).astype(np.uint8) * 255, (q, q), interpolation=cv2.INTER_NEAREST)
        fill_small = cv2.GaussianBlur(cv2.inpaint(small, hole, 5, cv2.INPAINT_TELEA), (0, 0), 2.5)
        fill = cv2.resize(fill_small, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        out = out * (1 - far[..., None]) + fill * far[..., None]
    # the photo's own grain, where the blur took the texture away
    hp = src - cv2.GaussianBlur(src, (0, 0), 1.2)
    std = hp[inside].std(0) if inside.any() else np.full(3, 2.0, np.float32)
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.standard_normal((size, size, 3)).astype(np.float32), (0, 0), 0.6)
    noise *= (std / max(float(noise.std()), 1e-6)).astype(np.float32)
    grain = np.clip(dist / (6 * unit), 0, 1)[..., None]
    out = out + noise * grain
    out = np.where(inside[..., None], src, out)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def person_matte(crop: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Soft person alpha (S, S) uint8: the segmentation refined by a guided filter on the photo,
    so hair and shoulder edges follow the photo's own edges."""
    size = crop.shape[0]
    p = person.astype(np.float32) / 255.0
    r = max(2, round(MATTE_RADIUS * size))
    try:
        gf = cv2.ximgproc.guidedFilter(crop, p, r, (0.04 * 255) ** 2)
    except AttributeError:  # opencv without contrib
        gf = cv2.GaussianBlur(p, (0, 0), r / 2)
    # refine only near the segmentation's edge; far inside and outside keep its answer
    edge = cv2.dilate(((p > 0.02) & (p < 0.98)).astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    a = np.where(edge, gf, p)
    a = np.clip((a - 0.04) / 0.92, 0, 1)
    return np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)


def fill_background(crop: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The crop with the person replaced by a plausible fill, (S, S, 3) uint8.

    The hole is the person matte, however faint, grown by `HOLE_GROW`, so no strand of hair stays
    in the background (a head turn would show it as a ghost outline). It is inpainted at quarter
    resolution and blended into the photo over a few pixels outside the hole. A still frame still
    reproduces the photo: the renderer keeps the photo's own blend at soft edges.
    """
    size = crop.shape[0]
    q = max(64, size // 4)
    small = cv2.resize(crop, (q, q), interpolation=cv2.INTER_AREA)
    grow = max(1, round(HOLE_GROW * q))
    hole = cv2.resize(person, (q, q), interpolation=cv2.INTER_AREA) > 6
    hole = cv2.dilate(hole.astype(np.uint8) * 255, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    if hole.all():
        fill_small = np.full_like(small, np.median(small.reshape(-1, 3), axis=0).astype(np.uint8))
    else:
        fill_small = cv2.inpaint(small, hole, 7, cv2.INPAINT_TELEA)
        fill_small = cv2.GaussianBlur(fill_small, (0, 0), 2.0)
    fill = cv2.resize(fill_small, (size, size), interpolation=cv2.INTER_CUBIC)
    big = cv2.resize(hole, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    k = np.clip(cv2.GaussianBlur(big, (0, 0), max(1.0, size / 256)) * 1.5, 0, 1)
    k = np.maximum(k, person.astype(np.float32) / 255.0)[..., None]
    return (crop * (1 - k) + fill * k + 0.5).astype(np.uint8)


def streak_share(img: np.ndarray, band: str, frac: float = 0.2, flat: float = 1.0, texture: float = 4.0,
                 region: np.ndarray | None = None) -> float:
    """Share of pixels in the outer `frac` band on one side ('top', 'bottom', 'left', 'right')
    that look like copied rows or columns: nearly equal to the next pixel across the band
    (|d| <= `flat` grey levels) while the image varies along it (|d| >= `texture`).
    With `region` (a bool mask), the share over that region instead of the band (same direction).
    """
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) if img.ndim == 3 else img.astype(np.float32)
    if band in ("left", "right"):
        g = g.T
        if region is not None:
            region = region.T
    across = np.abs(np.diff(g, axis=0))[:, :-1]   # between rows
    along = np.abs(np.diff(g, axis=1))[:-1, :]
    streak = (across <= flat) & (along >= texture)
    if region is not None:
        m = region[:-1, :-1]
        return float(streak[m].mean()) if m.any() else 0.0
    n = max(1, round(frac * g.shape[0]))
    part = streak[:n] if band in ("top", "left") else streak[-n:]
    return float(part.mean())
