"""Command-line flags: every numeric option checked against its range, negative pairs as the README
writes them, warnings as one line, no native log noise, and a demo that ends at rest."""
import argparse
import os
import signal
import subprocess
import sys
import threading
import time

import av
import numpy as np
import pytest

from facecast.audio.io import save_wav
from facecast.audio.speech import synthesize
from facecast.cli import DEMO_TEXT, DEMO_TRAILING_SILENCE_S, OPTION_RANGES, build_parser
from facecast.face.tracking import native_logs_filtered
from facecast.motion.controls import CONTROL_RANGES, format_number
from facecast.motion.generator import generate_motion
from facecast.motion.types import BLENDSHAPE_INDEX, MotionSequence

#: Arguments that make each command's parse complete, so only the option under test can fail.
BASE_ARGS = {
    "analyze": ["analyze", "img.jpg", "-o", "o.png"],
    "render": ["render", "img.jpg", "a.wav", "-o", "o.mp4"],
    "demo": ["demo"],
    "motion": ["motion", "a.wav", "-o", "m.json"],
    "eval": ["eval", "lipsync"],
    "eval real": ["eval", "real", "clip.mp4"],
    "serve": ["serve"],
    "animate": ["animate", "img.jpg", "--preset", "nod", "-o", "o.mp4"],
    "batch": ["batch", "m.jsonl", "-o", "out"],
    "capture": ["capture", "v.mp4", "-o", "m.json"],
    "drive": ["drive", "img.jpg", "v.mp4", "-o", "o.mp4"],
}
PAIRS = ("--gaze", "--head-offset")


def run_cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "facecast", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def numeric_options():
    """(argv prefix, option, (lo, hi)) for every option of every command that takes a number."""
    out = []

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, prefix + [name])
            elif action.option_strings and action.type is not None:
                name = max(action.option_strings, key=len)
                if name in OPTION_RANGES:
                    out.append((prefix, name))
    walk(build_parser(), [])
    return out


def parse_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facecast: error: ") and "usage" not in err, err
    return err.strip()


def value(option, x):
    return f"{format_number(x)},0" if option in PAIRS else format_number(x)


def test_every_numeric_option_of_every_command_has_a_range():
    found = {(" ".join(prefix), opt) for prefix, opt in numeric_options()}
    for cmd in ("render", "motion"):
        for opt in ("--fps", "--gaze", "--head-distance", "--head-offset", "--motion-scale",
                    "--expression-scale", "--blink-rate", "--seed"):
            assert (cmd, opt) in found
    for cmd in ("render", "animate", "analyze"):
        assert {(cmd, "--size"), (cmd, "--face")} <= found
    assert {("animate", "--seconds"), ("animate", "--fps"), ("demo", "--size"), ("serve", "--port"),
            ("serve", "--size"), ("serve", "--max-sessions"), ("eval lipsync", "--fps"),
            ("eval lipsync", "--size"), ("eval lipsync", "--face"), ("batch", "--workers")} <= found
    # the controls' flags use the very ranges Controls checks
    for name, lo_hi in CONTROL_RANGES.items():
        assert OPTION_RANGES["--" + name.replace("_", "-")] == lo_hi


def test_out_of_range_values_are_one_line_naming_the_range(capsys):
    cases = numeric_options()
    assert len(cases) >= 25
    for prefix, opt in cases:
        lo, hi = OPTION_RANGES[opt]
        base = BASE_ARGS.get(" ".join(prefix), BASE_ARGS[prefix[0]])
        for bad in (lo - 1, hi + 1):
            err = parse_error(capsys, base + [opt, value(opt, bad)])
            assert err.startswith(f"facecast: error: {opt}")
            assert f"between {format_number(lo)} and {format_number(hi)}, got {value(opt, bad)}" in err
        for good in (lo, hi):  # the ends of the range are allowed
            args = build_parser().parse_args(base + [opt, value(opt, good)])
            got = getattr(args, opt[2:].replace("-", "_"))
            assert (got[0] if opt in PAIRS else got) == pytest.approx(good)
        err = parse_error(capsys, base + [opt, "abc"])
        assert f"{opt} must be" in err and "got abc" in err


