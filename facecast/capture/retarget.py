"""Captured motion -> motion for another portrait (`facecast drive`).

- relative (the default): the driver's changes from its first frame are applied to the
  portrait's own expression and pose: weights = the portrait's + expression_scale x (driver's now
  - driver's rest level). The rest level is the driver's first frame, lowered shape by shape
  whenever a later frame shows less (a clip that starts mid-word, mouth open, would otherwise
  never close the portrait's lips, and one that starts mid-blink never blink); the pose is already relative to the driver's first frame, and
  the portrait's pose is the renderer's zero, so it is played as is (x motion_scale); gaze = the
  driver's change from its first frame.
- absolute: the driver's weights as they are (expression_scale blends from the portrait's own
  expression, 1 = the driver's), its gaze as measured; the pose is relative as above (copying an
  absolute head pose would turn a portrait photographed from the side to the camera).

gaze: a fixed (yaw, pitch) overrides the driver's eyes.
"""
from __future__ import annotations

import numpy as np

from ..errors import FacecastError
from ..motion.controls import CONTROL_RANGES, range_message
from ..motion.types import MotionFrame

MODES = ("relative", "absolute")


class Retargeter:
    """Call with each captured `MotionFrame`, in order; returns the portrait's `MotionFrame`.
    photo_weights: (52,) the portrait's own absolute weights (`FaceRig.expression.weights`)."""

    def __init__(self, photo_weights: np.ndarray, mode: str = "relative", motion_scale: float = 1.0,
                 expression_scale: float = 1.0, gaze: tuple[float, float] | None = None):
        if mode not in MODES:
            raise FacecastError(f"drive mode must be one of {', '.join(MODES)}, got {mode!r}")
        for name, v in (("motion_scale", motion_scale), ("expression_scale", expression_scale)):
            lo, hi = CONTROL_RANGES[name]
            if not lo <= v <= hi:
                raise FacecastError(range_message("--" + name.replace("_", "-"), lo, hi, v))
        if gaze is not None:
            lo, hi = CONTROL_RANGES["gaze"]
            if not all(lo <= g <= hi for g in gaze):
                raise FacecastError(range_message("--gaze (each number)", lo, hi, gaze))
        self.photo = np.asarray(photo_weights, np.float32)
        self.mode = mode
        self.motion_scale = float(motion_scale)
        self.expression_scale = float(expression_scale)
        self.gaze = None if gaze is None else np.asarray(gaze, np.float32)
        self.first: MotionFrame | None = None

    def __call__(self, m: MotionFrame) -> MotionFrame:
        if self.first is None:
            self.first = m
            self.rest = m.blendshapes.copy()
        es, ms = self.expression_scale, self.motion_scale
        if self.mode == "relative":
            self.rest = np.minimum(self.rest, m.blendshapes)
            w = self.photo + es * (m.blendshapes - self.rest)
            g = m.gaze - self.first.gaze
        else:
            w = self.photo + es * (m.blendshapes - self.photo)
            g = m.gaze
        if self.gaze is not None:
            g = self.gaze
        return MotionFrame(ms * m.rotation, ms * m.translation, 1.0 + ms * (m.scale - 1.0),
                           np.clip(w, 0.0, 1.0), g)
