"""Blendshapes as 3D deformations of one rig's face mesh.

`BlendshapeBasis.from_rig(rig)` builds, for each ARKit blendshape, a displacement of the 478
landmarks at weight 1, shaped to this face (jaw rotation about a hinge in front of the ears, lips
that round, spread, press and roll, eyelids that close onto the lower lid, brows and cheeks that
lift). Deformations are designed in the face's own frame (x right, y down, z back; unit = the
eye-corner distance) and rotated into the photo's head pose, so a turned head still opens its
jaw along its own axis. `deform(weights)` returns landmark offsets for a weight vector.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..motion.types import BLENDSHAPE_INDEX, NUM_BLENDSHAPES
from . import topology as topo

JAW_MAX_DEG = 24.0  # jawOpen = 1 opens the mouth to about half its width


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _gauss(d2: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * d2 / (sigma * sigma))


def _interp_curve(curve: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y of a polyline `curve` (K, 2) at abscissae x (sorted internally)."""
    o = np.argsort(curve[:, 0])
    return np.interp(x, curve[o, 0], curve[o, 1])


@dataclass
class BlendshapeBasis:
    """deltas: (52, 478, 3) float32 landmark offsets at weight 1, in the camera frame (pixels)."""

    deltas: np.ndarray

    def deform(self, weights: np.ndarray) -> np.ndarray:
        """Landmark offsets (478, 3) float32 for blendshape weights (52,)."""
        w = np.asarray(weights, np.float32)
        nz = np.flatnonzero(w)
        if nz.size == 0:
            return np.zeros(self.deltas.shape[1:], np.float32)
        return np.tensordot(w[nz], self.deltas[nz], axes=1)

    @classmethod
    def from_rig(cls, rig) -> "BlendshapeBasis":
        return cls(build_deltas(rig.landmarks, rig.rotation, rig.face_scale))


