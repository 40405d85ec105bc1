"""Motion generator: speech audio + controls -> motion frames, streaming and causal.

`MotionGenerator` takes audio in chunks of any size (`push`) and returns every motion frame whose
inputs are complete; `flush` ends the clip. Frame i shows the face at time i / fps and depends on
audio up to i / fps + `lookahead_s` only, so the same code serves offline rendering and the live
mode, and any chunking of the same audio gives the same frames. `generate_motion` is the
whole-clip convenience (push everything, flush).

All of it comes from language-agnostic acoustics (`acoustics.py`; no recogniser). Each frame is
made by four parts, in this order (the order of their random draws is part of the seed's meaning):
- `articulation.Articulation`: the mouth, with the lips leading the sound by `lip_lead_s`
  (`DEFAULT_LIP_LEAD_S`, 40 ms, as far as the look-ahead allows);
- `prosody.Prosody`: accents, intonation, talking activity and phrase boundaries, which the
  others read;
- `head.HeadMotion`: head rotation, translation and scale (posture drift, speech gestures,
  accents, intonation, breathing in pauses);
- `eyes.EyeMotion`: blinks (more while talking) and gaze;
then `expression.add_expression` adds brow emphasis, expression that follows the voice, and the
emotion controls.
"""
from __future__ import annotations

import math

import numpy as np

from ..audio.acoustics import HOP_S, AcousticAnalyzer, AcousticFeatures
from ..audio.io import SAMPLE_RATE, resample
from .articulation import CONTEXT_AHEAD_S, CONTEXT_PAST_S, DIP_REACH_S, Articulation
from .controls import Controls, ControlTrack
from .expression import add_expression, mirror_gaze
from .eyes import EyeMotion
from .head import HeadMotion
from .prosody import Prosody
from .types import BLENDSHAPE_INDEX as BI
from .types import NUM_BLENDSHAPES, MotionSequence

DEFAULT_LOOKAHEAD_S = 0.12
#: How far the lips run ahead of the sound. Real speakers' mouths move 40-80 ms before the sound
#: they make (the lips part before a vowel is heard, the jaw starts to drop during the consonant
#: before it); re-tracked real talking clips put facecast's mouth closest to the real one with
#: about this lead (`facecast eval real`, best lag). A generator whose look-ahead is too short for
#: it (the live mode's) uses what the look-ahead allows: `default_lip_lead`.
DEFAULT_LIP_LEAD_S = 0.04
#: the acoustic features the motion reads (the analyzer's stop closure and burst are not among them:
#: they cannot tell the lips from the tongue, see `articulation`)
FEATURES = ("loudness", "voicing", "pitch_hz", "openness", "frontness", "rounding", "nasal", "fricative",
            "aperture", "speech")


def default_lip_lead(lookahead_s: float, fps: float) -> float:
    """`DEFAULT_LIP_LEAD_S`, or less when the look-ahead cannot hold it: a frame's lip window
    (half a frame either side of time + lead) must lie within the look-ahead. The live mode's
    50 ms at 25 fps gives 30 ms."""
    return max(0.0, min(DEFAULT_LIP_LEAD_S, lookahead_s - 0.5 / fps))


class MotionGenerator:
    """Streaming audio -> motion. See the module docstring.

    fps: output frame rate; controls: a `Controls` or a keyframed `ControlTrack`;
    lookahead_s: how far past a frame's time its inputs may reach (latency of the live mode);
    lip_lead_s: how much the lips anticipate the sound (<= lookahead_s minus half a frame);
    None: `default_lip_lead(lookahead_s, fps)`.
    """

    def __init__(self, fps: float = 25.0, controls: Controls | ControlTrack | None = None,
                 lookahead_s: float = DEFAULT_LOOKAHEAD_S, lip_lead_s: float | None = None,
                 sample_rate: int = SAMPLE_RATE):
        if sample_rate != SAMPLE_RATE:
            raise ValueError("MotionGenerator takes 16 kHz audio; resample with facecast.audio first")
        if lip_lead_s is None:
            lip_lead_s = default_lip_lead(lookahead_s, fps)
        if not 0.0 <= lip_lead_s <= lookahead_s - 0.5 / fps + 1e-9:
            raise ValueError("lip_lead_s must be between 0 and lookahead_s minus half a frame")
        self.fps = float(fps)
        self.track = controls if isinstance(controls, ControlTrack) else ControlTrack.constant(controls)
        self.lookahead_s = float(lookahead_s)
        self.lip_lead_s = float(lip_lead_s)
        # valleys are judged on neighbours within the look-ahead only, so output never depends
        # on how the audio was chunked
        room = self.lookahead_s - self.lip_lead_s - 0.5 * HOP_S - 0.5 / self.fps
        self.dip_reach_s = max(0.02, min(DIP_REACH_S, room))
        self.context_ahead_s = max(0.0, min(CONTEXT_AHEAD_S, room))
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
        self.rng = np.random.default_rng(self.track.seed)
        self.articulation = Articulation()
        self.prosody = Prosody()
        self.head = HeadMotion(self.rng)
        self.eyes = EyeMotion(self.rng)

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

    def _window(self, t: float, half: float | None = None, ahead: float | None = None) -> dict[str, np.ndarray]:
        """Feature values of the frames whose centres lie within `half` (default: half a video
        frame) before t and `ahead` (default: `half`) after it, and under "offset_s" each feature
        frame's centre time minus t."""
        half = 0.5 / self.fps if half is None else half
        ahead = half if ahead is None else ahead
        a = int(math.floor((t - half) / HOP_S - 0.5)) + 1
        b = int(math.floor((t + ahead) / HOP_S - 0.5))
        a, b = max(a, 0), max(b, a)
        lo = a - self._feat_base
        hi = min(b + 1, self._n_feat) - self._feat_base
        if hi <= lo or lo < 0:
            return {}
        out = {k: self._feat[k][lo:hi] for k in FEATURES}
        out["offset_s"] = (np.arange(lo, hi) + self._feat_base + 0.5) * HOP_S - t
        return out

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
        tl = t + self.lip_lead_s
        shapes = self.articulation.step(self._window(tl), self._window(tl, self.dip_reach_s),
                                        self._window(tl, CONTEXT_PAST_S, self.context_ahead_s),
                                        c.expression_scale, dt)
        self.prosody.step(self._window(t), dt, self.rng)
        rot, translation, scale = self.head.step(t, dt, self.prosody, c, self.rng)
        blink, gaze = self.eyes.step(t, dt, self.prosody, c, rot, self.rng)
        shapes[BI["eyeBlinkLeft"]] = shapes[BI["eyeBlinkRight"]] = blink
        add_expression(shapes, c.emotion, self.prosody.emph, c.expression_scale, self.prosody)
        mirror_gaze(shapes, gaze)
        np.clip(shapes, 0.0, 1.0, out=shapes)
        return rot, translation, scale, shapes, gaze


def generate_motion(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, fps: float = 25.0,
                    controls: Controls | ControlTrack | None = None, **kw) -> MotionSequence:
    """Whole-clip motion for 16 kHz mono audio (other rates are resampled)."""
    x = resample(audio, sample_rate, SAMPLE_RATE)
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
