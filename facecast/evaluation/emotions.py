"""Measure the emotions: render each at intensity 1 and read its landmark displacements against a
neutral render of the same photo, in inter-ocular distances (IOD), in a face-local frame.

Two readings: `retracked` runs the face mesh on both renders (what a viewer's eye sees, with the
tracker's noise); `mesh` reads the renderer's own deformed landmarks (exact, no tracker). Both are
aligned on landmarks an expression does not move (nose bridge, face sides) and rotated so the
eyes lie level. Signs: positive = up, wider, together, as the feature's name says.
"""
from __future__ import annotations

import numpy as np

from ..face import topology as topo
from ..motion.controls import EMOTIONS, parse_emotion
from ..motion.expression import add_expression
from ..motion.types import NUM_BLENDSHAPES, MotionFrame

STABLE = [133, 362, 243, 463, 33, 263, 197, 195, 127, 356]  # eye corners, upper nose, temples: barely moved
#: the issue's targets at intensity 1 on closed-mouth photos, re-tracked: (emotion, feature, bound),
#: feature >= bound when bound > 0, <= bound when bound < 0
TARGETS = [
    ("happy", "corner_up", 0.04), ("happy", "mouth_wider", 0.06),
    ("sad", "inner_brow_up", 0.015), ("sad", "corner_up", -0.03),
    ("angry", "brow_up", -0.03), ("angry", "brows_together", 0.015),
    ("surprised", "brow_up", 0.05), ("surprised", "eye_open", 0.02),
    ("disgusted", "brow_up", -0.015), ("disgusted", "upper_lip_up", 0.02),
    ("fearful", "inner_brow_up", 0.03), ("fearful", "mouth_wider", 0.03),
]
FEATURES = ("brow_up", "inner_brow_up", "brows_together", "eye_open", "lower_lid_up",
            "corner_up", "mouth_wider", "upper_lip_up")


def emotion_weights(name: str, intensity: float = 1.0) -> np.ndarray:
    """(52,) absolute blendshape weights of one emotion on a neutral face (no speech, no emphasis)."""
    w = np.zeros(NUM_BLENDSHAPES)
    add_expression(w, parse_emotion(f"{name}:{intensity}" if name != "neutral" else ""), 0.0, 1.0)
    return np.clip(w, 0.0, 1.0).astype(np.float32)


def _similarity(src: np.ndarray, dst: np.ndarray):
    """s, R, t with s * src @ R.T + t ~ dst (2D Umeyama)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    S = np.diag([1.0, d])
    R = u @ S @ vt
    s = float((sv * np.diag(S)).sum() / (a ** 2).sum())
    return s, R, md - s * ms @ R.T


def features(neutral: np.ndarray, moved: np.ndarray) -> dict[str, float]:
    """Displacements of `moved` (478, 2+) against `neutral`, in IOD, face-local (see the module)."""
    n, m = neutral[:, :2].astype(np.float64), moved[:, :2].astype(np.float64)
    s, R, t = _similarity(m[STABLE], n[STABLE])
    m = s * m @ R.T + t
    re, le = n[topo.RIGHT_EYE].mean(0), n[topo.LEFT_EYE].mean(0)
    iod = float(np.linalg.norm(le - re))
    ax = (le - re) / iod                                  # image x of the face's right-to-left axis
    frame = np.array([ax, [-ax[1], ax[0]]])               # rows: face x, face y (down)
    n, m = n @ frame.T / iod, m @ frame.T / iod

    def up(idx):
        return float(-(m[idx, 1] - n[idx, 1]).mean())

    def dist(lm, a, b):
        return float(np.linalg.norm(lm[a].mean(0) - lm[b].mean(0)))

    lids = [([158, 159, 160], [144, 145, 153]), ([385, 386, 387], [373, 374, 380])]
    eye_open = np.mean([dist(m, u, l_) - dist(n, u, l_) for u, l_ in lids])
    return {
        "brow_up": up(topo.RIGHT_BROW + topo.LEFT_BROW),
        "inner_brow_up": up(topo.RIGHT_BROW_INNER + topo.LEFT_BROW_INNER),
        "brows_together": dist(n, topo.RIGHT_BROW_INNER, topo.LEFT_BROW_INNER)
        - dist(m, topo.RIGHT_BROW_INNER, topo.LEFT_BROW_INNER),
        "eye_open": float(eye_open),
        "lower_lid_up": up([144, 145, 153, 373, 374, 380]),
        "corner_up": up(list(topo.MOUTH_CORNERS)),
        "mouth_wider": dist(m, [61], [291]) - dist(n, [61], [291]),
        "upper_lip_up": up([0, 37, 267]),
    }


def measure_emotions(renderer, tracker=None, emotions=EMOTIONS[1:], intensity: float = 1.0) -> dict:
    """{emotion: features} for each emotion at `intensity`; re-tracked when `tracker` is given,
    else read from the renderer's deformed mesh."""
    rig = renderer.rig
    out = {}
    if tracker is None:
        base = rig.landmarks[:, :2] - renderer.basis.deform(renderer.photo_weights)[:, :2]
        for e in emotions:
            out[e] = features(base, base + renderer.basis.deform(emotion_weights(e, intensity))[:, :2])
        return out
    from .retrack import measure
    neutral = measure(tracker, rig, renderer.render(MotionFrame()))
    for e in emotions:
        got = measure(tracker, rig, renderer.render(MotionFrame(blendshapes=emotion_weights(e, intensity))))
        out[e] = None if (got is None or neutral is None) else features(neutral.landmarks, got.landmarks)
    return out


def format_table(table: dict) -> str:
    head = "| emotion | " + " | ".join(FEATURES) + " |"
    rows = [head, "|" + "---|" * (len(FEATURES) + 1)]
    for e, f in table.items():
        rows.append(f"| {e} | " + " | ".join("—" if f is None else f"{f[k]:+.3f}" for k in FEATURES) + " |")
    return "\n".join(rows)


def missed(table: dict, targets=TARGETS) -> list[str]:
    """The targets `table` misses, one line each ('angry brow_up -0.017 (want <= -0.030)')."""
    bad = []
    for emo, feat, bound in targets:
        f = table.get(emo)
        v = None if f is None else f[feat]
        if v is None or (bound > 0 and v < bound) or (bound < 0 and v > bound):
            shown = "no face" if v is None else f"{v:+.3f}"
            bad.append(f"{emo} {feat} {shown} (want {'>=' if bound > 0 else '<='} {bound:+.3f})")
    return bad
