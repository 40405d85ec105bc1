"""Re-tracking quality metrics: run the face mesh on rendered frames and measure what was commanded.

These are the product's own checks (used by the tests and runnable on any render): head pose
recovered relative to the photo, inner-lip gap, eye opening, iris position, PSNR, jitter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face import topology as topo
from ..face.headpose import relative_pose
from ..face.rig import FaceRig
from ..face.tracking import FaceTracker


@dataclass
class FaceMeasure:
    """Measurements of one frame, relative to the rig's photo where that makes sense.

    pose: (pitch, yaw, roll) degrees relative to the photo; scale: face size relative to the photo;
    lip_gap: inner-lip gap / eye-corner distance; eye_open: (right, left) lid gap / eye width;
    iris: (2,) mean iris offset from the eye centre, in eye widths (x right, y down).
    """

    landmarks: np.ndarray
    pose: tuple[float, float, float]
    scale: float
    lip_gap: float
    eye_open: tuple[float, float]
    iris: np.ndarray


def eye_openness(lm: np.ndarray) -> tuple[float, float]:
    out = []
    for (up, lo), (c0, c1) in ((topo.RIGHT_EYE_LIDS, topo.RIGHT_EYE_CORNERS), (topo.LEFT_EYE_LIDS, topo.LEFT_EYE_CORNERS)):
        w = np.linalg.norm(lm[c0, :2] - lm[c1, :2])
        ups = [158, 159, 160] if up == 159 else [385, 386, 387]
        los = [144, 145, 153] if lo == 145 else [373, 374, 380]
        out.append(float(np.mean([np.linalg.norm(lm[a, :2] - lm[b, :2]) for a, b in zip(ups, los)]) / w))
    return out[0], out[1]


def iris_offset(lm: np.ndarray) -> np.ndarray:
    """Mean over both eyes of (iris centre - eye-corner midpoint) / eye width, (2,)."""
    offs = []
    for iris, (c0, c1) in ((topo.RIGHT_IRIS, topo.RIGHT_EYE_CORNERS), (topo.LEFT_IRIS, topo.LEFT_EYE_CORNERS)):
        mid = (lm[c0, :2] + lm[c1, :2]) / 2
        w = np.linalg.norm(lm[c0, :2] - lm[c1, :2])
        offs.append((lm[iris[0], :2] - mid) / w)
    return np.mean(offs, axis=0)


def measure(tracker: FaceTracker, rig: FaceRig, frame: np.ndarray) -> FaceMeasure | None:
    """Track one rendered frame (S, S, 3) uint8; None if no face is found."""
    faces = tracker.landmarks(frame)
    if not faces:
        return None
    c = np.array(frame.shape[1::-1]) / 2
    lm = min(faces, key=lambda f: np.linalg.norm(f.landmarks[:, :2].mean(0) - c)).landmarks
    pose, scale, _ = relative_pose(rig.landmarks, lm)
    return FaceMeasure(lm, pose, scale, topo.lip_gap(lm), eye_openness(lm), iris_offset(lm))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (inf when identical)."""
    err = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(255.0 ** 2 / err))


def jitter(values: np.ndarray) -> float:
    """Mean absolute second difference of a (T, ...) track: high-frequency shake per frame."""
    v = np.asarray(values, np.float64)
    if len(v) < 3:
        return 0.0
    return float(np.mean(np.abs(v[2:] - 2 * v[1:-1] + v[:-2])))
