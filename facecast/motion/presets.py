"""Preset motion clips for quick looks (`facecast animate IMAGE --preset NAME`).

Each preset is a deterministic `MotionSequence` that exercises one part of the renderer.
"""
from __future__ import annotations

import numpy as np

from ..errors import FacecastError
from .controls import format_number, range_message
from .types import BLENDSHAPE_INDEX, NUM_BLENDSHAPES, MotionSequence

PRESETS = ("nod", "shake", "tilt", "smile", "talk", "blink", "gaze")
#: Length of a preset clip in seconds: one frame at 25 fps up to an hour.
SECONDS_RANGE = (0.04, 3600.0)
#: Frame rates facecast renders at (`Animator.render` checks the same range).
FPS_RANGE = (1.0, 120.0)


def preset_motion(name: str, seconds: float = 3.0, fps: float = 25.0) -> MotionSequence:
    """The named preset as a MotionSequence of `seconds` at `fps`."""
    if name not in PRESETS:
        raise FacecastError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    for label, v, (lo, hi) in (("seconds", seconds, SECONDS_RANGE), ("fps", fps, FPS_RANGE)):
        if not lo <= v <= hi:
            raise FacecastError(range_message(label, lo, hi, format_number(v)))
    n = max(1, int(round(seconds * fps)))
    t = np.arange(n) / fps
    ramp = np.sin(np.pi * t / seconds) ** 2            # 0 -> 1 -> 0 over the clip
    rot = np.zeros((n, 3))
    tr = np.zeros((n, 2))
    sc = np.ones(n)
    bs = np.zeros((n, NUM_BLENDSHAPES))
    gaze = np.zeros((n, 2))

    def put(name_, values):
        bs[:, BLENDSHAPE_INDEX[name_]] = np.clip(values, 0, 1)

    if name == "nod":
        rot[:, 0] = 12 * np.sin(2 * np.pi * t / (seconds / 2))
    elif name == "shake":
        rot[:, 1] = 18 * np.sin(2 * np.pi * t / (seconds / 2))
    elif name == "tilt":
        rot[:, 2] = 12 * np.sin(2 * np.pi * t / (seconds / 2))
    elif name == "smile":
        put("mouthSmileLeft", ramp)
        put("mouthSmileRight", ramp)
        put("cheekSquintLeft", 0.5 * ramp)
        put("cheekSquintRight", 0.5 * ramp)
    elif name == "blink":  # a 0.24 s blink every 0.9 s from 0.4 s on: each frame's nearest one
        centres = np.arange(0.4, seconds, 0.9)
        if len(centres):
            c = centres[np.clip(np.round((t - 0.4) / 0.9).astype(int), 0, len(centres) - 1)]
            k = np.clip(1 - np.abs(t - c) / 0.12, 0, 1)
            put("eyeBlinkLeft", k)
            put("eyeBlinkRight", k)
    elif name == "gaze":
        gaze[:, 0] = 25 * np.sin(2 * np.pi * t / seconds)
        gaze[:, 1] = 12 * np.sin(4 * np.pi * t / seconds)
    elif name == "talk":
        # syllables at ~4 Hz with varying openness, rounding and lip closures; gentle head motion
        syl = 0.5 - 0.5 * np.cos(2 * np.pi * 4.1 * t)
        env = 0.55 + 0.45 * np.sin(2 * np.pi * 0.7 * t + 1.0)
        put("jawOpen", 0.55 * syl * env)
        put("mouthFunnel", 0.35 * np.clip(np.sin(2 * np.pi * 1.3 * t), 0, 1))
        put("mouthClose", 0.25 * (1 - syl))
        put("browInnerUp", 0.3 * np.clip(np.sin(2 * np.pi * 0.5 * t), 0, 1))
        rot[:, 0] = 3 * np.sin(2 * np.pi * 0.6 * t)
        rot[:, 1] = 5 * np.sin(2 * np.pi * 0.33 * t + 0.5)
        rot[:, 2] = 2 * np.sin(2 * np.pi * 0.45 * t + 1.3)
        k = np.clip(1 - np.abs(t - 1.7) / 0.12, 0, 1)
        put("eyeBlinkLeft", k)
        put("eyeBlinkRight", k)
    return MotionSequence(fps, rot, tr, sc, bs, gaze)
