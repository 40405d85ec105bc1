"""Lip-sync evaluation driver: speech with known phoneme timing -> generated motion -> frames
rendered by an `Animator` -> re-tracked face -> scores (`metrics`); and the test material.

`evaluate_lipsync` runs the motion generator on one clip, renders every frame through a
`facecast.pipeline.Animator` (the one place a pipeline is assembled), re-tracks each frame with
the face mesh (`retrack.measure`) and scores the measured tracks against the phoneme labels
(`metrics.score_tracks`, where the metrics are defined). The test material is eSpeak NG speech
(`TEST_SENTENCES`, English, Spanish and German, rich in p/b/m, open vowels and pauses; `tts_clip`),
or the user's own audio with a phoneme label file. `facecast eval lipsync` (`evaluation.cli`) is
the command line.

Everything is measured on the rendered pixels, not read from the motion, so the renderer and the
photo are part of what is judged; the commanded values (from the motion itself) are reported
beside the measured ones as diagnostics.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..audio.speech import Phoneme
from ..errors import FacecastError
from ..face.rig import FaceRig
from ..face.tracking import FaceTracker
from ..motion.controls import format_number, range_message
from ..motion.generator import generate_motion
from ..motion.presets import FPS_RANGE
from ..motion.types import MotionSequence
from ..pipeline import Animator
from .metrics import LipSyncReport, score_tracks
from .retrack import measure

#: Test sentences per eSpeak voice: short (3.2-4.5 s), rich in p/b/m and open vowels, with pauses.
TEST_SENTENCES: dict[str, list[str]] = {
    "en": ["Bob, put the paper map back in the bag... then buy a big apple pie.",
           "My mom baked a pumpkin pie, but Pam ate all the bread and jam.",
           "Please pass me the pepper, Barbara... and a box of biscuits."],
    "es": ["Papá, ¿me pasas el mapa?... Pablo bebe agua en la playa.",
           "Mamá compró patatas, pan y manzanas para la cena.",
           "El barco blanco pasa bajo el puente... ¡bravo, Paco!"],
    "de": ["Papa malt ein Bild... Mama backt ein Brot mit Butter.",
           "Am Abend baden wir im Meer, dann packen wir alle Sachen ab.",
           "Bitte gib mir den Ball, Papa... aber pass gut auf."],
}
#: Silence added before and after each synthesized sentence (scored as silence).
TTS_PAD_S = 0.5


# ---- rendering + re-tracking ------------------------------------------------------------------------
def _check_animator(animator) -> None:
    """Fail early, with the fix, when given something that cannot render (e.g. a bare FaceRig)."""
    if not (callable(getattr(animator, "frame", None)) and isinstance(getattr(animator, "rig", None), FaceRig)):
        raise TypeError(f"the evaluation renders through a facecast.Animator, got {type(animator).__name__}; "
                        "wrap a rig with Animator(rig.image, rig=rig)")


def measure_motion(motion: MotionSequence, animator: Animator, tracker: FaceTracker | None = None,
                   n_frames: int | None = None, on_frame: Callable[[np.ndarray], None] | None = None
                   ) -> dict[str, np.ndarray]:
    """Render the first `n_frames` frames of `motion` with `animator.frame` and re-track them
    against `animator.rig`.

    Returns {'gap' (T,), 'eye' (T, 2), 'pose' (T, 3), 'render_s', 'track_s'}; NaN rows where
    no face was found. `on_frame(frame)` sees every rendered frame (e.g. to write a video).
    tracker: reused when given (one face is enough), else built and closed here.
    """
    _check_animator(animator)
    rig = animator.rig
    own = tracker is None
    if own:
        tracker = FaceTracker(max_faces=1)
    T = len(motion) if n_frames is None else min(int(n_frames), len(motion))
    gap = np.full(T, np.nan)
    eye = np.full((T, 2), np.nan)
    pose = np.full((T, 3), np.nan)
    render_s = track_s = 0.0
    try:
        for i in range(T):
            t0 = time.perf_counter()
            frame = animator.frame(motion[i])
            t1 = time.perf_counter()
            m = measure(tracker, rig, frame)
            t2 = time.perf_counter()
            render_s += t1 - t0
            track_s += t2 - t1
            if m is not None:
                gap[i], eye[i], pose[i] = m.lip_gap, m.eye_open, m.pose
            if on_frame is not None:
                on_frame(frame)
    finally:
        if own:
            tracker.close()
    return {"gap": gap, "eye": eye, "pose": pose, "render_s": render_s, "track_s": track_s}


def photo_lip_gap(rig: FaceRig, tracker: FaceTracker) -> float:
    """The lip gap the tracker reads on the photo itself (the zero-motion frame)."""
    m = measure(tracker, rig, rig.image)
    if m is None:
        from ..face.topology import lip_gap
        return lip_gap(rig.landmarks)
    return float(m.lip_gap)


def evaluate_motion(motion: MotionSequence, phonemes: list[Phoneme], animator: Animator, duration_s: float,
                    tracker: FaceTracker | None = None, on_frame: Callable[[np.ndarray], None] | None = None
                    ) -> LipSyncReport:
    """Render (through `animator`), re-track and score a motion clip against phoneme labels of
    audio `duration_s` long.

    Frames are aligned by time (frame i at i / motion.fps); frames after the audio's end are
    not scored, so a motion one frame longer or shorter than the audio is fine.
    """
    _check_animator(animator)
    own = tracker is None
    if own:
        tracker = FaceTracker(max_faces=1)
    try:
        fps = motion.fps
        n = min(len(motion), int(math.floor(duration_s * fps + 0.5 - 1e-9)) + 1)
        n = max(0, min(n, len(motion)))
        if n == 0:
            raise FacecastError("the motion has no frames to evaluate")
        tr = measure_motion(motion, animator, tracker, n, on_frame)
        rep = score_tracks(tr["gap"], tr["eye"], tr["pose"], phonemes, fps, photo_lip_gap(animator.rig, tracker),
                           duration_s, motion)
    finally:
        if own:
            tracker.close()
    rep.seconds.update(render=tr["render_s"], track=tr["track_s"], audio=float(duration_s))
    return rep


def evaluate_lipsync(audio: np.ndarray, sr: int, phonemes: list[Phoneme], animator: Animator, fps: float = 25.0,
                     controls=None, tracker: FaceTracker | None = None, generator: Callable | None = None,
                     on_frame: Callable[[np.ndarray], None] | None = None) -> LipSyncReport:
    """Generate motion for `audio` (mono float32 at `sr`), render it through `animator`, re-track
    every frame and score lip sync, head motion and blinks against `phonemes` (see `metrics`).

    animator: the portrait, ready to render (`facecast.Animator`; `Animator(image, rig=rig)` wraps
    a rig already built). fps: the motion's frame rate, within `FPS_RANGE`.
    generator: a callable with the signature of `facecast.generate_motion`
    (audio, sample_rate, fps=..., controls=...) -> MotionSequence; default: that function.
    tracker: reused across clips when given (built here when None).
    """
    _check_animator(animator)
    lo, hi = FPS_RANGE
    if not lo <= fps <= hi:
        raise FacecastError(range_message("fps", lo, hi, format_number(fps)))
    audio = np.asarray(audio, np.float32).reshape(-1)
    generator = generator or generate_motion
    t0 = time.perf_counter()
    motion = generator(audio, sr, fps=fps, controls=controls)
    gen_s = time.perf_counter() - t0
    if abs(motion.fps - fps) > 1e-6:
        raise FacecastError(f"the generator returned {motion.fps} fps motion, asked for {fps}")
    rep = evaluate_motion(motion, phonemes, animator, len(audio) / sr, tracker, on_frame)
    rep.seconds["generate"] = gen_s
    return rep


# ---- test material ----------------------------------------------------------------------------------
def pad_clip(audio: np.ndarray, sr: int, phonemes: list[Phoneme], pad_s: float = TTS_PAD_S
             ) -> tuple[np.ndarray, list[Phoneme]]:
    """Add `pad_s` of digital silence before and after a clip; phoneme times move with it and the
    padding is labelled 'pause'."""
    k = int(round(pad_s * sr))
    pad = k / sr
    out = np.concatenate([np.zeros(k, np.float32), np.asarray(audio, np.float32), np.zeros(k, np.float32)])
    ph = [Phoneme(p.symbol, p.start_s + pad, p.end_s + pad, p.kind, p.stress) for p in phonemes]
    ph = [Phoneme("_", 0.0, pad, "pause")] + ph + [Phoneme("_", len(audio) / sr + pad, len(out) / sr, "pause")]
    return out, ph


def tts_clip(text: str, voice: str, sr: int = SAMPLE_RATE, pad_s: float = TTS_PAD_S
             ) -> tuple[np.ndarray, int, list[Phoneme]]:
    """One eSpeak NG test clip at `sr`, padded with silence: (audio, sr, phonemes)."""
    from ..audio.speech import synthesize
    audio, rate, ph = synthesize(text, voice, sample_rate=sr)
    audio, ph = pad_clip(audio, rate, ph, pad_s)
    return audio, rate, ph
