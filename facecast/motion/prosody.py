"""Prosody: loudness accents, intonation, talking activity and phrase boundaries, followed frame by
frame.

The head (nods on accents, pitch following intonation, gestures while talking, a new posture at
each phrase start, a settling nod at each phrase end), the brows (lift with emphasis), blinks
(more while talking and at phrase ends) and saccades (more looking away while talking) all read
this state.
"""
from __future__ import annotations

import math

import numpy as np

from .articulation import smoothing_gain

ACCENT_AMP = np.array([3.0, 2.0, 1.6])   # nod / turn / tilt per accent, degrees
ACCENT_TAU_S = 0.45           # an accent's head offset decays with this time constant
TALK_TAU_S = 0.5              # talking activity: speech activity smoothed this slowly (head gestures)
PHRASE_PAUSE_S = 0.3          # a silence at least this long separates phrases
PHRASE_END_NOD_DEG = 1.2      # head pitch dip when a phrase ends (the voice falls, the head settles)


class Prosody:
    """Smoothed loudness, speech activity, accents and F0 deviation of the voice so far.

    accent: (3,) float64 decaying head offsets (pitch, yaw, roll) in degrees; emph: 0..1 brow
    emphasis; speech_s: smoothed speech activity 0..1; talk: the same, smoothed over
    `TALK_TAU_S`; speaking: speech now; silent_for: seconds since speech; phrase_start /
    phrase_end: True on the frame where a phrase starts (speech after a pause of at least
    `PHRASE_PAUSE_S`, or the first speech) / ends (silence has lasted `PHRASE_PAUSE_S`);
    f0_dev: smoothed F0 deviation in octaves from the speaker's running mean.
    """

    def __init__(self):
        self.accent = np.zeros(3)
        self.emph = 0.0
        self.loud_fast = 0.0
        self.loud_slow = 0.0
        self.speech_s = 0.0
        self.talk = 0.0
        self.speaking = False
        self.silent_for = 10.0
        self.since_accent = 10.0
        self.in_phrase = False
        self.phrase_start = False
        self.phrase_end = False
        self.f0_mean = 0.0
        self.f0_dev = 0.0

    def step(self, window: dict[str, np.ndarray], dt: float, rng: np.random.Generator) -> None:
        """Advance one frame. window: the features under the frame ({} when none). Six normals
        are drawn from `rng` every frame, so the random sequence never depends on the audio."""
        if window:
            loud = float(window["loudness"].mean())
            voiced = window["pitch_hz"][window["pitch_hz"] > 0]
            f0 = float(voiced.mean()) if voiced.size else 0.0
            speech_now = float(window["speech"].mean())
        else:
            loud = f0 = speech_now = 0.0
        self.loud_fast += smoothing_gain(dt, 0.05) * (loud - self.loud_fast)
        self.loud_slow += smoothing_gain(dt, 0.6) * (loud - self.loud_slow)
        self.speech_s += smoothing_gain(dt, 0.15) * (speech_now - self.speech_s)
        self.talk += smoothing_gain(dt, TALK_TAU_S) * (speech_now - self.talk)
        self.speaking = speech_now > 0.5
        self.silent_for = 0.0 if self.speaking else self.silent_for + dt
        self.phrase_start = self.speaking and not self.in_phrase
        self.phrase_end = self.in_phrase and self.silent_for >= PHRASE_PAUSE_S
        if self.phrase_start:
            self.in_phrase = True
        elif self.phrase_end:
            self.in_phrase = False
            self.accent[0] -= PHRASE_END_NOD_DEG
        self.since_accent += dt
        r = rng.standard_normal(6)
        accent = self.speaking and self.loud_fast - self.loud_slow > 0.12 and self.since_accent > 0.35
        if accent:
            strength = min(1.0, (self.loud_fast - self.loud_slow) / 0.3)
            self.accent += ACCENT_AMP * strength * np.array([-1.0 + 0.3 * r[0], r[1], r[2]])
            self.emph = max(self.emph, 0.5 * strength)
            self.since_accent = 0.0
        self.accent *= math.exp(-dt / ACCENT_TAU_S)
        self.emph *= math.exp(-dt / 0.35)
        if f0 > 0:
            self.f0_mean = f0 if self.f0_mean == 0 else self.f0_mean + smoothing_gain(dt, 3.0) * (f0 - self.f0_mean)
            dev = math.log2(f0 / self.f0_mean)
        else:
            dev = 0.0
        self.f0_dev += smoothing_gain(dt, 0.25) * (dev * self.speech_s - self.f0_dev)
