"""Head motion: idle sway, accents and intonation -> head rotation, translation and scale.

Slow seeded sway, nods and tilts on accents, a pitch that follows the voice's intonation,
settling at phrase ends; smoothed by a critically damped filter so it never jitters.
`motion_scale` scales all of it (0 = still).
"""
from __future__ import annotations

import math

import numpy as np

from .controls import Controls
from .prosody import Prosody

HEAD_TAU_S = 0.18             # critically damped smoothing of head angles
IDLE_AMP = np.array([1.2, 2.2, 1.0])     # pitch, yaw, roll idle sway amplitude, degrees
INTONATION_DEG = 5.0          # head pitch per octave of F0 above the speaker's mean


class HeadMotion:
    """Seeded sway (3 sinusoids per axis) plus prosody, smoothed; `step` advances one frame."""

    def __init__(self, rng: np.random.Generator):
        self.sway_f = rng.uniform(0.05, 0.32, (3, 3))
        self.sway_p = rng.uniform(0, 2 * np.pi, (3, 3))
        self.sway_a = rng.uniform(0.5, 1.0, (3, 3))
        self.sway_a /= self.sway_a.sum(1, keepdims=True)
        self.angles = np.zeros(3)          # smoothed pitch, yaw, roll, degrees
        self.velocity = np.zeros(3)        # their velocity (critically damped filter)

    def step(self, t: float, dt: float, prosody: Prosody, c: Controls) -> tuple[np.ndarray, np.ndarray, float]:
        """Returns rotation (3,) float64 degrees, translation (2,) crop widths, scale."""
        ms = c.motion_scale
        sway = IDLE_AMP * (self.sway_a * np.sin(2 * np.pi * self.sway_f * t + self.sway_p)).sum(1)
        liveliness = 0.6 + 0.8 * prosody.speech_s    # more motion while talking, settling after
        emo = c.emotion                              # happy, sad, angry, surprised
        bias = np.array([-4.0 * emo[1] - 1.5 * emo[2] + 2.0 * emo[3], 0.0, 0.0])
        target = ms * (sway * liveliness + prosody.accent + np.array([INTONATION_DEG * prosody.f0_dev, 0, 0])
                       + bias) * (1.0 - 0.3 * emo[1])
        # critically damped second-order smoothing
        wn = 1.0 / HEAD_TAU_S
        acc = wn * wn * (target - self.angles) - 2 * wn * self.velocity
        self.velocity += acc * dt
        self.angles += self.velocity * dt
        rot = self.angles.copy()
        translation = np.array(c.head_offset) + ms * np.array([0.0015 * rot[1], -0.001 * rot[0]])
        scale = c.head_distance * (1.0 + 0.004 * ms * math.sin(2 * np.pi * 0.25 * t + self.sway_p[0, 0]))
        return rot, translation, scale
