"""The photo's own expression: facecast's blendshape model fitted to the tracked mesh.

Blendshape weights are absolute: 0 is a neutral, relaxed face with closed lips, whatever the
photo shows. So the rig has to know what the photo shows. `fit_expression` explains the tracked
mesh as "this person's face at rest" plus weighted blendshapes of `blendshapes.BlendshapeBasis`
(the same model the renderer deforms with), and returns both the weights and that face at rest.

One photo does not say what its face looks like at rest, so the fit rests on a few measures
whose neutral values are known from faces (head frame, in eye-corner distances; `FEATURES`):

- the inner-lip gap, measured between the facing points of the inner lip contours: exactly 0
  at rest, for every pair (the lips meet along their whole length);
- the mouth-corner lift (corners above the inner-lip midpoint), the mouth width, the nose-to-chin
  and nose-to-lip heights, the eyes' lid gaps and the brows' heights above the eyes: these vary
  from person to person, so each has a neutral *range* (measured on neutral faces of several
  people). A value inside its range is the person's own and is kept; only the part outside it
  is explained by expression. This keeps identity (a wide mouth, high brows, a short chin) out
  of the weights.

The weights are solved by bounded linear least squares (the basis is linear), with a small
penalty on every weight and a larger one on the shapes one photo can barely tell apart; weights
under `MIN_WEIGHT` are dropped (identity, not expression) and the rest solved again. What the
model cannot explain of the lip gap is closed directly (`rest_landmarks` moves the facing inner-lip
points onto their common seam), so the face at rest always has lips that meet.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from ..motion.types import BLENDSHAPE_INDEX, NUM_BLENDSHAPES
from . import topology as topo
from .blendshapes import BlendshapeBasis
from .headpose import head_frame

#: The shapes the fit solves for (all others are 0 in a photo's expression).
FIT_NAMES: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthPucker", "mouthStretchLeft", "mouthStretchRight", "mouthRollUpper",
    "mouthRollLower", "mouthPressLeft", "mouthPressRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft",
    "eyeWideRight", "eyeSquintLeft", "eyeSquintRight", "browInnerUp", "browDownLeft", "browDownRight",
    "browOuterUpLeft", "browOuterUpRight", "cheekSquintLeft", "cheekSquintRight",
)
#: Penalty (ridge) per weight: small for the shapes a photo shows clearly, larger for those it
#: can barely tell apart from identity or from each other.
PENALTY = {"jawOpen": 0.02, "mouthSmileLeft": 0.02, "mouthSmileRight": 0.02,
           "mouthUpperUpLeft": 0.06, "mouthUpperUpRight": 0.06, "mouthLowerDownLeft": 0.3,
           "mouthLowerDownRight": 0.3, "mouthStretchLeft": 0.12, "mouthStretchRight": 0.12,
           "mouthFrownLeft": 0.25, "mouthFrownRight": 0.25,
           "mouthClose": 0.4, "mouthPressLeft": 0.4, "mouthPressRight": 0.4, "mouthRollUpper": 0.4,
           "mouthRollLower": 0.4, "mouthFunnel": 0.5, "mouthPucker": 0.5,
           "cheekSquintLeft": 0.2, "cheekSquintRight": 0.2}
DEFAULT_PENALTY = 0.06
SYMMETRY = 0.3               # penalty on the difference of a Left/Right pair of weights
MIN_WEIGHT = 0.05            # fitted weights below this are identity, not expression
GAP_WEIGHT = 40.0            # how strongly the modelled lip gap must close (its mean over the pairs)

# facing points of the inner lips: upper contour (corner to corner, corners left out) against the
# lower contour in the same order
_UPPER = topo.LIPS_INNER_UPPER[1:-1]
_LOWER = topo.LIPS_INNER_LOWER[1:-1][::-1]
#: Inner-lip facing pairs (upper id, lower id), subject's right corner to left: every pair meets at rest.
LIP_PAIRS = np.array(list(zip(_UPPER, _LOWER)), np.int32)

_R_EYE = ([158, 159, 160], [144, 145, 153], (33, 133))
_L_EYE = ([385, 386, 387], [373, 374, 380], (263, 362))

#: The measures the fit reads: name -> (neutral low, neutral high, weight). Head frame, in
#: eye-corner distances (eyes: lid gap / eye width). The ranges hold the neutral faces of
#: Grace Hopper and of real speakers with closed, relaxed lips (several people, frontal video).
FEATURES: dict[str, tuple[float, float, float]] = {
    "lift_right": (-0.03, -0.005, 10.0), "lift_left": (-0.03, -0.005, 10.0),
    "mouth_width": (0.44, 0.63, 5.0),
    "chin": (0.70, 0.87, 3.0),
    "philtrum": (0.15, 0.23, 4.0),
    "lower_lip_chin": (0.30, 0.46, 2.0),
    "upper_lip": (0.04, 0.095, 2.0), "lower_lip": (0.075, 0.15, 2.0),
    "eye_right": (0.15, 0.45, 5.0), "eye_left": (0.15, 0.45, 5.0),
    "brow_inner_right": (0.10, 0.26, 5.0), "brow_inner_left": (0.10, 0.26, 5.0),
    "brow_outer_right": (0.06, 0.22, 5.0), "brow_outer_left": (0.06, 0.22, 5.0),
}


@dataclass
class PhotoExpression:
    """The fit. weights: (52,) float32 absolute blendshape weights of the photo (0 for shapes
    outside `FIT_NAMES`); rest_landmarks: (478, 3) float32 the photo's face at rest (all weights
    0: neutral, lips closed), crop pixels; residual_gap: the inner-lip gap (eye-corner distances)
    the blendshapes left unexplained and `rest_landmarks` closes directly."""

    weights: np.ndarray
    rest_landmarks: np.ndarray
    residual_gap: float

    def as_dict(self, digits: int = 3) -> dict[str, float]:
        """{name: weight} of the fitted shapes, rounded, JSON-ready."""
        return {n: round(float(self.weights[BLENDSHAPE_INDEX[n]]), digits) for n in FIT_NAMES}


#: Where the mouth corners sit between the upper and the lower inner lip's midpoints when the
#: jaw opens (the jaw of `blendshapes` drops the corners by about a third of the lower lip's
#: drop): the corner lift is measured from that level, so opening the jaw does not read as a smile
#: or a frown.
CORNER_LEVEL = 0.34


def measures(P: np.ndarray) -> dict[str, float]:
    """The fit's measures (`FEATURES`) of head-frame points P (478, 3), unit = eye-corner distance.
    Every one is linear in P (the eye widths are read once, from the photo)."""
    x, y = P[:, 0], P[:, 1]
    mid = y[13] + CORNER_LEVEL * (y[14] - y[13])
    out = {"lift_right": mid - y[61], "lift_left": mid - y[291], "mouth_width": x[291] - x[61],
           "chin": y[152] - y[2], "philtrum": y[0] - y[2], "lower_lip_chin": y[152] - y[17],
           "upper_lip": y[13] - y[0], "lower_lip": y[17] - y[14]}
    for side, (ups, los, _c) in (("right", _R_EYE), ("left", _L_EYE)):
        out[f"eye_{side}"] = float(np.mean(y[los] - y[ups]))
    out["brow_inner_right"] = y[159] - float(np.mean(y[topo.RIGHT_BROW_INNER]))
    out["brow_inner_left"] = y[386] - float(np.mean(y[topo.LEFT_BROW_INNER]))
    out["brow_outer_right"] = y[159] - float(np.mean(y[topo.RIGHT_BROW_OUTER]))
    out["brow_outer_left"] = y[386] - float(np.mean(y[topo.LEFT_BROW_OUTER]))
    return out


def corner_lift(landmarks: np.ndarray) -> float:
    """How far the mouth corners sit above the lips' middle (`measures`' lift, both sides' mean),
    in eye-corner distances, in the face's own frame: about 0 for a neutral face, > 0.04 for a
    broad smile. landmarks (478, 3) of any image (a photo or a re-tracked frame)."""
    lm = np.asarray(landmarks, np.float64)
    F = float(np.linalg.norm(lm[topo.LEFT_EYE_CORNERS[0]] - lm[topo.RIGHT_EYE_CORNERS[0]]))
    m = measures(to_head_frame(lm - lm[[13, 14]].mean(0), head_frame(lm), F))
    return float((m["lift_right"] + m["lift_left"]) / 2)


def _eye_widths(P: np.ndarray) -> dict[str, float]:
    return {side: max(1e-6, abs(float(P[c[0], 0] - P[c[1], 0]))) for side, (_u, _l, c) in
            (("right", _R_EYE), ("left", _L_EYE))}


def _vector(P: np.ndarray, widths: dict[str, float]) -> np.ndarray:
    """The lip gap (mean over the facing pairs, and right side minus left side), then the
    `FEATURES` measures (eyes divided by the photo's eye widths)."""
    m = measures(P)
    m["eye_right"] /= widths["right"]
    m["eye_left"] /= widths["left"]
    gaps = P[LIP_PAIRS[:, 1], 1] - P[LIP_PAIRS[:, 0], 1]
    return np.concatenate([[gaps.mean(), gaps[:3].mean() - gaps[-3:].mean()], [m[k] for k in FEATURES]])


def to_head_frame(points: np.ndarray, rotation: np.ndarray, face_scale: float) -> np.ndarray:
    """Camera-frame offsets or points (..., 3) in pixels -> the face's frame in eye-corner distances."""
    return points.astype(np.float64) @ rotation / float(face_scale)


def fit_expression(landmarks: np.ndarray, rotation: np.ndarray, face_scale: float,
                   basis: BlendshapeBasis | None = None) -> PhotoExpression:
    """Fit the photo's expression (see the module docstring). landmarks (478, 3) crop pixels;
    rotation (3, 3) the photo's head frame; face_scale: eye-corner distance in pixels; basis: the
    blendshape model of this face (built here when None)."""
    lm = np.asarray(landmarks, np.float64)
    basis = basis or BlendshapeBasis(_deltas(lm, rotation, face_scale))
    P = to_head_frame(lm, rotation, face_scale)
    widths = _eye_widths(P)
    ids = [BLENDSHAPE_INDEX[n] for n in FIT_NAMES]
    D = to_head_frame(basis.deltas[ids], rotation, face_scale)          # (K, 478, 3)
    f0 = _vector(P, widths)
    # each measure is linear in the points: its change per unit weight, at rest = photo - deltas
    J = np.stack([_vector(P + D[k], widths) - f0 for k in range(len(ids))], 1)   # (M, K)
    lo = np.concatenate([[0.0, 0.0], [FEATURES[k][0] for k in FEATURES]])
    hi = np.concatenate([[0.0, 0.0], [FEATURES[k][1] for k in FEATURES]])
    row_w = np.concatenate([[GAP_WEIGHT, GAP_WEIGHT / 4], [FEATURES[k][2] for k in FEATURES]])
    pen = np.array([PENALTY.get(n, DEFAULT_PENALTY) for n in FIT_NAMES])
    pairs = [(FIT_NAMES.index(n), FIT_NAMES.index(n[:-4] + "Right")) for n in FIT_NAMES if n.endswith("Left")]
    sym = np.zeros((len(pairs), len(ids)))
    for r, (i, j) in enumerate(pairs):
        sym[r, i], sym[r, j] = SYMMETRY, -SYMMETRY
    reg = np.vstack([np.diag(pen), sym])
    # dead zones: a measure at rest anywhere inside its neutral range costs nothing; outside, it
    # is pulled to the nearer end. Solved as an active set: start from the photo's measures, then
    # re-solve with the measures that the previous solution left outside their range.
    active = np.ones(len(ids), bool)
    w = np.zeros(len(ids))
    rest_f = f0.copy()
    used = None
    for _ in range(8):
        out = (rest_f < lo - 1e-9) | (rest_f > hi + 1e-9)
        out[:2] = True
        if used is not None and np.array_equal(out, used) and not (active & (w < MIN_WEIGHT) & (w > 0)).any():
            break
        used = out
        target = np.clip(rest_f, lo, hi)
        b = np.where(out, f0 - target, 0.0)
        rw = np.where(out, row_w, 0.0)
        A = np.vstack([J * rw[:, None], reg])
        rhs = np.concatenate([b * rw, np.zeros(len(reg))])
        w[:] = 0.0
        if active.any():
            w[active] = lsq_linear(A[:, active], rhs, bounds=(0.0, 1.0), method="bvls").x
        small = active & (w < MIN_WEIGHT)
        active &= ~small
        w[small] = 0.0
        rest_f = f0 - J @ w
    weights = np.zeros(NUM_BLENDSHAPES, np.float32)
    weights[ids] = np.round(w, 4)
    rest = lm - basis.deform(weights).astype(np.float64)
    rest, residual = close_lips(rest, rotation, face_scale, lm)
    return PhotoExpression(weights, rest.astype(np.float32), residual)


CORNER_TOLERANCE = 0.015     # corners this close to the seam's extension stay where the fit put them
MIN_LIP_THICKNESS = 0.8      # x the photo's lip thickness: the least a lip keeps at rest
#: The seam's ends (outermost facing pairs) below its middle, head frame, eye-corner distances:
#: the range of neutral closed mouths (Grace Hopper and real speakers' closed-lip frames).
SEAM_BEND = (-0.008, 0.02)
SKIN_FOLLOW = 0.15           # eye-corner distances: reach of the lips' outline moves into the skin


def close_lips(points: np.ndarray, rotation: np.ndarray, face_scale: float,
               photo: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Make the lips of `points` (478, 3) meet, and keep them lips. Along the face's vertical axis:

    - each facing pair of inner-lip points (`LIP_PAIRS`) moves onto its midpoint: the seam (these
      points also across and in depth: the lips meet); the seam's ends are bent back into the
      range of neutral mouths (`SEAM_BEND`) when they are not;
    - the mouth corners (outer and inner) move onto the seam's extension, when the blendshapes
      left them further than `CORNER_TOLERANCE` from it (an opening whose shape the model's jaw
      does not follow can push a corner above the upper lip);
    - no lip ends up thinner than `MIN_LIP_THICKNESS` x its thickness in `photo` (478, 3) (the
      photo's own landmarks; `points` itself when None), measured from the seam.

    Returns the points and the mean gap closed (eye-corner distances; negative when the lips
    overlapped)."""
    P = to_head_frame(points, rotation, face_scale)
    Q = to_head_frame(points if photo is None else photo, rotation, face_scale)
    y = P[:, 1].copy()
    x = P[:, 0].copy()
    up, lo = LIP_PAIRS[:, 0], LIP_PAIRS[:, 1]
    gap = y[lo] - y[up]
    seam = (y[up] + y[lo]) / 2
    sx = (P[up, 0] + P[lo, 0]) / 2
    # the seam of a relaxed mouth is nearly straight: bend its ends back into the neutral range
    # (a broad smile's deep lower lip would otherwise close into a frown)
    mid = len(seam) // 2
    for end, idx in ((0, np.arange(0, mid)), (len(seam) - 1, np.arange(mid + 1, len(seam)))):
        rise = seam[end] - seam[mid]
        d = float(np.clip(rise, *SEAM_BEND)) - rise
        if d:
            seam[idx] += d * ((sx[idx] - sx[mid]) / (sx[end] - sx[mid])) ** 2
    y[up] = seam
    y[lo] = seam
    x[up] = sx
    x[lo] = sx
    z = P[:, 2].copy()
    z[up] = z[lo] = (P[up, 2] + P[lo, 2]) / 2
    # corners: onto the line through the two outermost seam points of their side
    for (i, j), corners in (((0, 1), (78, 61)), ((-1, -2), (308, 291))):
        slope = (seam[i] - seam[j]) / (sx[i] - sx[j]) if abs(sx[i] - sx[j]) > 1e-6 else 0.0
        for c in corners:
            target = seam[i] + float(np.clip(slope * (P[c, 0] - sx[i]), -0.03, 0.03))
            d = y[c] - target
            if abs(d) > CORNER_TOLERANCE:
                y[c] -= d - np.sign(d) * CORNER_TOLERANCE
    # the seam as a curve from corner to corner, and each lip's thickness in the photo
    cx = np.concatenate([[P[61, 0]], sx, [P[291, 0]]])
    cy = np.concatenate([[y[61]], seam, [y[291]]])
    o = np.argsort(cx)
    for outer, inner, sign in ((topo.LIPS_OUTER_UPPER[1:-1], topo.LIPS_INNER_UPPER, -1.0),
                               (topo.LIPS_OUTER_LOWER[1:-1], topo.LIPS_INNER_LOWER, 1.0)):
        qi = np.argsort(Q[inner, 0])
        inner_q = np.interp(Q[outer, 0], Q[inner, 0][qi], Q[inner, 1][qi])
        thick = np.clip(sign * (Q[outer, 1] - inner_q), 0.0, None) * MIN_LIP_THICKNESS
        s_at = np.interp(P[outer, 0], cx[o], cy[o])
        # at least `thick` away from the seam, on the lip's own side
        y[outer] = s_at + sign * np.maximum(sign * (y[outer] - s_at), thick)
    shift = np.zeros_like(P)
    shift[:, 0] = x - P[:, 0]
    shift[:, 1] = y - P[:, 1]
    shift[:, 2] = z - P[:, 2]
    # the skin around the lips follows their outline's moves (smoothly, so nothing folds)
    rim = np.array(topo.LIPS_OUTER)
    skin = np.setdiff1d(np.arange(len(P)), np.concatenate([rim, topo.LIPS_INNER]))
    d2 = ((P[skin, None, :2] - P[None, rim, :2]) ** 2).sum(2)
    g = np.exp(-0.5 * d2 / SKIN_FOLLOW ** 2)
    shift[skin] = (g @ shift[rim]) / np.maximum(g.sum(1, keepdims=True), 1.0)
    out = points + (shift * face_scale) @ rotation.T
    return out, float(gap.mean())


def _deltas(lm, rotation, face_scale):
    from .blendshapes import build_deltas
    return build_deltas(lm.astype(np.float32), rotation, face_scale)
