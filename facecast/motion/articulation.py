"""Mouth articulation: the acoustic features around a frame -> smoothed mouth blendshape weights.

The jaw follows how open the voice sounds, mixed from two cues: F1-based vowel openness and the
energy of the 2.5-4 kHz band (`aperture`, the acoustic measure that follows lip-opening area
best). That drive is averaged over a Gaussian window around the frame (`JAW_SIGMA_S`, reaching
into the look-ahead), so the jaw moves with syllable groups and stress, as re-tracked real
speakers' mouths do, instead of snapping open and shut on every syllable; a share of the
frame's own value (`PEAK_SHARE`) keeps stressed vowels wide. While the voice is active the jaw
holds a speaking posture (`POSTURE` of its range) between syllables: real lips stay parted
through most consonants.

The lips seal, over whatever the jaw does, on loudness valleys (the closure of /p/ or /b/
between louder sounds), nasal murmurs and silence before speech. A seal comes at once and lets
go slowly (`TAU_LIPS_RELEASE_S`) unless a vowel starts, so a flickering cue does not flap the
lips (with a 60 ms release, re-tracked mouths moved about 1.5x as fast as real ones; with 350 ms,
1.25x). The analyzer's stop-closure cue does not seal the lips: acoustics cannot tell p/b from
t/d/k/g, most stops are the latter, and their lips stay apart; without it the correlation with
real mouths rose slightly and the eSpeak bilabials still close (their valleys seal). Lips round
with rounded vowels and spread with front vowels; sibilants bring the teeth together; weak flat
fricatives (f, v) tuck the lower lip under the upper teeth.

Singing: a voice whose loud voicing keeps running in long unbroken notes is taken for singing
(`singing`, 0..1: quick to rise over `SINGING_TAU_S`, slow to fall over `SINGING_DECAY_S`, so a
passage of short notes inside a song stays sung); its notes then hold the jaw open
(at least `SUNG_JAW_FLOOR` of its range, and up to `SUNG_JAW_GAIN` wider than speech) and are
not taken for nasal murmurs or valleys, while breaths between phrases still close the lips.

How these constants were chosen: against both ground truths at once. eSpeak NG sentences with
known phoneme timing (`facecast eval lipsync`: bilabials close, open vowels open, silences
stay closed) and real talking clips re-tracked with the face mesh (`facecast eval real`: the
mouth-opening correlation and opening speed against the real mouth). The smoothing and the
posture raised the correlation with real mouths and brought the opening speed down; JAW_MAX
sets the opening's amplitude, which real conversational speakers keep modest (lip gap at the
90th percentile about 0.06-0.14 eye-corner distances).
"""
from __future__ import annotations

import math

import numpy as np

from .types import BLENDSHAPE_INDEX as BI
from .types import NUM_BLENDSHAPES

JAW_MAX = 0.45                # jawOpen for a loud fully open vowel
APERTURE_SHARE = 0.6          # jaw drive: this share from `aperture`, the rest from F1 `openness`
JAW_SIGMA_S = 0.08            # Gaussian window (sigma) the jaw drive is averaged over
PEAK_SHARE = 0.5              # ... mixed with this share of the frame's own drive
POSTURE = 0.2                 # share of the jaw's range held while talking, between syllables
TALK_PAST_S = 0.05            # talking: voice activity from this long before the frame on
CONTEXT_PAST_S, CONTEXT_AHEAD_S = 0.16, 0.16  # features read around a frame (ahead: look-ahead allowing)
DIP_REACH_S = 0.08            # loudness valleys: neighbours looked at on each side
DIP_MIN, DIP_FULL = 0.2, 0.15  # valley depth (loudness units) where lips start / finish closing
NASAL_GAIN = 1.8              # nasal murmur -> lip seal (0.56 seals fully)
SEAL_JAW, FRIC_JAW, LABIODENTAL_JAW = 0.55, 0.45, 0.6  # how much a seal / fricative / f-v closes the jaw
TAU_OPEN_S, TAU_CLOSE_S, TAU_LIPS_S = 0.04, 0.04, 0.02  # first-order smoothing: jaw and shapes, lip seal
TAU_LIPS_RELEASE_S = 0.35    # the seal lets go this slowly ...
RELEASE_DRIVE = 0.8           # ... unless the voice sounds this open (a vowel starts: the lips part at once)
#: lip gestures that follow the lip seal's fast time constant (the lips are quicker than the jaw)
FAST_LIPS = ("mouthPressLeft", "mouthPressRight", "mouthRollLower", "mouthUpperUpLeft", "mouthUpperUpRight")
# singing: a held note is loud voicing (loudness > NOTE_LOUDNESS) that goes on. The share of loud
# voicing spent in notes held at least NOTE_MIN_S is followed as a running value that rises with
# SINGING_TAU_S and falls with the slower SINGING_DECAY_S (a song's passages of short notes do not
# undo it); the voice counts as singing as that share crosses SINGING_SHARE (0 -> 1). Speech reads
# at most 0.33 (a German news anchor reading fast and loud; eSpeak 0, three English speakers
# <= 0.15), two solo singers 0.54 and 0.68 at the median, crossing 0.33 after 1-3 s. Pitch
# steadiness was tried first: the pitch tracker's jumps on sung vowels broke the notes.
NOTE_LOUDNESS = 0.7
NOTE_MIN_S = 0.4
NOTE_GAP_S = 0.05
SINGING_TAU_S = 1.0
SINGING_DECAY_S = 6.0
SINGING_SHARE = (0.33, 0.43)
SUNG_JAW_GAIN = 0.6           # a sung note opens the jaw up to this much wider than speech ...
SUNG_JAW_FLOOR = 0.6          # ... and at least this share of JAW_MAX (before that gain)


