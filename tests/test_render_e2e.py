"""`facecast render`: the real CLI on a real photo and TTS speech; long audio in bounded memory."""
import json
import shutil
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from facecast.audio.io import save_wav
from facecast.face.topology import lip_gap


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "facecast", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def decode(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        audio_s = sum(f.samples for f in c.decode(a)) / a.rate
        codec = a.codec_context.name
    return frames, audio_s, codec


@pytest.mark.parametrize("fps", [25, 30])
def test_render_cli_makes_synced_talking_video(tmp_path, hopper_path, speech_wav, tracker, fps):
    wav, first_s, gap_s = speech_wav
    out = tmp_path / "talk.mp4"
    r = run_cli("render", hopper_path, wav, "-o", out, "--fps", fps, "--size", 256, "--seed", 3)
    assert r.returncode == 0, r.stderr
    frames, audio_s, codec = decode(out)
    total_s = 2 * first_s + gap_s
    assert len(frames) == round(total_s * fps)
    assert codec == "aac" and audio_s == pytest.approx(len(frames) / fps, abs=0.03)
    assert frames[0].shape == (256, 256, 3)
    # the face moves
    diffs = [np.abs(frames[i].astype(int) - frames[i - 5]).mean() for i in range(5, len(frames), 5)]
    assert np.mean(diffs) > 1.0
    if fps == 25:
        # lips close in the silent gap, open while talking
        gaps = []
        for i in range(len(frames)):
            faces = tracker.landmarks(frames[i])
            gaps.append(lip_gap(faces[0].landmarks) if faces else np.nan)
        gaps = np.array(gaps)
        t = np.arange(len(frames)) / fps
        in_gap = (t > first_s + 0.45) & (t < first_s + gap_s - 0.1)
        talking = (t > 0.3) & (t < first_s - 0.2)
        assert np.nanmax(gaps[in_gap]) < 0.05
        assert np.nanpercentile(gaps[talking], 90) > 0.12


def test_save_motion_rerenders_to_the_same_frames(tmp_path, hopper_path, speech_wav):
    wav, _, _ = speech_wav
    a, b = tmp_path / "a", tmp_path / "b"
    motion = tmp_path / "m.json"
    # unmarked: each render's watermark has its own random id, so marked frames would differ
    r = run_cli("render", hopper_path, wav, "-o", a, "--size", 256, "--save-motion", motion, "--emotion", "happy:0.5",
                "--no-watermark")
    assert r.returncode == 0, r.stderr
    r = run_cli("animate", hopper_path, "--motion", motion, "-o", b, "--size", 256, "--no-watermark")
    assert r.returncode == 0, r.stderr
    fa, fb = sorted(a.glob("*.png")), sorted(b.glob("*.png"))
    assert len(fa) == len(fb) == len(json.loads(motion.read_text())["frames"])
    for x, y in zip(fa[::7], fb[::7]):
        assert np.array_equal(cv2.imread(str(x)), cv2.imread(str(y)))


def test_motion_export_cli(tmp_path, speech_wav):
    wav, first_s, gap_s = speech_wav
    for ext in ("json", "csv"):
        out = tmp_path / f"m.{ext}"
        r = run_cli("motion", wav, "-o", out, "--fps", 60, "--emotion", "sad:0.6")
        assert r.returncode == 0, r.stderr
        from facecast.motion.types import MotionSequence
        m = MotionSequence.load(out)
        assert m.fps == 60 and len(m) == round((2 * first_s + gap_s) * 60)


@pytest.mark.parametrize("kind", ["empty", "text", "jpeg", "missing", "video_only"])
def test_bad_audio_gives_one_clear_line(tmp_path, hopper_path, kind):
    p = tmp_path / {"empty": "e.wav", "text": "t.mp3", "jpeg": "j.wav", "missing": "m.wav", "video_only": "v.mp4"}[kind]
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("hello, this is not audio")
    elif kind == "jpeg":
        p.write_bytes(open(hopper_path, "rb").read())
    elif kind == "video_only":
        with av.open(str(p), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width = s.height = 64
            s.pix_fmt = "yuv420p"
            for _ in range(5):
                for pk in s.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")):
                    c.mux(pk)
            for pk in s.encode(None):
                c.mux(pk)
    out = tmp_path / "out.mp4"
    r = run_cli("render", hopper_path, p, "-o", out)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("facecast: error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_refuses_to_overwrite_input_and_bad_controls(tmp_path, hopper_path, speech_wav):
    wav, _, _ = speech_wav
    # the same name with another extension is another file, not the input: it renders
    beside = tmp_path / "speech.mp4"
    shutil.copy(wav, tmp_path / "speech.wav")
    r = run_cli("render", hopper_path, tmp_path / "speech.wav", "-o", beside, "--size", "256", "--quiet")
    assert r.returncode == 0 and beside.stat().st_size > 0, r.stderr
    r = run_cli("render", hopper_path, wav, "-o", tmp_path / "x.mp4", "--emotion", "joyful")
    assert r.returncode == 2 and "emotion" in r.stderr
    ctl = tmp_path / "c.json"
    ctl.write_text('{"keyframes": [{"t": 0, "emotion": "happy"}, {"t": 1, "gaze": [50, 0]}]}')
    r = run_cli("render", hopper_path, wav, "-o", tmp_path / "x.mp4", "--controls", ctl)
    assert r.returncode == 2 and "gaze" in r.stderr
    copy = tmp_path / "in.mp4"
    copy.write_bytes(b"x")
    r = run_cli("render", hopper_path, copy, "-o", copy)
    assert r.returncode == 2 and copy.read_bytes() == b"x"


def test_long_audio_keeps_memory_flat(tmp_path, hopper_path, tts_speech):
    """10 minutes of speech (a sentence repeated with pauses): memory after 1 minute of video and
    at the end is the same, and the peak stays far below what keeping frames or audio would need."""
    x, _ = tts_speech
    unit = np.concatenate([x, np.zeros(8000, np.float32)])
    wav = tmp_path / "long.wav"
    save_wav(wav, np.resize(unit, 10 * 60 * 16000), 16000)
    out = tmp_path / "long.mp4"
    code = f"""
import resource, sys
from facecast.pipeline import Animator
def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() / 2**20
marks = {{}}
def progress(done, total):
    if done in (600, total):
        marks[done] = rss_mb()
res = Animator({str(hopper_path)!r}, size=256).render({str(wav)!r}, {str(out)!r}, fps=10, progress=progress)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]
print(marks[600], marks[res.frames], int(hwm) / 1024)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    early, end, peak = map(float, r.stdout.strip().splitlines()[-1].split())
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.frames == 6000
        assert float(a.duration * a.time_base) == pytest.approx(600.0, abs=0.1)
    # frames kept in memory would add 1.2 GB, the decoded audio 0.1-0.2 GB
    assert end - early < 40 and peak < 600, (early, end, peak)


def test_webm_output_and_demo(tmp_path, hopper_path, speech_wav):
    wav, first_s, gap_s = speech_wav
    out = tmp_path / "talk.webm"
    r = run_cli("render", hopper_path, wav, "-o", out, "--size", 256, "--still", "--expression-scale", "1.5")
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
        assert c.streams.audio[0].codec_context.name in ("opus", "libopus")
    demo = tmp_path / "demo.mp4"
    r = run_cli("demo", "-o", demo, "--size", 256, "--text", "Hello, this is a short demo.")
    assert r.returncode == 0, r.stderr
    frames, audio_s, codec = decode(demo)
    assert len(frames) > 25 and codec == "aac"
