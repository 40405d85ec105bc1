"""Motion generator: speech audio + controls -> motion frames, streaming and causal.

`MotionGenerator` takes audio in chunks of any size (`push`) and returns every motion frame whose
inputs are complete; `flush` ends the clip. Frame i shows the face at time i / fps and depends on
audio up to i / fps + `lookahead_s` only, so the same code serves offline rendering and the live
mode, and any chunking of the same audio gives the same frames. `generate_motion` is the
whole-clip convenience (push everything, flush).

What drives what (all from language-agnostic acoustics, `acoustics.py`; no recogniser):

- Mouth: jaw opening follows vowel openness and loudness; lips round with rounded vowels and
  spread with front vowels; stop closures, loudness valleys and nasal murmurs close the lips (the
  closure comes before the burst, so the lips are shut before the sound); sibilants bring the
  teeth together; weak flat fricatives (f, v) tuck the lower lip under the upper teeth;
  the lips lead the sound by `lip_lead_s` (anticipatory coarticulation) and are smoothed with fast
  closing and slightly slower opening; in pauses the lips close.
- Head: slow idle sway (seeded), nods and tilts on accents (loudness rises), a pitch that follows
  the voice's intonation, settling at phrase ends; smoothed by a critically damped filter so it
  never jitters. `motion_scale` scales all of it (0 = still).
- Eyes: blinks as a seeded renewal process at `blink_rate` per minute, more likely at phrase ends;
  small saccades around the commanded gaze; eyes partly counter-rotate against head turns.
- Brows lift with emphasis; emotions (happy, sad, angry, surprised, blended) add their shapes.
"""
from __future__ import annotations

import math

import numpy as np

from .acoustics import HOP_S, AcousticAnalyzer, AcousticFeatures
from .controls import Controls, ControlTrack
from .motion import BLENDSHAPE_INDEX as BI
from .motion import NUM_BLENDSHAPES, MotionSequence

SAMPLE_RATE = 16000
DEFAULT_LOOKAHEAD_S = 0.12
DEFAULT_LIP_LEAD_S = 0.0
FEATURES = ("loudness", "voicing", "pitch_hz", "openness", "frontness", "rounding", "nasal", "fricative",
            "closure", "burst", "speech")

JAW_MAX = 0.58                # jawOpen for a loud fully open vowel
DIP_REACH_S = 0.08            # loudness valleys: neighbours looked at on each side
DIP_MIN, DIP_FULL = 0.15, 0.15  # valley depth (loudness units) where lips start / finish closing
TAU_OPEN_S, TAU_CLOSE_S, TAU_LIPS_S = 0.025, 0.02, 0.012
HEAD_TAU_S = 0.18             # critically damped smoothing of head angles
IDLE_AMP = np.array([1.2, 2.2, 1.0])     # pitch, yaw, roll idle sway amplitude, degrees
ACCENT_AMP = np.array([3.0, 2.0, 1.6])   # nod / turn / tilt per accent, degrees
INTONATION_DEG = 5.0          # head pitch per octave of F0 above the speaker's mean
BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_OPEN_S = 0.07, 0.04, 0.14


def _k(dt: float, tau: float) -> float:
    return 1.0 - math.exp(-dt / tau)