def build_deltas(landmarks: np.ndarray, rotation: np.ndarray, face_scale: float) -> np.ndarray:
    """(52, 478, 3) float32 deltas; see the module docstring."""
    F = float(face_scale)
    origin = landmarks[[13, 14]].mean(0).astype(np.float64)
    P = (landmarks.astype(np.float64) - origin) @ rotation / F  # face frame, unit = F
    n = len(P)
    D = np.zeros((NUM_BLENDSHAPES, n, 3))
    x, y = P[:, 0], P[:, 1]
    iris = np.zeros(n, bool)
    iris[468:] = True

    # ---- lip geometry --------------------------------------------------------------------------
    cr, cl = P[topo.MOUTH_CORNERS[0]], P[topo.MOUTH_CORNERS[1]]
    mouth_w = float(np.linalg.norm(cl - cr))
    inner_upper = _interp_curve(P[topo.LIPS_INNER_UPPER, :2], x)
    inner_lower = _interp_curve(P[topo.LIPS_INNER_LOWER, :2], x)
    mid_line = (inner_upper + inner_lower) / 2
    lateral = np.abs(x) / (mouth_w / 2)                        # 1 at the mouth corners
    near_mouth = _smoothstep((1.6 - lateral) / 0.6)
    lip_outer = np.zeros(n, bool)
    lip_outer[topo.LIPS_OUTER + topo.LIPS_INNER] = True
    in_lips = _gauss((x / (mouth_w * 0.62)) ** 2 + (y / 0.16) ** 2, 1.0) > 0.5
    lips = lip_outer | in_lips
    below = y > mid_line
    # contour points are classified by name: for a closed mouth the two inner contours coincide
    corners = list(topo.MOUTH_CORNERS) + [78, 308]
    named_lower = [i for i in topo.LIPS_INNER_LOWER + topo.LIPS_OUTER_LOWER if i not in corners]
    named_upper = [i for i in topo.LIPS_INNER_UPPER + topo.LIPS_OUTER_UPPER if i not in corners]
    below[named_lower] = True
    below[named_upper] = False
    lower_lip = lips & below
    upper_lip = lips & ~below
    lip_w = np.where(lips, 1.0, 0.0)
    # lip thickness, for rolls
    up_thick = float(np.median(P[topo.LIPS_INNER_UPPER, 1]) - np.median(P[topo.LIPS_OUTER_UPPER, 1]))
    lo_thick = float(np.median(P[topo.LIPS_OUTER_LOWER, 1]) - np.median(P[topo.LIPS_INNER_LOWER, 1]))
    up_thick, lo_thick = max(up_thick, 0.05), max(lo_thick, 0.05)

    def set_(name, d):
        D[BLENDSHAPE_INDEX[name]] = np.where(iris[:, None], 0.0, d)

    # ---- jaw: rotation about a hinge in front of the ears --------------------------------------
    ear_y = float(P[[234, 454], 1].mean())
    ear_z = float(P[[234, 454], 2].mean())
    hinge = np.array([0.0, ear_y + 0.05, ear_z + 0.25])
    # below the lip line -> 1: quickly beside the lips, more gently in the cheeks
    near = _smoothstep((1.5 - lateral) / 0.5)
    jaw_w = near * _smoothstep((y - mid_line) / 0.12 + 0.5) + (1 - near) * _smoothstep((y - mid_line) / 0.45 + 0.3)
    jaw_w = np.where(upper_lip, 0.0, jaw_w)
    # the lower lip opens as a lens: full at the middle, less towards the corners
    jaw_w = np.where(lower_lip, 0.45 + 0.55 * _smoothstep((1.0 - lateral) / 0.7), jaw_w)
    jaw_w *= _smoothstep((y - (ear_y + 0.15)) / 0.4)           # fades out towards the hinge
    jaw_w[[61, 291, 78, 308]] = 0.45
    a = np.radians(JAW_MAX_DEG)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    # opening rotates the chin down and back: y' > y for points in front of (z < hinge) the hinge
    rot = (P - hinge) @ rx.T + hinge - P
    jaw = rot * jaw_w[:, None]
    set_("jawOpen", jaw)
    lat = np.stack([np.ones(n) * 0.12, np.zeros(n), np.zeros(n)], 1) * jaw_w[:, None]
    set_("jawLeft", lat)
    set_("jawRight", -lat)
    set_("jawForward", np.stack([np.zeros(n), np.zeros(n), -0.1 * np.ones(n)], 1) * jaw_w[:, None])

    # ---- mouthClose: lips meet while the jaw is open -------------------------------------------
    close = np.zeros((n, 3))
    close[:, 1] = -jaw[:, 1] * np.where(lower_lip, 1.0, 0.0)
    set_("mouthClose", close * 0.9)

    # ---- rounding: funnel and pucker ------------------------------------------------------------
    ring = _gauss((x / (mouth_w * 0.8)) ** 2 + (y / 0.35) ** 2, 1.0) * near_mouth
    toward = np.stack([-x, np.zeros(n), np.zeros(n)], 1)
    fwd = np.stack([np.zeros(n), np.zeros(n), -np.ones(n)], 1)
    pucker = (0.42 * toward + 0.12 * fwd) * ring[:, None]
    pucker[:, 1] += np.where(lower_lip, -0.03, 0.02) * lip_w
    set_("mouthPucker", pucker)
    funnel = (0.3 * toward + 0.1 * fwd) * ring[:, None]
    funnel[:, 1] += np.where(lower_lip, 0.07, -0.045) * lip_w * _smoothstep(1.2 - lateral)
    set_("mouthFunnel", funnel)

    # ---- per-side corner moves: smile, frown, stretch, dimple, press -------------------------
    for side, sgn, corner in (("Left", 1.0, cl), ("Right", -1.0, cr)):
        d2 = (x - corner[0]) ** 2 + (y - corner[1]) ** 2
        g = _gauss(d2, 0.22) * np.where(sgn * x > -0.05, 1.0, _smoothstep(1 + sgn * x / 0.2))
        g_wide = _gauss(d2, 0.4)
        side_w = _smoothstep(0.5 + sgn * x / (mouth_w * 0.5))   # this side of the face
        # the cheek above the corner lifts too, and with it both lips alike (a smile does not part them)
        smile = np.stack([sgn * 0.1 * g, -0.1 * g - 0.03 * g_wide * ((y < corner[1]) | lips), 0.04 * g], 1)
        set_(f"mouthSmile{side}", smile)
        set_(f"mouthFrown{side}", np.stack([sgn * 0.02 * g, 0.1 * g, 0 * g], 1))
        set_(f"mouthStretch{side}", np.stack([sgn * 0.12 * g, 0.04 * g, 0.02 * g], 1))
        set_(f"mouthDimple{side}", np.stack([sgn * 0.05 * g, -0.02 * g, 0.05 * g], 1))
        press = np.zeros((n, 3))
        press[:, 1] = np.where(upper_lip, 0.035, np.where(lower_lip, -0.035, 0.0)) * side_w * lip_w
        set_(f"mouthPress{side}", press)
        up = np.zeros((n, 3))
        up[:, 1] = -0.1 * np.where(upper_lip, 1.0, 0.0) * side_w * _smoothstep(1.3 - lateral)
        up[:, 1] -= 0.04 * _gauss(d2, 0.4) * (y < corner[1])
        set_(f"mouthUpperUp{side}", up)
        down = np.zeros((n, 3))
        down[:, 1] = 0.1 * np.where(lower_lip, 1.0, 0.0) * side_w * _smoothstep(1.3 - lateral)
        set_(f"mouthLowerDown{side}", down)
        # cheeks
        cheek_c = P[[116, 50] if side == "Right" else [345, 280]].mean(0)
        gc = _gauss((x - cheek_c[0]) ** 2 + (y - cheek_c[1]) ** 2, 0.28)
        set_(f"cheekSquint{side}", np.stack([0 * gc, -0.06 * gc, -0.01 * gc], 1))
        # brows
        brow = topo.LEFT_BROW if side == "Left" else topo.RIGHT_BROW
        outer = topo.LEFT_BROW_OUTER if side == "Left" else topo.RIGHT_BROW_OUTER
        bc = P[brow].mean(0)
        oc = P[outer].mean(0)
        gb = _gauss((x - bc[0]) ** 2 + (y - bc[1]) ** 2, 0.3) * (y < bc[1] + 0.25)
        go = _gauss((x - oc[0]) ** 2 + (y - oc[1]) ** 2, 0.22) * (y < oc[1] + 0.2)
        # AU4 draws the inner brows together as it lowers them (the corrugator), more than the outer
        ic = P[topo.LEFT_BROW_INNER if side == "Left" else topo.RIGHT_BROW_INNER].mean(0)
        gbi = _gauss((x - ic[0]) ** 2 + (y - ic[1]) ** 2, 0.2) * (y < ic[1] + 0.25) * (sgn * x > -0.05)
        set_(f"browDown{side}", np.stack([-sgn * (0.03 * gb + 0.07 * gbi), 0.11 * gb + 0.03 * gbi, 0 * gb], 1))
        set_(f"browOuterUp{side}", np.stack([0 * go, -0.1 * go, 0 * go], 1))
        nose_c = P[[64, 98] if side == "Right" else [294, 327]].mean(0)
        gn = _gauss((x - nose_c[0]) ** 2 + (y - nose_c[1]) ** 2, 0.15)
        set_(f"noseSneer{side}", np.stack([0 * gn, -0.06 * gn, 0 * gn], 1))

    # whole-mouth shifts
    mouth_region = ring[:, None] * np.array([[1.0, 0, 0]])
    set_("mouthLeft", 0.12 * mouth_region)
    set_("mouthRight", -0.12 * mouth_region)
    shrug = np.zeros((n, 3))
    shrug[:, 1] = -0.05 * np.where(lower_lip, 1.0, 0.0) - 0.02 * _gauss(x ** 2 + (y - 0.35) ** 2, 0.2)
    set_("mouthShrugLower", shrug)
    shrug_u = np.zeros((n, 3))
    shrug_u[:, 1] = -0.04 * np.where(upper_lip, 1.0, 0.0)
    set_("mouthShrugUpper", shrug_u)
    # rolls: the lip turns inwards, its outer edge moving onto the inner one; the skin beyond
    # follows with a smooth falloff (no seam)
    outer_upper = _interp_curve(P[topo.LIPS_OUTER_UPPER, :2], x)
    outer_lower = _interp_curve(P[topo.LIPS_OUTER_LOWER, :2], x)
    lat_fall = _smoothstep((1.15 - lateral) / 0.35)
    not_inner = ~np.isin(np.arange(n), topo.LIPS_INNER)
    up_depth = np.clip(inner_upper - y, 0, None)
    up_amt = np.where(y >= outer_upper, up_depth, (inner_upper - outer_upper) * np.exp(-(outer_upper - y) / 0.08))
    roll_u = np.zeros((n, 3))
    sel_u = (y < inner_upper) & not_inner
    roll_u[:, 1] = np.where(sel_u, 0.8 * up_amt * lat_fall, 0.0)
    roll_u[:, 2] = np.where(sel_u, 0.04 * lat_fall * (y >= outer_upper), 0.0)
    set_("mouthRollUpper", roll_u)
    lo_depth = np.clip(y - inner_lower, 0, None)
    lo_amt = np.where(y <= outer_lower, lo_depth, (outer_lower - inner_lower) * np.exp(-(y - outer_lower) / 0.08))
    roll_l = np.zeros((n, 3))
    sel_l = (y > inner_lower) & not_inner
    roll_l[:, 1] = np.where(sel_l, -0.8 * lo_amt * lat_fall, 0.0)
    roll_l[:, 2] = np.where(sel_l, 0.04 * lat_fall * (y <= outer_lower), 0.0)
    set_("mouthRollLower", roll_l)
    puff = np.stack([np.sign(x) * 0.08, np.zeros(n), np.zeros(n)], 1) * _gauss(
        (np.abs(x) - 0.6) ** 2 + (y + 0.1) ** 2, 0.3)[:, None]
    set_("cheekPuff", puff)
    # browInnerUp: both inner brows and the forehead above them
    bi = P[topo.RIGHT_BROW_INNER + topo.LEFT_BROW_INNER].mean(0)
    gi = _gauss((x / 1.3) ** 2 + ((y - bi[1]) / 1.0) ** 2, 0.25) * (y < bi[1] + 0.25)
    set_("browInnerUp", np.stack([0 * gi, -0.1 * gi, 0 * gi], 1))

    # ---- eyelids -----------------------------------------------------------------------------
    inner_fall = np.ones(n)

    def sgn_side(side):
        return 1.0 if side == "Left" else -1.0

    for side, eye, upper_idx, lower_idx, brow_low in (
            ("Left", topo.LEFT_EYE, topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER, [276, 283, 282, 295, 285]),
            ("Right", topo.RIGHT_EYE, topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER, [46, 53, 52, 65, 55])):
        ec = P[eye].mean(0)
        ew = float(np.ptp(P[eye, 0]))
        upper_c = P[[eye[0]] + upper_idx + [eye[8]], :2]
        lower_c = P[[eye[0]] + lower_idx + [eye[8]], :2]
        up_y = _interp_curve(upper_c, x)
        lo_y = _interp_curve(lower_c, x)
        brow_y = _interp_curve(P[brow_low, :2], x)
        closed_y = lo_y - 0.15 * (lo_y - up_y)                  # lids meet low, as in a real blink
        in_x = _smoothstep((ew * 0.62 - np.abs(x - ec[0])) / (ew * 0.18))
        height = np.clip(lo_y - up_y, 0, None)
        # the lid skin between the lash line and the brow stretches evenly (so the lashes stay a
        # thin line at the lid's edge); the brow itself barely moves
        lid_span = np.clip(up_y - brow_y, 0.05, None) * 0.95
        above = (y <= up_y + 1e-6) & (np.abs(x - ec[0]) < ew)
        upper_fall = np.where(above, np.clip(1.0 - (up_y - y) / lid_span, 0.0, 1.0), 0.0) * in_x
        upper_fall[upper_idx] = 1.0
        blink = np.zeros((n, 3))
        blink[:, 1] = (closed_y - up_y) * upper_fall
        below_l = (y >= lo_y - 1e-6) & (np.abs(x - ec[0]) < ew)
        lower_fall = np.where(below_l, np.exp(-np.clip(y - lo_y, 0, None) / 0.05), 0.0) * in_x
        lower_fall[lower_idx] = 1.0
        blink[:, 1] += (closed_y - lo_y) * lower_fall
        blink[:, 2] -= 0.02 * upper_fall
        set_(f"eyeBlink{side}", blink)
        wide = np.zeros((n, 3))
        wide[:, 1] = -0.3 * height * upper_fall
        set_(f"eyeWide{side}", wide)
        squint = np.zeros((n, 3))
        squint[:, 1] = -0.35 * height * lower_fall + 0.12 * height * upper_fall
        set_(f"eyeSquint{side}", squint)
        # AU6: the raised cheek pushes the lower lid up from below (the eye narrows from beneath)
        D[BLENDSHAPE_INDEX[f"cheekSquint{side}"], :, 1] -= 0.2 * height * lower_fall
        # brows move over the eye, not with it: their pull fades from the brow's lower edge to
        # nothing at the upper lash line (the lid skin between stretches or folds); the eye itself
        # keeps its place, so a lowered brow reads as a narrower brow-to-eye gap
        brow_fall = np.clip((up_y - y) / np.clip(up_y - brow_y, 0.05, None), 0.0, 1.0)
        brow_fall = np.where(sgn_side(side) * x >= 0, brow_fall, 1.0)
        for name in (f"browDown{side}", f"browOuterUp{side}"):
            D[BLENDSHAPE_INDEX[name]] *= brow_fall[:, None]
        inner_fall[sgn_side(side) * x >= 0] = brow_fall[sgn_side(side) * x >= 0]
    D[BLENDSHAPE_INDEX["browInnerUp"]] *= inner_fall[:, None]

    # back to the camera frame, in pixels
    return (D @ rotation.T * F).astype(np.float32)
