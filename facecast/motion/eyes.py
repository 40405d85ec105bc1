"""Eye motion: blinks and gaze.

Blinks are a seeded renewal process at `blink_rate` per minute at rest and `TALK_BLINK_FACTOR`
times that while talking (people blink about 17 times a minute at rest and 20-26 while talking;
re-tracked real talking clips agree), with an extra chance of a blink at phrase ends. Small
saccades wander around the commanded gaze (more looking away while talking); the eyes partly
counter-rotate against head turns.
"""
from __future__ import annotations

import numpy as np

from .controls import Controls
from .prosody import Prosody

BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_OPEN_S = 0.07, 0.04, 0.14
TALK_BLINK_FACTOR = 1.2       # blink rate while talking, relative to `blink_rate` (17 -> 20 / min)
BLINK_GAMMA_SHAPE = 3.0       # intervals: gamma distributed, coefficient of variation 1 / sqrt(3)
BLINK_REFRACTORY_S = 1.0      # no blink sooner than this after the last one


def blink_profile(bt: float) -> float:
    """Lid closure 0..1 at `bt` seconds after a blink starts (close, hold, open)."""
    if bt < 0:
        return 0.0
    if bt < BLINK_CLOSE_S:
        return bt / BLINK_CLOSE_S
    if bt < BLINK_CLOSE_S + BLINK_HOLD_S:
        return 1.0
    if bt < BLINK_CLOSE_S + BLINK_HOLD_S + BLINK_OPEN_S:
        return 1.0 - (bt - BLINK_CLOSE_S - BLINK_HOLD_S) / BLINK_OPEN_S
    return 0.0


class EyeMotion:
    """Blink timing and saccades; `step` advances one frame."""

    def __init__(self, rng: np.random.Generator):
        # the blink clock counts mean blink intervals (rate x time, the rate following talking);
        # a blink comes when it reaches `next_blink`, a gamma draw of mean 1. The first is drawn
        # as if the clip started at a random moment of an ongoing blink process (a random point
        # of a length-biased interval), so short clips blink at the same rate as long ones.
        self.clock = 0.0
        self.next_blink = float(rng.gamma(BLINK_GAMMA_SHAPE + 1.0, 1.0 / BLINK_GAMMA_SHAPE) * rng.uniform())
        self.blink_t = -10.0              # start time of the current blink
        self.next_saccade = float(rng.uniform(0.3, 1.5))
        self.saccade = np.zeros(2)
        self.offset = np.zeros(2)         # smoothed saccade offset, degrees
        self.was_speaking = False

    def step(self, t: float, dt: float, prosody: Prosody, c: Controls, rotation: np.ndarray,
             rng: np.random.Generator) -> tuple[float, np.ndarray]:
        """Returns blink 0..1 and gaze (2,) float64 yaw, pitch in degrees relative to the head."""
        rate = max(c.blink_rate, 0.0) * (1.0 + (TALK_BLINK_FACTOR - 1.0) * prosody.talk)
        self.clock += rate / 60.0 * dt
        if prosody.speaking:
            self.was_speaking = True
        phrase_end = self.was_speaking and prosody.silent_for > 0.15
        u = rng.random()
        if t - self.blink_t > BLINK_REFRACTORY_S:
            if self.clock >= self.next_blink or (phrase_end and u < 0.5 and t - self.blink_t > 2.0):
                self.blink_t = t
                self.clock = 0.0
                self.next_blink = float(rng.gamma(BLINK_GAMMA_SHAPE, 1.0 / BLINK_GAMMA_SHAPE))
                self.was_speaking = False if phrase_end else self.was_speaking
            elif phrase_end and u >= 0.5:
                self.was_speaking = False
        blink = 0.0 if c.blink_rate <= 0 else blink_profile(t - self.blink_t)

        if t >= self.next_saccade:
            away = rng.random() < 0.12 * (0.5 + prosody.speech_s)
            amp = np.array([2.5, 1.5]) * (3.0 if away else 1.0)
            self.saccade = amp * rng.standard_normal(2)
            self.next_saccade = t + float(rng.uniform(0.5, 2.8))
        self.offset += 0.7 * (self.saccade - self.offset)
        gaze = np.array(c.gaze) + self.offset - 0.5 * np.array([rotation[1], rotation[0]]) * min(c.motion_scale, 1.0)
        return blink, gaze
