"""The `facecast analyze` picture: the crop with mesh, landmark loops, head-pose axes and masks drawn."""
from __future__ import annotations

import cv2
import numpy as np

from . import topology as topo
from .rig import FaceRig

MASK_COLOURS = {"person": (90, 90, 255), "face": (255, 210, 0), "lips": (255, 60, 120),
                "mouth": (255, 0, 0), "eyes": (0, 255, 255), "irises": (0, 120, 255)}


def draw_overlay(rig: FaceRig) -> np.ndarray:
    """(S, 2S, 3) uint8: left the crop with mesh, loops and pose axes; right the masks in colour."""
    img = rig.image.copy()
    xy = rig.landmarks[:, :2]
    sh = 4
    P = np.round(xy * (1 << sh)).astype(np.int32)
    for a, b, c in rig.triangles:
        cv2.polylines(img, [P[[a, b, c]]], True, (200, 200, 200), 1, cv2.LINE_AA, shift=sh)
    for loop, col in ((topo.LIPS_OUTER, (255, 60, 120)), (topo.LIPS_INNER, (255, 0, 0)),
                      (topo.RIGHT_EYE, (0, 255, 255)), (topo.LEFT_EYE, (0, 255, 255)),
                      (topo.FACE_OVAL, (255, 210, 0)), (topo.RIGHT_BROW, (0, 255, 0)), (topo.LEFT_BROW, (0, 255, 0))):
        cv2.polylines(img, [P[loop]], True, col, 1, cv2.LINE_AA, shift=sh)
    for iris in (topo.RIGHT_IRIS, topo.LEFT_IRIS):
        cv2.circle(img, tuple(int(v) for v in P[iris[0]]), 2 << sh, (0, 120, 255), -1, cv2.LINE_AA, shift=sh)
    # head-pose axes from the nose tip
    o = rig.landmarks[topo.NOSE_TIP]
    L = 0.6 * rig.face_scale
    for axis, col in zip(rig.rotation.T, ((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        e = o + axis * L * (-1 if col == (0, 0, 255) else 1)  # blue points out of the face
        cv2.arrowedLine(img, (int(o[0]), int(o[1])), (int(e[0]), int(e[1])), col, 2, cv2.LINE_AA)
    p, y, r = rig.pose
    cv2.putText(img, f"pitch {p:+.1f}  yaw {y:+.1f}  roll {r:+.1f}", (8, 22), cv2.FONT_HERSHEY_SIMPLEX,
                0.55, (255, 255, 255), 2, cv2.LINE_AA)
    masks = np.zeros_like(img, np.float32)
    for name, col in MASK_COLOURS.items():
        m = rig.masks[name].astype(np.float32)[..., None] / 255.0
        masks = masks * (1 - m) + np.float32(col) * m
    right = (0.35 * rig.image + 0.65 * masks).astype(np.uint8)
    return np.concatenate([img, right], axis=1)
