"""Head motion: posture drift, speech gestures, accents, intonation and breathing -> head rotation,
translation and scale.

Real speakers' heads (re-tracked talking videos, `facecast eval real`) move on three time scales,
and so does this model (all angles in degrees, per axis pitch, yaw, roll):
- **Posture drift**, seconds: a slow random walk pulled back to rest (an Ornstein-Uhlenbeck
  process, correlation time `DRIFT_TAU_S`, spread `DRIFT_DEG`), which also takes a new direction
  at the start of each phrase (`PHRASE_TURN_DEG`): speakers re-orient between phrases.
- **Speech gestures**, about a second: a faster random movement (correlation time
  `GESTURE_TAU_S`, spread `GESTURE_DEG`) that only runs while talking, scaled by how loud the
  voice is against its running level. Real head speed rises and falls with the voice.
- **Accents and intonation** (`prosody.Prosody`): nods and turns on stressed syllables, the head
  rising with the pitch of the voice, and a small settling nod at phrase ends.
In pauses the gestures stop and the drift calms to `PAUSE_DRIFT` of its talking spread, so the
head settles back towards rest over a few seconds; what is left is a slow wander and breathing
(`BREATH_HZ`, `BREATH_DEG`). Everything goes through a critically damped
filter (`HEAD_TAU_S`), so it never jitters. `motion_scale` scales all of it (0 = still).

The spreads are set so that a default render, re-tracked, moves about as much as the median real
speaker (head pose standard deviation and frame-to-frame motion); they are commanded angles, and
the renderer's 2D warp shows pitch and yaw at about 0.65 and 0.75 of their commanded size.
Eight normals are drawn per frame, so the random sequence never depends on the audio.
"""
from __future__ import annotations

import math

import numpy as np

from .controls import Controls
from .prosody import Prosody

HEAD_TAU_S = 0.12             # critically damped smoothing of head angles (cut-off about 1.3 Hz)
DRIFT_TAU_S = 2.0             # posture drift: correlation time ...
DRIFT_DEG = np.array([2.2, 2.8, 0.9])      # ... and stationary spread (pitch, yaw, roll)
PHRASE_TURN_DEG = np.array([0.8, 1.6, 0.6])  # new posture offset at each phrase start (spread)
GESTURE_TAU_S = 0.3           # speech gestures: correlation time ...
GESTURE_DEG = np.array([2.0, 2.0, 1.0])   # ... and spread while talking at the voice's usual level
PAUSE_DRIFT = 0.35            # drift spread in pauses, relative to talking
BREATH_HZ, BREATH_DEG = 0.25, 0.3  # breathing in pauses: 15 breaths a minute, head pitch swing
INTONATION_DEG = 5.0          # head pitch per octave of F0 above the speaker's mean


class HeadMotion:
    """Drift and gesture processes plus prosody, smoothed; `step` advances one frame."""

    def __init__(self, rng: np.random.Generator):
        self.drift = rng.standard_normal(3) * DRIFT_DEG * 0.5   # start near, not at, rest
        self.gesture = np.zeros(3)
        self.breath_phase = float(rng.uniform(0, 2 * np.pi))
        self.angles = np.zeros(3)          # smoothed pitch, yaw, roll, degrees
        self.velocity = np.zeros(3)        # their velocity (critically damped filter)

    def step(self, t: float, dt: float, prosody: Prosody, c: Controls,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        """Returns rotation (3,) float64 degrees, translation (2,) crop widths, scale."""
        ms = c.motion_scale
        r = rng.standard_normal(5)
        talk = prosody.talk                           # 0 in pauses .. 1 while talking (slow)
        # posture drift (Ornstein-Uhlenbeck), re-aimed at phrase starts; in pauses its noise drops
        # to PAUSE_DRIFT, so the head settles back towards rest and only wanders a little
        a = dt / DRIFT_TAU_S
        stir = PAUSE_DRIFT + (1.0 - PAUSE_DRIFT) * talk
        self.drift += -a * self.drift + math.sqrt(2 * a) * stir * DRIFT_DEG * np.array([r[0], r[1], r[2]])
        if prosody.phrase_start:
            self.drift += PHRASE_TURN_DEG * np.array([abs(r[3]), r[4], 0.5 * r[0]])
        # speech gestures: faster random movement while talking, scaled by the voice's energy
        g = dt / GESTURE_TAU_S
        energy = min(1.5, prosody.loud_fast / max(prosody.loud_slow, 0.2))
        noise = rng.standard_normal(3)
        self.gesture += -g * self.gesture + math.sqrt(2 * g) * GESTURE_DEG * noise * talk * energy
        breath = BREATH_DEG * (1.0 - talk) * math.sin(2 * np.pi * BREATH_HZ * t + self.breath_phase)
        emo = c.emotion                 # happy, sad, angry, surprised, disgusted, fearful, contempt
        # posture with the emotion: sadness drops the head, anger lowers it a little, surprise and
        # contempt lift the chin (contempt with a slight turn and tilt), disgust draws it down
        bias = np.array([-4.0 * emo[1] - 1.5 * emo[2] + 2.0 * emo[3] - 1.5 * emo[4] + 1.0 * emo[5] + 2.5 * emo[6],
                         -2.0 * emo[6], 1.5 * emo[6]])
        target = ms * (self.drift + self.gesture + prosody.accent
                       + np.array([INTONATION_DEG * prosody.f0_dev + breath, 0.0, 0.0]) + bias) * (1.0 - 0.3 * emo[1])
        # critically damped second-order smoothing (semi-implicit Euler, in steps short enough to
        # stay stable at any frame rate)
        wn = 1.0 / HEAD_TAU_S
        n = max(1, math.ceil(dt * wn / 0.25))
        h = dt / n
        for _ in range(n):
            self.velocity += (wn * wn * (target - self.angles) - 2 * wn * self.velocity) * h
            self.angles += self.velocity * h
        rot = self.angles.copy()
        translation = np.array(c.head_offset) + ms * np.array([0.0015 * rot[1], -0.001 * rot[0]])
        scale = c.head_distance * (1.0 + 0.004 * ms * math.sin(2 * np.pi * BREATH_HZ * t + self.breath_phase))
        return rot, translation, scale
