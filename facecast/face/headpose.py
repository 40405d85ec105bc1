"""Head-pose math shared by the rig, the renderer and the re-tracking metrics.

Camera frame: x right, y down, z away from the viewer (image coordinates plus depth).
Euler angles (degrees) follow `facecast.motion`: pitch > 0 face up, yaw > 0 face turns to the
viewer's right, roll > 0 clockwise in the image. R = Rz(roll) @ Ry(-yaw) @ Rx(-pitch).
"""
from __future__ import annotations

import numpy as np

from . import topology as topo


def euler_to_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """(3, 3) float64 rotation for the given angles in degrees."""
    p, y, r = np.radians([-pitch, -yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def matrix_to_euler(m: np.ndarray) -> tuple[float, float, float]:
    """Inverse of `euler_to_matrix`: (pitch, yaw, roll) in degrees."""
    # m = Rz(r) Ry(b) Rx(a) with a = -pitch, b = -yaw
    b = np.arcsin(np.clip(-m[2, 0], -1.0, 1.0))
    a = np.arctan2(m[2, 1], m[2, 2])
    r = np.arctan2(m[1, 0], m[0, 0])
    return float(-np.degrees(a)), float(-np.degrees(b)), float(np.degrees(r))


def head_frame(landmarks: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) whose columns are the face's right, down and backward axes in the camera frame.

    Estimated from the mesh's symmetric landmark pairs (x axis) and the forehead-to-chin line
    (y axis). For a frontal face it is close to the identity.
    """
    L = landmarks.astype(np.float64)
    pairs = np.array(topo.SYMMETRIC_PAIRS)
    x = (L[pairs[:, 1]] - L[pairs[:, 0]]).sum(0)
    x /= np.linalg.norm(x)
    y = L[[152, 199, 175, 18]].mean(0) - L[[10, 151, 9, 8]].mean(0)
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=1)


def face_scale(landmarks: np.ndarray) -> float:
    """The face's size in pixels: the distance between the outer eye corners (landmarks 33, 263)."""
    return float(np.linalg.norm(landmarks[263].astype(np.float64) - landmarks[33]))


def head_pivot(landmarks: np.ndarray, rotation: np.ndarray, scale: float) -> np.ndarray:
    """(3,) float64 point the head turns about: between the ears (landmarks 234, 454), a little
    behind and below them in the head's frame `rotation`, in units of `scale` (`face_scale`)."""
    ears = (landmarks[234].astype(np.float64) + landmarks[454]) / 2
    return ears + rotation @ np.array([0.0, 0.15, 0.25]) * scale


def rigid_align(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Similarity transform dst ~ s * R @ src + t (Kabsch-Umeyama). Returns (R (3, 3), s, t (3,))."""
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    corr = np.diag([1.0, 1.0, d])
    r = u @ corr @ vt
    s = float((sv * np.diag(corr)).sum() / (a ** 2).sum())
    return r, s, md - s * r @ ms


def relative_pose(reference: np.ndarray, current: np.ndarray) -> tuple[tuple[float, float, float], float, np.ndarray]:
    """Head rotation (pitch, yaw, roll) in degrees, scale and translation of `current` landmarks
    relative to `reference` landmarks, both (478, 3), using the expression-free points."""
    idx = topo.RIGID_POINTS
    r, s, t = rigid_align(reference[idx], current[idx])
    return matrix_to_euler(r), s, t