def test_nan_inf_and_fractions_are_refused(capsys):
    assert "got nan" in parse_error(capsys, BASE_ARGS["render"] + ["--head-distance", "nan"])
    assert "got -inf" in parse_error(capsys, BASE_ARGS["render"] + ["--blink-rate", "-inf"])
    assert "whole number" in parse_error(capsys, BASE_ARGS["render"] + ["--seed", "1.5"])
    assert "--seconds must be between 0.04 and 3600, got -1e12" in parse_error(
        capsys, BASE_ARGS["animate"] + ["--seconds", "-1e12"])


@pytest.mark.parametrize("argv,message", [
    (["--preset", "nod", "--seconds", "1e12"], "--seconds must be between 0.04 and 3600, got 1e12"),
    (["--preset", "nod", "--seconds", "-1"], "--seconds must be between 0.04 and 3600, got -1"),
    (["--preset", "nod", "--fps", "0"], "--fps must be between 1 and 120, got 0"),
])
def test_bad_numbers_fail_before_any_work(tmp_path, hopper_path, argv, message):
    """Once a traceback (1e12 s: a 182 TiB array), a numpy RuntimeWarning (--fps 0) or a silent
    one-frame clip (--seconds -1); now exactly one line."""
    out = tmp_path / "x.mp4"
    r = run_cli("animate", hopper_path, *argv, "-o", out)
    assert r.returncode == 2
    assert r.stderr == f"facecast: error: {message}\n"
    assert not out.exists()


def test_the_python_api_checks_the_same_ranges():
    from facecast.errors import FacecastError
    from facecast.motion.controls import Controls
    from facecast.motion.presets import preset_motion
    with pytest.raises(FacecastError, match="seconds must be between 0.04 and 3600, got 1000000000000"):
        preset_motion("nod", 1e12)
    with pytest.raises(FacecastError, match="fps must be between 1 and 120, got 0"):
        preset_motion("blink", 1.0, 0.0)
    with pytest.raises(FacecastError, match=r"gaze \(each number\) must be between -35 and 35, got -40,0"):
        Controls(gaze=(-40, 0))
    with pytest.raises(FacecastError, match="seed must be between 0 and 4294967295, got -1"):
        Controls(seed=-1)
    with pytest.raises(FacecastError, match="head-distance must be between 0.5 and 2, got nan"):
        Controls(head_distance=float("nan"))
    c = Controls(gaze=(-35, 35), head_offset=(-0.3, 0.3), seed=2 ** 32 - 1, blink_rate=60)
    assert c.gaze == (-35.0, 35.0) and c.seed == 2 ** 32 - 1 and isinstance(c.seed, int)


# ---- negative pairs ----------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["render", "motion"])
def test_negative_pairs_parse_as_the_readme_writes_them(command):
    base = BASE_ARGS[command]
    for argv in (["--gaze", "-15,0", "--head-offset", "-0.1,-0.2"],
                 ["--gaze=-15,0", "--head-offset=-0.1,-0.2"],
                 ["--gaze", "-15, 0", "--head-offset", "-.1,-2e-1"]):
        args = build_parser().parse_args(base + argv + ["--seed", "3"])
        assert args.gaze == (-15.0, 0.0) and args.head_offset == pytest.approx((-0.1, -0.2))
        assert args.seed == 3  # the option after a negative pair is still an option
    args = build_parser().parse_args(base + ["--gaze", "-15,-5"])
    assert args.gaze == (-15.0, -5.0)


