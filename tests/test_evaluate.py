"""Lip-sync evaluation: the metrics tell good sync from bad, measured on rendered, re-tracked frames.

A stand-in generator (defined here, never in the package) drives jawOpen from the phoneme labels;
shifting it in time, or never closing the mouth, must show in the scores.
"""
import argparse
import json
import math

import numpy as np
import pytest

from facecast.audio.speech import Phoneme
from facecast.errors import FacecastError
from facecast.evaluation.cli import add_eval_parser, cmd_eval
from facecast.evaluation.lipsync import TEST_SENTENCES, evaluate_lipsync, measure_motion, tts_clip
from facecast.evaluation.metrics import (
    LipSyncReport,
    combine_reports,
    count_blinks,
    estimate_lag,
    expected_openness,
    head_delta,
    score_tracks,
    silence_intervals,
)
from facecast.face.rig import build_rig
from facecast.motion.types import BLENDSHAPE_INDEX, NUM_BLENDSHAPES, MotionSequence
from facecast.pipeline import Animator

FPS = 25.0
JAW = {"open_vowel": 0.7, "vowel": 0.45, "consonant": 0.25, "labiodental": 0.12, "bilabial": 0.0, "pause": 0.0}
BLINKS_AT = (1.0, 3.2)   # seconds: the stand-in blinks here (4 frames each)


def standin(phonemes, delay_s=0.0, jaw_floor=0.0, extra_frames=0, head=True):
    """A generator with `generate_motion`'s signature: jawOpen from the labels (shifted by delay_s),
    a slow head sway (~0.2 deg/frame) and two blinks."""
    def generate(audio, sample_rate, fps=25.0, controls=None):
        n = int(math.ceil(len(audio) / sample_rate * fps)) + extra_frames
        t = np.arange(n) / fps
        jaw = np.zeros(n)
        for p in phonemes:
            jaw[(t - delay_s >= p.start_s) & (t - delay_s < p.end_s)] = JAW[p.kind]
        bs = np.zeros((n, NUM_BLENDSHAPES))
        bs[:, BLENDSHAPE_INDEX["jawOpen"]] = np.maximum(jaw, jaw_floor)
        for tb in BLINKS_AT:
            on = (t >= tb) & (t < tb + 4 / fps)
            bs[on, BLENDSHAPE_INDEX["eyeBlinkLeft"]] = bs[on, BLENDSHAPE_INDEX["eyeBlinkRight"]] = 1.0
        rot = np.zeros((n, 3))
        if head:
            rot[:, 0] = 2.0 * np.sin(2 * np.pi * 0.4 * t)
            rot[:, 1] = 3.0 * np.sin(2 * np.pi * 0.25 * t + 1.0)
        return MotionSequence(fps, rot, np.zeros((n, 2)), np.ones(n), bs, np.zeros((n, 2)))
    return generate


@pytest.fixture(scope="module")
def animator256(hopper_path, tracker):
    return Animator(hopper_path, rig=build_rig(hopper_path, 256, tracker=tracker))


@pytest.fixture(scope="module")
def clip():
    return tts_clip(TEST_SENTENCES["en"][0], "en")


def _evaluate(clip, animator256, tracker, gen):
    audio, sr, ph = clip
    return evaluate_lipsync(audio, sr, ph, animator256, FPS, tracker=tracker, generator=gen)


@pytest.fixture(scope="module")
def good_report(clip, animator256, tracker):
    return _evaluate(clip, animator256, tracker, standin(clip[2]))


# ---- metric pieces on synthetic tracks (no rendering) ---------------------------------------------
def test_lag_estimate_recovers_sub_frame_shifts():
    t = np.arange(200) / FPS
    ref = np.clip(np.sin(2 * np.pi * 1.3 * t) + 0.5 * np.sin(2 * np.pi * 3.1 * t + 1), 0, None)
    for shift_ms in (-120.0, 0.0, 60.0, 96.0, 200.0):
        delayed = np.interp(t - shift_ms / 1000, t, ref)
        lag, r = estimate_lag(delayed, ref, FPS)
        assert lag == pytest.approx(shift_ms, abs=8), shift_ms
        assert r > 0.9
    assert math.isnan(estimate_lag(np.zeros(50), ref[:50], FPS)[0])   # a still mouth has no lag


def test_silences_expected_openness_blinks_and_head_delta():
    ph = [Phoneme("p", 0.3, 0.4, "bilabial"), Phoneme("a", 0.4, 0.6, "open_vowel"),
          Phoneme("_", 0.6, 1.0, "pause"), Phoneme("s", 1.2, 1.3, "consonant")]
    # leading silence, the pause (speech on both sides), the unlabelled gap 1.0-1.2, trailing silence
    assert silence_intervals(ph, 2.0) == [(0.0, 0.3, False, True), (0.6, 1.2, True, True), (1.3, 2.0, True, False)]
    e = expected_openness(ph, np.array([0.0, 0.36, 0.5, 0.8, 1.24]), FPS)
    assert e == pytest.approx([0.0, 0.0, 1.0, 0.0, 0.3])
    eye = np.full(100, 0.4)
    eye[[10, 11, 12, 14, 50, 51, 90]] = 0.3      # 10-14 is one blink (1-frame gap merged), 50, 90
    assert count_blinks(eye, FPS) == 3
    ramp = np.stack([np.arange(50) * 0.3, np.zeros(50), np.zeros(50)], 1)
    assert head_delta(ramp, FPS) == pytest.approx(0.3, abs=0.02)


