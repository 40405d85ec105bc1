"""Mouth articulation: the acoustic features around a frame -> smoothed mouth blendshape weights.

Jaw opening follows vowel openness and loudness; lips round with rounded vowels and spread with
front vowels; stop closures, loudness valleys and nasal murmurs close the lips; sibilants bring
the teeth together; weak flat fricatives (f, v) tuck the lower lip under the upper teeth. Targets
are smoothed with fast closing and slightly slower opening.
"""
from __future__ import annotations

import math

import numpy as np

from .types import BLENDSHAPE_INDEX as BI
from .types import NUM_BLENDSHAPES

JAW_MAX = 0.58                # jawOpen for a loud fully open vowel
DIP_REACH_S = 0.08            # loudness valleys: neighbours looked at on each side
DIP_MIN, DIP_FULL = 0.15, 0.15  # valley depth (loudness units) where lips start / finish closing
TAU_OPEN_S, TAU_CLOSE_S, TAU_LIPS_S = 0.025, 0.02, 0.012
LIP_SEAL = ("mouthClose", "mouthPressLeft", "mouthPressRight")


def smoothing_gain(dt: float, tau: float) -> float:
    """Per-step gain of a first-order low-pass with time constant `tau` sampled every `dt`."""
    return 1.0 - math.exp(-dt / tau)


def loudness_dip(window: dict[str, np.ndarray], reach: dict[str, np.ndarray]) -> float:
    """0..1: how deep a loudness valley the frame's `window` is between louder neighbours within
    `reach` (a stop closure the closure detector misses: voiced /b/, or /p/ after silence)."""
    if not (window and reach):
        return 0.0
    ld = reach["loudness"]
    mid = len(ld) // 2
    valley = float(window["loudness"].min())
    sides = min(float(ld[:mid].max(initial=0.0)), float(ld[mid:].max(initial=0.0)))
    return min(1.0, max(0.0, (sides - valley - DIP_MIN) / DIP_FULL))


class Articulation:
    """The mouth's state: (52,) float64 smoothed blendshape weights; `step` advances one frame."""

    def __init__(self):
        self.weights = np.zeros(NUM_BLENDSHAPES, np.float64)

    def step(self, window: dict[str, np.ndarray], reach: dict[str, np.ndarray], expression_scale: float,
             dt: float) -> np.ndarray:
        """window: the features under the frame (see `MotionGenerator._window`; {} when none);
        reach: the features within `DIP_REACH_S` for valley detection. Returns a (52,) float64
        copy of the weights (only mouth shapes are non-zero)."""
        if window:
            openness = float(0.5 * window["openness"].mean() + 0.5 * window["openness"].max())
            closure = float(window["closure"].max())
            nasal = float(window["nasal"].max())
            rounding = float(window["rounding"].mean())
            front = float(window["frontness"].mean())
            fric = float(window["fricative"].mean())
            speech = float(window["speech"].mean())
            loud_m = float(window["loudness"].mean())
        else:
            openness = closure = nasal = rounding = front = fric = speech = loud_m = 0.0
        dip = loudness_dip(window, reach)
        lips_shut = max(closure, min(1.0, 1.5 * nasal), dip)
        active = min(1.0, speech * 1.5)
        jaw = JAW_MAX * min(1.0, 1.1 * openness) * active
        # weak, flat fricatives (f, v; th): the lower lip tucks up under the upper teeth
        labiodental = (min(1.0, max(0.0, (fric - 0.1) / 0.25)) * min(1.0, max(0.0, (0.85 - fric) / 0.3))
                       * (1.0 - min(1.0, loud_m)) * active)
        jaw *= (1.0 - 0.55 * lips_shut) * (1.0 - 0.45 * fric) * (1.0 - 0.6 * labiodental)
        target = np.zeros(NUM_BLENDSHAPES)
        target[BI["jawOpen"]] = jaw
        target[BI["mouthClose"]] = lips_shut * jaw
        target[BI["mouthPressLeft"]] = target[BI["mouthPressRight"]] = 0.35 * lips_shut * active
        target[BI["mouthPucker"]] = 0.75 * rounding * active * (1 - lips_shut)
        target[BI["mouthFunnel"]] = 0.55 * rounding * min(1.0, 2 * openness) * active * (1 - lips_shut)
        spread = 0.45 * front * (1 - rounding) * active
        target[BI["mouthStretchLeft"]] = target[BI["mouthStretchRight"]] = spread
        target[BI["mouthUpperUpLeft"]] = target[BI["mouthUpperUpRight"]] = 0.25 * fric * active + 0.15 * labiodental
        target[BI["mouthRollLower"]] = 0.7 * labiodental
        target[BI["mouthLowerDownLeft"]] = target[BI["mouthLowerDownRight"]] = 0.2 * jaw
        target *= expression_scale
        k_open, k_close = smoothing_gain(dt, TAU_OPEN_S), smoothing_gain(dt, TAU_CLOSE_S)
        k = np.where(target > self.weights, k_open, k_close)
        for name in LIP_SEAL:
            k[BI[name]] = smoothing_gain(dt, TAU_LIPS_S)
        self.weights += k * (target - self.weights)
        return self.weights.copy()