def smoothing_gain(dt: float, tau: float) -> float:
    """Per-step gain of a first-order low-pass with time constant `tau` sampled every `dt`."""
    return 1.0 - math.exp(-dt / tau)


def loudness_dip(window: dict[str, np.ndarray], reach: dict[str, np.ndarray]) -> float:
    """0..1: how deep a loudness valley the frame's `window` is between louder neighbours within
    `reach` (a stop closure: the silence of /p/ or the murmur of voiced /b/ between louder vowels)."""
    if not (window and reach):
        return 0.0
    ld = reach["loudness"]
    mid = len(ld) // 2
    valley = float(window["loudness"].min())
    sides = min(float(ld[:mid].max(initial=0.0)), float(ld[mid:].max(initial=0.0)))
    return min(1.0, max(0.0, (sides - valley - DIP_MIN) / DIP_FULL))


def jaw_drive(features: dict[str, np.ndarray]) -> np.ndarray:
    """How open the voice sounds, 0..1 per feature frame: `APERTURE_SHARE` of `aperture`, the
    rest F1 `openness`."""
    return APERTURE_SHARE * features["aperture"] + (1.0 - APERTURE_SHARE) * features["openness"]


class Articulation:
    """The mouth's state: (52,) float64 smoothed blendshape weights and the smoothed lip seal
    `lips` (0..1); `step` advances one frame."""

    def __init__(self):
        self.weights = np.zeros(NUM_BLENDSHAPES, np.float64)
        self.lips = 0.0
        self.note_s = 0.0          # how long the current note has been held
        self.singing = 0.0         # 0..1: how much the voice sounds sung
        self._held_share = 0.0
        self._break_s = 0.0

    def _follow_notes(self, window: dict[str, np.ndarray], dt: float) -> None:
        """Advance the held-note and singing estimates by one frame (breaks in the voice up to
        `NOTE_GAP_S` long continue the note)."""
        held_now = bool(window) and float(window["voicing"].mean()) > 0.5 \
            and float(window["loudness"].mean()) > NOTE_LOUDNESS
        if not held_now:
            self._break_s += dt
            if self._break_s > NOTE_GAP_S:
                self.note_s = 0.0
            return
        self._break_s = 0.0
        self.note_s += dt
        held = 1.0 if self.note_s >= NOTE_MIN_S else 0.0
        tau = SINGING_TAU_S if held > self._held_share else SINGING_DECAY_S
        self._held_share += smoothing_gain(dt, tau) * (held - self._held_share)
        lo, hi = SINGING_SHARE
        self.singing = min(1.0, max(0.0, (self._held_share - lo) / (hi - lo)))

    def step(self, window: dict[str, np.ndarray], reach: dict[str, np.ndarray], context: dict[str, np.ndarray],
             expression_scale: float, dt: float) -> np.ndarray:
        """window: the features under the frame (see `MotionGenerator._window`; {} when none);
        reach: the features within `DIP_REACH_S`, for valley detection; context: the features
        from `CONTEXT_PAST_S` before to (at most) `CONTEXT_AHEAD_S` after the frame, with their
        "offset_s". Returns a (52,) float64 copy of the weights (only mouth shapes are non-zero)."""
        if window:
            drive = jaw_drive(window)
            drive_peak = float(drive.max())
            drive_now = 0.5 * float(drive.mean()) + 0.5 * drive_peak
            nasal = float(window["nasal"].max())
            rounding = float(window["rounding"].mean())
            front = float(window["frontness"].mean())
            fric = float(window["fricative"].mean())
            speech = float(window["speech"].mean())
            loud_m = float(window["loudness"].mean())
        else:
            drive_now = drive_peak = nasal = rounding = front = fric = speech = loud_m = 0.0
        if context:
            off = context["offset_s"]
            w = np.exp(-0.5 * (off / JAW_SIGMA_S) ** 2)
            drive_ctx = float((w * jaw_drive(context)).sum() / w.sum())
            talking = np.clip((context["loudness"][off >= -TALK_PAST_S] - 0.1) / 0.3, 0.0, 1.0)
            talk = float(talking.max(initial=0.0))
        else:
            drive_ctx = talk = 0.0
        self._follow_notes(window, dt)
        # the lips seal on loudness valleys, murmurs, and in silence (before speech starts); a
        # singer's notes are open vowels, not murmurs or valleys. The stop-closure cue is left out:
        # most stops are t, d, k, g, whose lips stay apart (see the module docstring)
        sung = self.singing if self.note_s > 0 else 0.0
        legato = 1.0 - sung
        seal = max(1.0 - speech, legato * min(1.0, NASAL_GAIN * nasal),
                   legato * loudness_dip(window, reach))
        active = min(1.0, speech * 1.5)
        drive = PEAK_SHARE * drive_now + (1.0 - PEAK_SHARE) * drive_ctx
        jaw = JAW_MAX * (POSTURE * talk + (1.0 - POSTURE) * min(1.0, 1.1 * drive)) * max(active, talk)
        # a sung note stays open whatever its vowel, and opens wider than speech does
        jaw = max(jaw, sung * SUNG_JAW_FLOOR * JAW_MAX) * (1.0 + SUNG_JAW_GAIN * sung)
        # weak, flat fricatives (f, v; th): the lower lip tucks up under the upper teeth
        labiodental = (min(1.0, max(0.0, (fric - 0.1) / 0.25)) * min(1.0, max(0.0, (0.85 - fric) / 0.3))
                       * (1.0 - min(1.0, loud_m)) * active)
        jaw *= (1.0 - SEAL_JAW * seal) * (1.0 - FRIC_JAW * fric) * (1.0 - LABIODENTAL_JAW * labiodental)
        target = np.zeros(NUM_BLENDSHAPES)
        target[BI["jawOpen"]] = jaw
        target[BI["mouthPressLeft"]] = target[BI["mouthPressRight"]] = 0.35 * seal * active
        target[BI["mouthPucker"]] = 0.75 * rounding * active * (1 - seal)
        target[BI["mouthFunnel"]] = 0.55 * rounding * min(1.0, 2 * drive_now) * active * (1 - seal)
        spread = 0.45 * front * (1 - rounding) * active
        target[BI["mouthStretchLeft"]] = target[BI["mouthStretchRight"]] = spread
        target[BI["mouthUpperUpLeft"]] = target[BI["mouthUpperUpRight"]] = 0.25 * fric * active + 0.15 * labiodental
        target[BI["mouthRollLower"]] = 0.7 * labiodental
        target[BI["mouthLowerDownLeft"]] = target[BI["mouthLowerDownRight"]] = 0.2 * jaw * (1 - seal)
        target *= expression_scale
        k_open, k_close = smoothing_gain(dt, TAU_OPEN_S), smoothing_gain(dt, TAU_CLOSE_S)
        k = np.where(target > self.weights, k_open, k_close)
        k_lips = smoothing_gain(dt, TAU_LIPS_S)
        for name in FAST_LIPS:
            k[BI[name]] = k_lips
        self.weights += k * (target - self.weights)
        # the seal closes the lips over the jaw as it is now (mouthClose = seal x jawOpen), so a
        # jaw that is still closing cannot hold the lips apart. It closes fast and lets go slowly
        # except into an open vowel: a murmur's or valley's flicker does not flap the lips open
        # (re-tracked real mouths open 1.2-1.8 times a second; facecast's did 2.3-4.3)
        fast = seal > self.lips or drive_peak >= RELEASE_DRIVE or sung > 0.5   # a sung note opens at once
        k_seal = k_lips if fast else smoothing_gain(dt, TAU_LIPS_RELEASE_S)
        self.lips += k_seal * (seal - self.lips)
        self.weights[BI["mouthClose"]] = self.lips * self.weights[BI["jawOpen"]]
        return self.weights.copy()