class MotionGenerator:
    """Streaming audio -> motion. See the module docstring.

    fps: output frame rate; controls: a `Controls` or a keyframed `ControlTrack`;
    lookahead_s: how far past a frame's time its inputs may reach (latency of the live mode);
    lip_lead_s: how much the lips anticipate the sound (<= lookahead_s - 0.03).
    """

    def __init__(self, fps: float = 25.0, controls: Controls | ControlTrack | None = None,
                 lookahead_s: float = DEFAULT_LOOKAHEAD_S, lip_lead_s: float = DEFAULT_LIP_LEAD_S,
                 sample_rate: int = SAMPLE_RATE):
        if sample_rate != SAMPLE_RATE:
            raise ValueError("MotionGenerator takes 16 kHz audio; resample with facecast.audio first")
        if not 0.0 <= lip_lead_s <= lookahead_s - 0.5 / fps + 1e-9:
            raise ValueError("lip_lead_s must be between 0 and lookahead_s minus half a frame")
        self.fps = float(fps)
        self.track = controls if isinstance(controls, ControlTrack) else ControlTrack.constant(controls)
        self.lookahead_s = float(lookahead_s)
        self.lip_lead_s = float(lip_lead_s)
        # valleys are judged on neighbours within the look-ahead only, so output never depends
        # on how the audio was chunked
        self.dip_reach_s = max(0.02, min(DIP_REACH_S, self.lookahead_s - self.lip_lead_s - 0.5 * HOP_S - 0.5 / self.fps))
        self.analyzer = AcousticAnalyzer(SAMPLE_RATE, HOP_S)
        self._feat = {k: np.zeros(0, np.float32) for k in FEATURES}
        self._feat_base = 0           # feature index of self._feat[...][0]
        self._n_feat = 0              # feature frames received so far
        self._samples = 0
        self._frame = 0               # next output frame index
        self._flushed = False
        self._init_state()

    # ---- state --------------------------------------------------------------------------------
    def _init_state(self) -> None:
        rng = np.random.default_rng(self.track.seed)
        self.rng = rng
        self.mouth = np.zeros(NUM_BLENDSHAPES, np.float64)
        # idle sway: 3 sinusoids per axis with random frequency and phase
        self.sway_f = rng.uniform(0.05, 0.32, (3, 3))
        self.sway_p = rng.uniform(0, 2 * np.pi, (3, 3))
        self.sway_a = rng.uniform(0.5, 1.0, (3, 3))
        self.sway_a /= self.sway_a.sum(1, keepdims=True)
        self.head = np.zeros(3)           # smoothed angles
        self.head_v = np.zeros(3)         # their velocity (critically damped filter)
        self.accent = np.zeros(3)         # decaying accent offsets
        self.emph = 0.0                   # brow emphasis
        self.loud_fast = 0.0
        self.loud_slow = 0.0
        self.speech_s = 0.0               # smoothed speech activity
        self.silent_for = 10.0            # seconds since speech
        self.since_accent = 10.0
        self.f0_mean = 0.0
        self.f0_dev = 0.0
        self.next_blink = float(rng.uniform(0.6, 2.5))
        self.blink_t = -10.0              # start time of the current blink
        self.next_saccade = float(rng.uniform(0.3, 1.5))
        self.saccade = np.zeros(2)
        self.gaze = np.zeros(2)
        self.was_speaking = False

    # ---- streaming API ------------------------------------------------------------------------
    def push(self, samples: np.ndarray) -> MotionSequence:
        """Feed 16 kHz mono float32 audio; returns the motion frames that became ready (maybe none)."""
        if self._flushed:
            raise RuntimeError("push() after flush()")
        x = np.asarray(samples, np.float32).reshape(-1)
        self._samples += len(x)
        self._take(self.analyzer.push(x))
        n_ready = int(math.floor((self._n_feat * HOP_S - self.lookahead_s) * self.fps + 1e-9)) + 1
        return self._emit(max(0, n_ready))

    def flush(self) -> MotionSequence:
        """End of audio: returns the remaining frames (the clip has round(duration * fps) frames)."""
        if self._flushed:
            return self._empty()
        self._take(self.analyzer.flush())
        self._flushed = True
        total = max(1, int(round(self._samples / SAMPLE_RATE * self.fps)))
        return self._emit(total)

    # ---- internals ----------------------------------------------------------------------------
    def _take(self, f: AcousticFeatures) -> None:
        n = len(f)
        if n == 0:
            return
        # keep only what frames still to come can need (bounded memory on long audio)
        keep_from = max(0, int((self._frame / self.fps - 1.0) / HOP_S))
        drop = max(0, keep_from - self._feat_base)
        for k in FEATURES:
            self._feat[k] = np.concatenate([self._feat[k][drop:], getattr(f, k)])
        self._feat_base += drop
        self._n_feat += n

    def _empty(self) -> MotionSequence:
        return MotionSequence(self.fps, np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0),
                              np.zeros((0, NUM_BLENDSHAPES)), np.zeros((0, 2)))

    def _window(self, t: float, half: float | None = None) -> dict[str, np.ndarray]:
        """Feature values of the frames whose centres lie within `half` (default: half a video
        frame) of t."""
        half = 0.5 / self.fps if half is None else half
        a = int(math.floor((t - half) / HOP_S - 0.5)) + 1
        b = int(math.floor((t + half) / HOP_S - 0.5))
        a, b = max(a, 0), max(b, a)
        lo = a - self._feat_base
        hi = min(b + 1, self._n_feat) - self._feat_base
        if hi <= lo or lo < 0:
            return {}
        return {k: self._feat[k][lo:hi] for k in FEATURES}

    def _emit(self, upto: int) -> MotionSequence:
        n = upto - self._frame
        if n <= 0:
            return self._empty()
        rot = np.zeros((n, 3), np.float32)
        tr = np.zeros((n, 2), np.float32)
        sc = np.ones(n, np.float32)
        bs = np.zeros((n, NUM_BLENDSHAPES), np.float32)
        gz = np.zeros((n, 2), np.float32)
        for j in range(n):
            rot[j], tr[j], sc[j], bs[j], gz[j] = self._step(self._frame)
            self._frame += 1
        return MotionSequence(self.fps, rot, tr, sc, bs, gz)

    def _step(self, i: int):
        dt = 1.0 / self.fps
        t = i * dt
        c = self.track.at(t)
        w = self._window(t + self.lip_lead_s)
        wh = self._window(t)
        if w:
            openness = float(0.5 * w["openness"].mean() + 0.5 * w["openness"].max())
            closure = float(w["closure"].max())
            nasal = float(w["nasal"].max())
            rounding = float(w["rounding"].mean())
            front = float(w["frontness"].mean())
            fric = float(w["fricative"].mean())
            speech = float(w["speech"].mean())
            loud_m = float(w["loudness"].mean())
        else:
            openness = closure = nasal = rounding = front = fric = speech = loud_m = 0.0
        # a loudness valley between louder neighbours: a stop closure that the closure detector
        # misses (voiced /b/, or a /p/ right after silence) -> lips shut
        wd = self._window(t + self.lip_lead_s, self.dip_reach_s)
        if wd and w:
            ld = wd["loudness"]
            mid = len(ld) // 2
            valley = float(w["loudness"].min())
            sides = min(float(ld[:mid].max(initial=0.0)), float(ld[mid:].max(initial=0.0)))
            dip = min(1.0, max(0.0, (sides - valley - DIP_MIN) / DIP_FULL))
        else:
            dip = 0.0
        if wh:
            loud = float(wh["loudness"].mean())
            voiced = wh["pitch_hz"][wh["pitch_hz"] > 0]
            f0 = float(voiced.mean()) if voiced.size else 0.0
            speech_now = float(wh["speech"].mean())
        else:
            loud = f0 = speech_now = 0.0

        # ---- mouth ------------------------------------------------------------------------
        es = c.expression_scale
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
        target[BI["mouthFunnel"]] = 0.55 * rounding * min(1.0, 2 * openness) * active
        spread = 0.45 * front * (1 - rounding) * active
        target[BI["mouthStretchLeft"]] = target[BI["mouthStretchRight"]] = spread
        target[BI["mouthUpperUpLeft"]] = target[BI["mouthUpperUpRight"]] = 0.25 * fric * active + 0.15 * labiodental
        target[BI["mouthRollLower"]] = 0.7 * labiodental
        target[BI["mouthLowerDownLeft"]] = target[BI["mouthLowerDownRight"]] = 0.2 * jaw
        target *= es
        k_open, k_close, k_lips = _k(dt, TAU_OPEN_S), _k(dt, TAU_CLOSE_S), _k(dt, TAU_LIPS_S)
        up = target > self.mouth
        k = np.where(up, k_open, k_close)
        for name in ("mouthClose", "mouthPressLeft", "mouthPressRight"):
            k[BI[name]] = k_lips
        self.mouth += k * (target - self.mouth)
        shapes = self.mouth.copy()

        # ---- prosody: accents, intonation, phrase ends ------------------------------------
        self.loud_fast += _k(dt, 0.05) * (loud - self.loud_fast)
        self.loud_slow += _k(dt, 0.6) * (loud - self.loud_slow)
        self.speech_s += _k(dt, 0.15) * (speech_now - self.speech_s)
        speaking = speech_now > 0.5
        self.silent_for = 0.0 if speaking else self.silent_for + dt
        self.since_accent += dt
        rng = self.rng
        r = rng.standard_normal(6)          # drawn every frame: the sequence never depends on data
        accent = speaking and self.loud_fast - self.loud_slow > 0.12 and self.since_accent > 0.35
        if accent:
            strength = min(1.0, (self.loud_fast - self.loud_slow) / 0.3)
            self.accent += ACCENT_AMP * strength * np.array([-1.0 + 0.3 * r[0], r[1], r[2]])
            self.emph = max(self.emph, 0.5 * strength)
            self.since_accent = 0.0
        self.accent *= math.exp(-dt / 0.45)
        self.emph *= math.exp(-dt / 0.35)
        if f0 > 0:
            self.f0_mean = f0 if self.f0_mean == 0 else self.f0_mean + _k(dt, 3.0) * (f0 - self.f0_mean)
            dev = math.log2(f0 / self.f0_mean)
        else:
            dev = 0.0
        self.f0_dev += _k(dt, 0.25) * (dev * self.speech_s - self.f0_dev)

        # ---- head ------------------------------------------------------------------------
        ms = c.motion_scale
        sway = IDLE_AMP * (self.sway_a * np.sin(2 * np.pi * self.sway_f * t + self.sway_p)).sum(1)
        liveliness = 0.6 + 0.8 * self.speech_s       # more motion while talking, settling after
        emo = c.emotion                              # happy, sad, angry, surprised
        bias = np.array([-4.0 * emo[1] - 1.5 * emo[2] + 2.0 * emo[3], 0.0, 0.0])
        target_head = ms * (sway * liveliness + self.accent + np.array([INTONATION_DEG * self.f0_dev, 0, 0])
                            + bias) * (1.0 - 0.3 * emo[1])
        # critically damped second-order smoothing
        wn = 1.0 / HEAD_TAU_S
        acc = wn * wn * (target_head - self.head) - 2 * wn * self.head_v
        self.head_v += acc * dt
        self.head += self.head_v * dt
        rot = self.head.copy()

        # ---- blinks ----------------------------------------------------------------------
        rate = max(c.blink_rate, 1e-3)
        if speaking:
            self.was_speaking = True
        phrase_end = self.was_speaking and self.silent_for > 0.15
        u = rng.random()
        if t - self.blink_t > 1.0:
            if t >= self.next_blink or (phrase_end and u < 0.5 and t - self.blink_t > 2.0):
                self.blink_t = t
                mean = 60.0 / rate
                self.next_blink = t + max(1.2, float(rng.gamma(3.0, mean / 3.0)))
                self.was_speaking = False if phrase_end else self.was_speaking
            elif phrase_end and u >= 0.5:
                self.was_speaking = False
        if c.blink_rate <= 0:
            blink = 0.0
        else:
            bt = t - self.blink_t
            if bt < 0:
                blink = 0.0
            elif bt < BLINK_CLOSE_S:
                blink = bt / BLINK_CLOSE_S
            elif bt < BLINK_CLOSE_S + BLINK_HOLD_S:
                blink = 1.0
            elif bt < BLINK_CLOSE_S + BLINK_HOLD_S + BLINK_OPEN_S:
                blink = 1.0 - (bt - BLINK_CLOSE_S - BLINK_HOLD_S) / BLINK_OPEN_S
            else:
                blink = 0.0
        shapes[BI["eyeBlinkLeft"]] = shapes[BI["eyeBlinkRight"]] = blink

        # ---- gaze ------------------------------------------------------------------------
        if t >= self.next_saccade:
            away = rng.random() < 0.12 * (0.5 + self.speech_s)
            amp = np.array([2.5, 1.5]) * (3.0 if away else 1.0)
            self.saccade = amp * rng.standard_normal(2)
            self.next_saccade = t + float(rng.uniform(0.5, 2.8))
        self.gaze += 0.7 * (self.saccade - self.gaze)
        gaze = np.array(c.gaze) + self.gaze - 0.5 * np.array([rot[1], rot[0]]) * min(ms, 1.0)

        # ---- brows and emotion ------------------------------------------------------------
        h, s_, a_, su = (float(v) for v in emo)
        shapes[BI["browInnerUp"]] += 0.45 * self.emph * es + 0.7 * s_ + 0.6 * su
        shapes[BI["browOuterUpLeft"]] += 0.3 * self.emph * es + 0.8 * su
        shapes[BI["browOuterUpRight"]] += 0.3 * self.emph * es + 0.8 * su
        for side in ("Left", "Right"):
            shapes[BI[f"mouthSmile{side}"]] += 0.75 * h
            shapes[BI[f"cheekSquint{side}"]] += 0.5 * h
            shapes[BI[f"eyeSquint{side}"]] += 0.25 * h + 0.3 * a_
            shapes[BI[f"mouthFrown{side}"]] += 0.65 * s_
            shapes[BI[f"browDown{side}"]] += 0.8 * a_
            shapes[BI[f"noseSneer{side}"]] += 0.3 * a_
            shapes[BI[f"mouthPress{side}"]] += 0.25 * a_ + 0.15 * s_
            shapes[BI[f"eyeWide{side}"]] += 0.6 * su
        shapes[BI["jawOpen"]] += 0.12 * su
        # eyeLook* mirror the gaze for exporters (the renderer uses `gaze`)
        gy, gp = gaze
        shapes[BI["eyeLookOutLeft"]] = shapes[BI["eyeLookInRight"]] = max(0.0, gy) / 30.0
        shapes[BI["eyeLookInLeft"]] = shapes[BI["eyeLookOutRight"]] = max(0.0, -gy) / 30.0
        shapes[BI["eyeLookUpLeft"]] = shapes[BI["eyeLookUpRight"]] = max(0.0, gp) / 25.0
        shapes[BI["eyeLookDownLeft"]] = shapes[BI["eyeLookDownRight"]] = max(0.0, -gp) / 25.0
        np.clip(shapes, 0.0, 1.0, out=shapes)

        translation = np.array(c.head_offset) + ms * np.array([0.0015 * rot[1], -0.001 * rot[0]])
        scale = c.head_distance * (1.0 + 0.004 * ms * math.sin(2 * np.pi * 0.25 * t + self.sway_p[0, 0]))
        return rot, translation, scale, shapes, gaze


def generate_motion(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, fps: float = 25.0,
                    controls: Controls | ControlTrack | None = None, **kw) -> MotionSequence:
    """Whole-clip motion for 16 kHz mono audio (other rates are resampled)."""
    x = np.asarray(audio, np.float32).reshape(-1)
    if sample_rate != SAMPLE_RATE:
        from scipy.signal import resample_poly
        g = math.gcd(int(sample_rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
    gen = MotionGenerator(fps, controls, **kw)
    parts = [gen.push(x), gen.flush()]
    return concat_motion(parts, fps)


def concat_motion(parts: list[MotionSequence], fps: float) -> MotionSequence:
    """Join motion chunks into one sequence."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return MotionSequence.neutral(0, fps)
    return MotionSequence(fps, *(np.concatenate([getattr(p, k) for p in parts])
                                 for k in ("rotation", "translation", "scale", "blendshapes", "gaze")))