def test_score_tracks_thresholds_and_lost_frames():
    ph = [Phoneme("_", 0.0, 0.4, "pause"), Phoneme("m", 0.4, 0.5, "bilabial"),
          Phoneme("a", 0.5, 0.7, "open_vowel"), Phoneme("_", 0.7, 1.2, "pause")]
    t = np.arange(30) / FPS
    gap = np.where((t >= 0.5) & (t < 0.7), 0.3, 0.0)
    gap[3] = np.nan                                     # tracker lost one frame
    rep = score_tracks(gap, np.full((30, 2), 0.4), np.zeros((30, 3)), ph, FPS, photo_gap=0.0)
    assert rep.frames == 30 and rep.frames_lost == 1
    assert (rep.bilabials, rep.bilabials_closed, rep.open_vowels, rep.open_vowels_opened) == (1, 1, 1, 1)
    assert rep.closed_threshold == pytest.approx(0.075) and rep.open_threshold == pytest.approx(0.15)
    assert rep.silence_closed_rate == 1.0 and rep.head_dp == 0.0 and rep.blinks == 0
    with pytest.raises(FacecastError):
        score_tracks(np.full(5, np.nan), np.zeros(5), np.zeros((5, 3)), ph, FPS, 0.0)


# ---- rendered + re-tracked ---------------------------------------------------------------------------
def test_correct_standin_scores_high(good_report):
    r = good_report
    assert r.frames_lost == 0
    assert r.bilabials >= 8 and r.open_vowels >= 5 and r.silence_frames >= 20
    assert r.bilabial_closure_rate >= 0.9
    assert r.open_vowel_rate >= 0.9
    assert r.silence_closed_rate >= 0.95
    assert abs(r.lag_ms) <= 20 and r.lag_corr > 0.8
    assert r.blinks == r.blinks_commanded == len(BLINKS_AT)
    # commanded sway ~0.2 deg/frame; the smoothed measurement reads it within the tracker's noise
    assert r.head_dp_commanded == pytest.approx(0.2, abs=0.05)
    assert 0.1 <= r.head_dp <= 0.35
    assert all(np.isfinite(v) for v in r.tracks["gap_norm"])


def test_delayed_standin_shows_lag_and_lower_rates(clip, animator256, tracker, good_report):
    r = _evaluate(clip, animator256, tracker, standin(clip[2], delay_s=0.2))
    assert r.lag_ms == pytest.approx(200, abs=25)
    assert r.bilabial_closure_rate <= good_report.bilabial_closure_rate - 0.2
    assert r.open_vowel_rate < good_report.open_vowel_rate
    assert r.silence_closed_rate < good_report.silence_closed_rate
    assert not r.passed


def test_mouth_that_never_closes_fails_closure(clip, animator256, tracker):
    r = _evaluate(clip, animator256, tracker, standin(clip[2], jaw_floor=0.35, head=False))
    assert r.bilabial_closure_rate <= 0.2
    assert r.silence_closed_rate <= 0.2
    assert r.open_vowel_rate >= 0.9        # it is open, just never closed
    assert r.checks()["bilabial_closure_rate"]["ok"] is False


@pytest.mark.parametrize("extra", [-1, 1])
def test_frame_count_off_by_one_is_aligned_by_time(clip, animator256, tracker, good_report, extra):
    r = _evaluate(clip, animator256, tracker, standin(clip[2], extra_frames=extra))
    assert abs(r.frames - good_report.frames) <= 1
    assert r.bilabial_closure_rate == good_report.bilabial_closure_rate
    assert r.open_vowel_rate == good_report.open_vowel_rate
    assert r.lag_ms == pytest.approx(good_report.lag_ms, abs=5)


def test_report_json_and_pooling(good_report):
    bad = LipSyncReport(name="x", duration_s=1.0, frames=25, bilabials=2, bilabials_closed=0, lag_ms=100.0)
    both = combine_reports([good_report, bad])
    assert both.bilabials == good_report.bilabials + 2
    assert both.bilabial_closure_rate == pytest.approx(good_report.bilabials_closed / both.bilabials)
    w = good_report.duration_s
    assert both.lag_ms == pytest.approx((good_report.lag_ms * w + 100.0) / (w + 1.0))
    d = json.loads(json.dumps(bad.to_dict()))           # NaN -> null, strict JSON
    assert d["open_vowel_rate"] is None and d["checks"]["open_vowel_rate"]["ok"] is None
    assert d["checks"]["lag_ms"]["ok"] is False
    assert "tracks" in good_report.to_dict(tracks=True)


