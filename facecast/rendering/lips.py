"""The lips, exactly: an inverse warp of the lip band, lips that meet, and the seam between them.

The renderer's warp inverts a smooth forward motion field by fixed-point iteration. That works
wherever the motion stretches or squeezes the photo moderately, but not where the lips close
over teeth: there the photo's mouth opening is squeezed to nothing, the field's slope reaches -1,
and the iteration no longer converges (teeth would show between the lips, or the lips double).

So the band around the lips is inverted exactly, column by column, in the head's own frame (u
along the mouth, v down). Per column, six knots go down the band: a point `MARGIN` above the
upper lip, the upper lip's outer and inner contours, the lower lip's inner and outer contours,
and a point `MARGIN` below the lower lip. The knots' frame positions come from the deformed
landmarks, their photo positions from the photo's landmarks (the outer two from the smooth warp
itself), and a pixel between two knots takes its photo position by linear interpolation. When the
lips close, the upper lip's pixels map onto the photo's upper lip and the lower lip's onto its
lower lip: the lip tissue stretches over the teeth and no pixel of the opening is left. Crossed
contours (lips pressed together) are met at their midline first.

Where the lips have been closed over an opening of the photo, a seam is shaded like real closed
lips: a soft dark line where they meet, and a faint shadow under the upper lip.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face import topology as topo

MARGIN = 0.06          # x face scale: the band reaches this far above and below the lips
EDGE_INSET = 0.06      # x face scale: at most this far into the lip the photo's inner edge is read
INSET_OF_GAP = 0.3     # x the photo's opening there: an open mouth shows the lips' wet inner side, closed lips hide it
INSET_OF_LIP = 0.5     # ... and at most this share of the lip's own thickness in the photo: a thin upper lip
                       # read 10 px in from its opening is skin (a pale lip, upside down), a lower lip
                       # read from its outer third is stretched 3x (vertical streaks). (At 0.3 the
                       # face mesh read the astronaut's open vowels a little less open: 94% against 96%.)
MAX_EDGE_OF_LIP = 0.6  # x the lip's thickness: however far the lip tissue seems to start, at least the
                       # rest of the lip is read
EDGE_SEARCH = 0.1      # x face scale: how far beyond the inner contour the lip's edge is searched
CORNER_OPENING = (0.3, 0.7)  # x the opening next to them: how open the photo's mouth corners are read
SEAM_WIDTH = 0.011     # x face scale: the seam's half-width (Gaussian sigma)
SEAM_DARK = 0.3       # how much the seam darkens the lips at its centre, fully closed
CORNER_BLEND = 0.03    # x mouth width: near the corners the band fades into the smooth warp

# contours from the subject's right corner (61) to the left corner (291)
OUTER_UPPER = topo.LIPS_OUTER_UPPER
INNER_UPPER = [61] + topo.LIPS_INNER_UPPER + [291]
INNER_LOWER = [61] + topo.LIPS_INNER_LOWER[::-1] + [291]
OUTER_LOWER = topo.LIPS_OUTER_LOWER[::-1]
CONTOURS = (OUTER_UPPER, INNER_UPPER, INNER_LOWER, OUTER_LOWER)
# the facing inner-lip points (upper id, lower id), corners left out
FACING = np.array(list(zip(INNER_UPPER[2:-2], INNER_LOWER[2:-2])), np.int32)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class LipBand:
    """Per-rig data of the lip band: the photo's contours, its lip gap per contour point, the seam colour."""

    face_scale: float
    source: np.ndarray        # (478, 2) the photo's landmarks
    photo_gap: np.ndarray     # (len(INNER_UPPER),) the photo's opening at each inner contour point, px
    seam_rgb: np.ndarray      # (3,) float32 colour of the seam's darkest line
    down: np.ndarray          # (2,) the photo's face-down direction in the image
    edge: np.ndarray          # (2, len(INNER_UPPER)) px from each inner contour point to where the
                              # photo's lip tissue starts (upper lip: up, lower lip: down)

    @classmethod
    def from_rig(cls, rig) -> LipBand:
        lm = rig.landmarks[:, :2].astype(np.float64)
        gap = np.linalg.norm(lm[INNER_LOWER] - lm[INNER_UPPER], axis=1)
        # the corners (61, 78 and 291, 308) are shared by both contours, but an open mouth is
        # dark well into them: read them as a part of the opening next to them
        for corner, inner, nxt in ((0, 1, 2), (-1, -2, -3)):
            gap[inner] = max(gap[inner], CORNER_OPENING[1] * gap[nxt])
            gap[corner] = max(gap[corner], CORNER_OPENING[0] * gap[nxt])
        lips = rig.image[rig.masks["lips"] > 128].astype(np.float32)
        lip = lips.mean(0) if len(lips) else np.float32([150, 80, 80])
        down = rig.rotation[:2, 1].astype(np.float64)
        down /= max(1e-6, float(np.hypot(*down)))
        edge = _lip_edges(rig, lm, down, gap)
        return cls(float(rig.face_scale), lm, gap, (lip * 0.45).astype(np.float32), down, edge)

    def frame_axes(self, rigid_lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors (2,) along the mouth (u, subject's right to left) and down the face (v)."""
        a = rigid_lm[topo.LEFT_EYE_CORNERS[0]] - rigid_lm[topo.RIGHT_EYE_CORNERS[0]]
        ex = a / max(1e-6, float(np.hypot(*a)))
        return ex, np.array([-ex[1], ex[0]])


def _lip_edges(rig, lm: np.ndarray, down: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Where the photo's lip tissue starts beyond each inner contour point, (2, n) px: the face
    mesh's inner contour of an open mouth often runs over the teeth. Searched along the face's
    down direction (up for the upper lip), up to `EDGE_SEARCH` x face scale, only where the mouth
    is open: the first of two pixels in a row whose colour is nearer the lips' than the teeth's
    and the mouth's dark (colours of the photo's lips and of its opening)."""
    out = np.zeros((2, len(INNER_UPPER)))
    opening = rig.image[rig.masks["mouth"] > 128].astype(np.float32)
    lips = rig.image[rig.masks["lips"] > 128].astype(np.float32)
    if len(opening) < 20 or len(lips) < 20 or gap.max() < 2.0:
        return out
    lum = opening.sum(1)
    teeth = np.median(opening[lum >= np.percentile(lum, 60)], 0)
    dark = np.median(opening[lum <= np.percentile(lum, 25)], 0)
    lip = np.median(lips, 0)
    img = cv2.GaussianBlur(rig.image, (3, 3), 0).astype(np.float32)
    reach = EDGE_SEARCH * float(rig.face_scale)
    steps = np.arange(0.0, reach, 0.5)
    for row, (contour, sign) in enumerate(((INNER_UPPER, -1.0), (INNER_LOWER, 1.0))):
        pts = lm[contour][:, None, :] + sign * steps[None, :, None] * down      # (n, k, 2)
        c = _bilinear(img, pts[..., 0].ravel(), pts[..., 1].ravel()).reshape(len(contour), len(steps), 3)
        d_lip = np.linalg.norm(c - lip, axis=2)
        d_not = np.minimum(np.linalg.norm(c - teeth, axis=2), np.linalg.norm(c - dark, axis=2))
        is_lip = d_lip < d_not
        both = is_lip[:, :-1] & is_lip[:, 1:]
        first = np.where(both.any(1), both.argmax(1), len(steps) - 1)
        found = steps[first] * (gap > 2.0)
        out[row] = np.where(both.any(1), found, 0.0)
    return out


def uncross(lm: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Landmarks (478, 2) with each facing pair of inner-lip points that crossed (the lower one
    above the upper one along `down`) moved to its midpoint. Returns a copy when anything moved."""
    up, lo = lm[FACING[:, 0]], lm[FACING[:, 1]]
    crossed = (lo - up) @ down < 0
    if not crossed.any():
        return lm
    out = lm.copy()
    mid = (up[crossed] + lo[crossed]) / 2
    out[FACING[crossed, 0]] = mid
    out[FACING[crossed, 1]] = mid
    return out


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """img (H, W, C) sampled at float positions -> (N, C)."""
    h, w = img.shape[:2]
    x = np.clip(x, 0, w - 1.001)
    y = np.clip(y, 0, h - 1.001)
    x0, y0 = x.astype(np.int32), y.astype(np.int32)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    a = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    b = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return a * (1 - fy) + b * fy


def _monotone(u: np.ndarray) -> np.ndarray:
    return np.maximum.accumulate(u + np.arange(len(u)) * 1e-4)


class BandMap:
    """The lip band of one frame: `apply` corrects the warp's source map in place, `shade` draws
    the seam. Built from the frame's deformed landmarks (478, 2) and the head-only ones.

    Columns are the image's own (the head's roll within the range the motion uses keeps every
    lip contour a function of x; `_monotone` guards the rest)."""

    def __init__(self, band: LipBand, lm: np.ndarray, rigid_lm: np.ndarray, size: int):
        self.band = band
        F = band.face_scale
        _ex, ey = band.frame_axes(rigid_lm)
        lm = uncross(lm.astype(np.float64), ey)
        xl, xr = float(lm[61, 0]), float(lm[291, 0])
        self.ok = xr - xl > 4.0
        if not self.ok:
            return
        m = MARGIN * F
        pts = lm[np.concatenate(CONTOURS)]
        x0 = max(0, int(np.ceil(xl)))
        x1 = min(size, int(np.floor(xr)) + 1)
        y0 = max(0, int(np.floor(pts[:, 1].min() - m - 1)))
        y1 = min(size, int(np.ceil(pts[:, 1].max() + m + 2)))
        self.ok = x1 - x0 >= 3 and y1 - y0 >= 3
        if not self.ok:
            return
        self.box = (x0, y0, x1, y1)
        xs = np.arange(x0, x1, dtype=np.float64)
        n = len(xs)
        V = np.empty((4, n))
        T = np.empty((4, n))
        for k, c in enumerate(CONTOURS):
            t = np.arange(len(c), dtype=np.float64)
            T[k] = np.interp(xs, _monotone(lm[c, 0]), t)
            V[k] = np.interp(T[k], t, lm[c, 1])
        # keep the order top to bottom (pressed lips meet at their midline)
        mid = 0.5 * (V[1] + V[2])
        crossed = V[1] > V[2]
        V[1] = np.where(crossed, mid, V[1])
        V[2] = np.where(crossed, mid, V[2])
        V[0] = np.minimum(V[0], V[1])
        V[3] = np.maximum(V[3], V[2])
        self.xs, self.V, self.T, self.m = xs, V, T, m
        self.inset = EDGE_INSET * F
        width = xr - xl
        self.corner_w = _smoothstep(np.minimum(xs - xl, xr - xs) / max(1.0, CORNER_BLEND * width))

    def _sources(self, smap: np.ndarray) -> np.ndarray:
        """(6, n, 2) photo positions of the six knots of every column."""
        band = self.band
        src = band.source
        S = np.empty((6, len(self.xs), 2))
        gap = np.interp(self.T[1], np.arange(len(INNER_UPPER), dtype=np.float64), band.photo_gap)
        for k, c in enumerate(CONTOURS):
            t = np.arange(len(c), dtype=np.float64)
            S[k + 1, :, 0] = np.interp(self.T[k], t, src[c, 0])
            S[k + 1, :, 1] = np.interp(self.T[k], t, src[c, 1])
        # read the inner edges a little inside the lips (never the opening's rim), where the photo
        # has an opening
        thick_up = np.abs((S[2] - S[1]) @ band.down)
        thick_lo = np.abs((S[4] - S[3]) @ band.down)
        inset = np.minimum(self.inset, INSET_OF_GAP * gap)
        t_inner = np.arange(len(INNER_UPPER), dtype=np.float64)
        up = np.maximum(np.minimum(inset, INSET_OF_LIP * thick_up), np.interp(self.T[1], t_inner, band.edge[0]))
        lo = np.maximum(np.minimum(inset, INSET_OF_LIP * thick_lo), np.interp(self.T[2], t_inner, band.edge[1]))
        up = np.minimum(up, MAX_EDGE_OF_LIP * thick_up)
        lo = np.minimum(lo, MAX_EDGE_OF_LIP * thick_lo)
        S[2] -= band.down * up[:, None]
        S[3] += band.down * lo[:, None]
        # the outer knots: where the smooth warp sends the points a margin above and below
        S[0] = _bilinear(smap, self.xs, self.V[0] - self.m)
        S[5] = _bilinear(smap, self.xs, self.V[3] + self.m)
        return S

    def apply(self, smap: np.ndarray) -> None:
        """Replace the source map (S, S, 2) float32 inside the band, in place."""
        if not self.ok:
            return
        x0, y0, x1, y1 = self.box
        S = self._sources(smap).astype(np.float32)
        kv = np.concatenate([self.V[:1] - self.m, self.V, self.V[3:] + self.m]).astype(np.float32)  # (6, n)
        v = np.arange(y0, y1, dtype=np.float32)[:, None]
        seg = ((v >= kv[1]).astype(np.int8) + (v >= kv[2]) + (v >= kv[3]) + (v >= kv[4]))
        col = np.arange(x1 - x0)[None, :]
        a, b = kv[seg, col], kv[seg + 1, col]
        t = np.clip((v - a) / np.maximum(b - a, 1e-6), 0, 1)[..., None]
        sa, sb = S[seg, col], S[seg + 1, col]
        out = sa + t * (sb - sa)
        # between the lips: the photo's opening is never stretched into view (its teeth would show
        # as a line where the lips nearly meet); each half takes its own lip's edge, and the mouth
        # interior is drawn over it once it opens
        gap = seg == 2
        out = np.where(gap[..., None], np.where((t < 0.5), sa, sb), out)
        # fade into the smooth warp near the corners; nothing outside the band
        wgt = (self.corner_w.astype(np.float32)[None, :] * ((v >= kv[0]) & (v <= kv[5])))[..., None]
        region = smap[y0:y1, x0:x1]
        region += wgt * (out - region)

    def shade(self, frame: np.ndarray) -> None:
        """Darken the seam where the lips were closed over the photo's opening, in place."""
        if not self.ok:
            return
        band = self.band
        gap_photo = np.interp(self.T[1], np.arange(len(INNER_UPPER), dtype=np.float64), band.photo_gap)
        gap_now = self.V[2] - self.V[1]
        closed = np.clip(1.0 - gap_now / np.maximum(gap_photo, 1e-6), 0, 1) * _smoothstep((gap_photo - 0.5) / 2.0)
        xs = self.xs
        closed *= _smoothstep(np.minimum(xs - xs[0], xs[-1] - xs) / max(1.0, 0.06 * (xs[-1] - xs[0])))
        on = np.flatnonzero(closed > 0.02)
        if not len(on):
            return
        F = band.face_scale
        s = max(0.6, SEAM_WIDTH * F)
        seam = (self.V[1] + self.V[2]) / 2
        i0, i1 = on[0], on[-1] + 1
        x0 = self.box[0] + i0
        ya = max(0, int(np.floor(seam[i0:i1].min() - 3 * s)))
        yb = min(frame.shape[0], int(np.ceil(seam[i0:i1].max() + 8 * s)) + 1)
        if yb <= ya:
            return
        v = np.arange(ya, yb, dtype=np.float32)[:, None]
        d = (v - seam[i0:i1].astype(np.float32)) / s
        line = np.exp(-0.5 * d * d)
        # a faint shadow under the upper lip, falling onto the lower lip
        shadow = 0.3 * np.exp(-0.5 * ((d - 1.5) / 2.5) ** 2) * (d > 0)
        k = (closed[i0:i1].astype(np.float32) * SEAM_DARK * np.maximum(line, shadow))[..., None]
        region = frame[ya:yb, x0:x0 + (i1 - i0)].astype(np.float32)
        region += k * (band.seam_rgb - region)
        frame[ya:yb, x0:x0 + (i1 - i0)] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