def test_negative_gaze_reaches_the_motion(tmp_path):
    wav = save_wav(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    out = tmp_path / "m.json"
    r = run_cli("motion", wav, "-o", out, "--gaze", "-15,0", "--head-offset=-0.1,0.05", "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    m = MotionSequence.load(out)
    assert np.median(m.gaze[:, 0]) == pytest.approx(-15, abs=3)
    assert np.median(m.translation[:, 0]) == pytest.approx(-0.1, abs=0.02)


# ---- warnings and native logs --------------------------------------------------------------------
def test_truncated_audio_renders_the_readable_part_with_one_warning(tmp_path, hopper_path):
    from test_audio import encode
    t = np.arange(44100 * 4) / 44100
    full = encode(tmp_path / "tone.mp3", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100,
                  "libmp3lame")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out = tmp_path / "out.mp4"
    r = run_cli("render", hopper_path, cut, "-o", out, "--size", 256, "--quiet")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("facecast: warning: "), r.stderr
    assert "truncated or damaged: read 2.0 s of 4.0 s" in lines[0]
    with av.open(str(out)) as c:
        n = sum(1 for _ in c.decode(c.streams.video[0]))
    assert n == pytest.approx(50, abs=2)


def test_native_log_lines_are_dropped_and_the_rest_kept(capfd):
    with native_logs_filtered():
        os.write(2, b"W0000 00:00:1795503038.066670    6464 inference_feedback_manager.cc:114] Feedback\n"
                    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"E0000 00:00:1795503038.1    6464 graph.cc:1] a real error\n"
                    b"something else\n")
        with native_logs_filtered():  # nested windows restore once, at the end
            os.write(2, b"I0000 00:00:1.5 1 x.cc:2] more noise\n")
        sys.stderr.write("python text\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    # (under capfd, sys.stderr is pytest's own buffer, so "python text" may come first)
    assert sorted(err.splitlines()) == sorted(["E0000 00:00:1795503038.1    6464 graph.cc:1] a real error",
                                               "something else", "python text", "after"])
    assert err.index("something else") < err.index("after")
    with native_logs_filtered(enabled=False):
        os.write(2, b"W0000 00:00:1.0 1 x.cc:3] kept when verbose\n")
    assert "kept when verbose" in capfd.readouterr().err


def test_quiet_render_prints_nothing(tmp_path, hopper_path):
    t = np.arange(16000) / 16000
    wav = save_wav(tmp_path / "a.wav", (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    r = run_cli("render", hopper_path, wav, "-o", tmp_path / "out.mp4", "--size", 256, "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_analyze_has_no_native_logs_unless_asked(tmp_path, hopper_path):
    r = run_cli("analyze", hopper_path, "-o", tmp_path / "o.png")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    env = dict(os.environ, FACECAST_VERBOSE_NATIVE_LOGS="1")
    r = run_cli("analyze", hopper_path, "-o", tmp_path / "o.png", env=env)
    assert r.returncode == 0 and "W0000" in r.stderr  # kept on request


def test_serve_has_no_native_logs(hopper_path):
    p = subprocess.Popen([sys.executable, "-m", "facecast", "serve", hopper_path, "--port", "0", "--size", "256"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = []
        reader = threading.Thread(target=lambda: first.append(p.stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)  # the line comes once the portrait is built and the socket bound
        assert first and "serving on http://127.0.0.1:" in first[0], first
        time.sleep(3)  # the page's sample portraits are built in the background meanwhile
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    assert "W0000" not in err and "INFO:" not in err and "absl" not in err, err


# ---- demo ------------------------------------------------------------------------------------------
MOUTH = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthLowerDownLeft", "mouthLowerDownRight",
         "mouthUpperUpLeft", "mouthUpperUpRight")


def test_demo_motion_ends_at_rest():
    audio, sr, phonemes = synthesize(DEMO_TEXT, "en", sample_rate=16000, trailing_silence_s=DEMO_TRAILING_SILENCE_S)
    assert phonemes[-1].kind == "pause" and phonemes[-1].duration_s >= DEMO_TRAILING_SILENCE_S
    assert phonemes[-1].end_s == pytest.approx(len(audio) / sr)
    m = generate_motion(audio, sr, 25.0)
    last = m.blendshapes[-3:]
    assert max(float(last[:, BLENDSHAPE_INDEX[n]].max()) for n in MOUTH) < 0.05


def test_demo_video_ends_with_the_mouth_closed(tmp_path, tracker):
    import matplotlib.cbook

    from facecast.evaluation.retrack import measure
    from facecast.face.rig import build_rig
    out = tmp_path / "demo.mp4"
    r = run_cli("demo", "-o", out, "--size", 256, "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    rig = build_rig(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), 256, tracker=tracker)
    gaps = [measure(tracker, rig, f).lip_gap for f in frames[-2:]]
    assert max(gaps) < 0.01, gaps  # about the photo's own (closed) 0.002; open vowels measure 0.1-0.2