def test_driver_renders_through_the_animator(clip, animator256, tracker, monkeypatch):
    audio, sr, ph = clip
    motion = standin(ph)(audio, sr, FPS)
    calls = []
    frame = animator256.frame
    monkeypatch.setattr(animator256, "frame", lambda m: calls.append(m) or frame(m))
    seen = []
    tr = measure_motion(motion, animator256, tracker, n_frames=3, on_frame=seen.append)
    assert len(calls) == len(seen) == 3 and tr["gap"].shape == (3,) and np.isfinite(tr["gap"]).all()
    assert seen[0].shape == (256, 256, 3)
    with pytest.raises(TypeError, match="Animator"):            # a bare rig is no longer accepted
        evaluate_lipsync(audio, sr, ph, animator256.rig, FPS, tracker=tracker)
    with pytest.raises(FacecastError, match="fps must be between 1 and 120"):
        evaluate_lipsync(audio, sr, ph, animator256, 0.0, tracker=tracker)


def test_evaluation_modules_depend_one_way():
    """metrics: pure scoring; lipsync: the driver (never the command line); cli on top."""
    import ast
    import pathlib

    import facecast.evaluation as ev
    root = pathlib.Path(ev.__file__).parent

    def imports(name):
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        return {("." * n.level) + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}

    assert not {m for m in imports("metrics") if m.startswith((".lipsync", ".cli", ".retrack", "..rendering",
                                                                "..pipeline", "..face"))}
    assert ".cli" not in imports("lipsync") and ".metrics" in imports("lipsync")
    assert {".lipsync", ".metrics"} <= imports("cli")


# ---- the real generator and the command line -------------------------------------------------------
def test_real_generator_report_is_complete(clip, animator256, tracker):
    r = _evaluate(clip, animator256, tracker, None)            # facecast.generate_motion
    d = r.to_dict()
    for k in ("bilabial_closure_rate", "open_vowel_rate", "silence_closed_rate", "lag_ms", "lag_corr",
              "head_dp", "blink_rate_per_min", "head_dp_commanded", "lag_ms_commanded"):
        assert d[k] is not None and math.isfinite(d[k]), k
    assert r.frames == pytest.approx(len(clip[0]) / clip[1] * FPS, abs=1.5)
    assert set(d["checks"]) == {"bilabial_closure_rate", "open_vowel_rate", "silence_closed_rate", "lag_ms",
                                "blink_rate_per_min", "head_dp"}


def _parse(argv):
    ap = argparse.ArgumentParser(prog="facecast")
    sub = ap.add_subparsers(dest="command", required=True)
    add_eval_parser(sub)
    return ap.parse_args(argv)


def test_cli_own_audio_and_labels_json(tmp_path, capsys):
    import soundfile as sf
    audio, sr, ph = tts_clip("Pam, bob up.", "en", pad_s=0.3)
    wav = tmp_path / "speech.wav"
    sf.write(wav, audio, sr)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{p.start_s:.4f} {p.end_s:.4f} {p.symbol}\n" for p in ph), encoding="utf-8")
    args = _parse(["eval", "lipsync", "--audio", str(wav), "--labels", str(labels), "--json", "--check"])
    assert args.size == 256 and args.fps == 25.0 and args.languages == "en,es,de"
    rc = cmd_eval(args)
    out = json.loads(capsys.readouterr().out)
    assert rc == (0 if out["passed"] else 1)
    assert [c["name"] for c in out["clips"]] == ["speech"]
    assert out["overall"]["frames"] > 0 and out["overall"]["bilabials"] >= 2
    with pytest.raises(FacecastError, match="--labels"):
        cmd_eval(_parse(["eval", "lipsync", "--audio", str(wav)]))
    with pytest.raises(FacecastError, match="no test sentences"):
        cmd_eval(_parse(["eval", "lipsync", "--languages", "xx"]))


def test_readme_lipsync_figures_meet_their_targets(hopper_path, tracker):
    """The README's evaluation table (9 eSpeak clips in English, Spanish and German, Grace Hopper
    at 256 px): every pooled figure must meet its target, and none may be unmeasured."""
    animator = Animator(hopper_path, rig=build_rig(hopper_path, 256, tracker=tracker))
    reports = []
    for lang, sentences in TEST_SENTENCES.items():
        for text in sentences:
            audio, sr, ph = tts_clip(text, lang)
            reports.append(evaluate_lipsync(audio, sr, ph, animator, FPS, tracker=tracker))
    overall = combine_reports(reports)
    assert len(reports) == 9 and overall.bilabials >= 60 and overall.open_vowels >= 60
    failed = {k: c for k, c in overall.checks().items() if c["ok"] is not True}
    assert not failed, failed
