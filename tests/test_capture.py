"""Motion capture and reenactment (`facecast capture`, `facecast drive`), on videos facecast
renders itself from a bundled photo with a known motion: a head sweep (yaw, pitch, roll), two
blinks, two jaw openings and a smile. Real clips are not needed (see bench/ and the README)."""
import subprocess
import sys

import av
import numpy as np
import pytest

from facecast.audio.io import save_wav
from facecast.capture import Capture, capture, events
from facecast.capture.core import iter_frames
from facecast.evaluation.retrack import measure
from facecast.face.rig import build_rig
from facecast.motion.types import BLENDSHAPE_INDEX as B
from facecast.motion.types import NUM_BLENDSHAPES, MotionSequence
from facecast.pipeline import Animator
from facecast.video import VideoWriter

FPS, N, SIZE = 25, 75, 256
BLINKS = (20, 55)                   # frames where the commanded blinks peak
T = np.arange(N) / FPS


def _motion() -> MotionSequence:
    rot = np.zeros((N, 3))
    rot[:, 0] = 6 * np.sin(2 * np.pi * T / 1.5)
    rot[:, 1] = 15 * np.sin(2 * np.pi * T / 3.0)
    rot[:, 2] = 5 * np.sin(2 * np.pi * T / 2.0)
    bs = np.zeros((N, NUM_BLENDSHAPES))
    for c in BLINKS:  # 5-frame blinks, full closure at the centre
        k = np.clip(1 - np.abs(np.arange(N) - c) / 3, 0, 1)
        bs[:, B["eyeBlinkLeft"]] = np.maximum(bs[:, B["eyeBlinkLeft"]], k)
    bs[:, B["eyeBlinkRight"]] = bs[:, B["eyeBlinkLeft"]]
    jaw = 0.6 * np.sin(np.pi * (T - 0.4) / 0.8) * ((T > 0.4) & (T < 1.2)) \
        + 0.4 * np.sin(np.pi * (T - 1.8) / 0.6) * ((T > 1.8) & (T < 2.4))
    bs[:, B["jawOpen"]] = np.clip(jaw, 0, 1)
    smile = 0.7 * np.sin(np.pi * (T - 1.2) / 1.0) * ((T > 1.2) & (T < 2.2))
    bs[:, B["mouthSmileLeft"]] = bs[:, B["mouthSmileRight"]] = np.clip(smile, 0, 1)
    return MotionSequence(FPS, rot, np.zeros((N, 2)), np.ones(N), bs, np.zeros((N, 2)))


@pytest.fixture(scope="module")
def driver(tmp_path_factory, hopper_path):
    """Grace Hopper performing `_motion`, with a tone as its audio; and the same without audio."""
    d = tmp_path_factory.mktemp("capture")
    wav = d / "tone.wav"
    save_wav(wav, (0.1 * np.sin(2 * np.pi * 220 * np.arange(3 * 16000) / 16000)).astype(np.float32), 16000)
    anim = Animator(hopper_path, size=SIZE, watermark=False)
    motion = _motion()
    anim.animate(motion, d / "driver.mp4", audio=wav)
    anim.animate(MotionSequence.from_frames(list(motion)[:12], FPS), d / "silent.mp4")
    return {"dir": d, "video": d / "driver.mp4", "silent": d / "silent.mp4", "motion": motion, "rig": anim.rig}


@pytest.fixture(scope="module")
def captured(driver):
    return capture(driver["video"], driver["dir"] / "motion.json")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "facecast", *map(str, args)], capture_output=True, text=True, check=False)


def test_capture_follows_the_commanded_pose(captured, driver, tracker):
    motion, report = captured
    want = driver["motion"].rotation
    assert len(motion) == N and motion.fps == FPS and report.found == N and not report.gaps
    # every axis follows the command in time (r > 0.9; measured 0.975 / 0.997 / 0.98 for pitch /
    # yaw / roll). The size of a rendered turn, as the face mesh reads it, is the renderer's:
    # pitch and roll come back at 0.95-1.0 x and 1.0 deg RMS, yaw at about 0.65 x (3.5 deg RMS).
    # So capture itself is checked against the project's own re-tracking metric
    # (`retrack.measure`, one frame at a time against the rig).
    for k in range(3):
        assert np.corrcoef(motion.rotation[:, k], want[:, k])[0, 1] > 0.9, k
        assert 0.5 < np.polyfit(want[:, k], motion.rotation[:, k], 1)[0] < 1.2, k
    # (both relative to the first frame). Capture tracks in the mesh's video mode, the metric in
    # its still-image mode, and the two read a fast pitch sweep up to 2.5 deg apart on a single
    # frame (smoothing moves it by a few tenths at most): RMS over frames and axes within 1.2 deg
    frames = list(iter_frames(driver["video"]))
    base = np.array(measure(tracker, driver["rig"], frames[0]).pose)
    diffs = []
    for i in (10, 15, 25, 30, 37, 45, 52, 65, 70):
        pose = np.array(measure(tracker, driver["rig"], frames[i]).pose) - base
        diffs.append(motion.rotation[i] - pose)
    diffs = np.array(diffs)
    assert np.sqrt(np.mean(diffs ** 2)) < 1.2 and np.abs(diffs).max() < 3.0, np.round(diffs, 2)


def test_capture_recovers_jaw_smile_and_blink_timing(captured, driver):
    motion, _ = captured
    want = driver["motion"].blendshapes
    jaw, wjaw = motion.blendshapes[:, B["jawOpen"]], want[:, B["jawOpen"]]
    assert np.sqrt(np.mean((jaw - wjaw) ** 2)) < 0.1                   # measured 0.025
    # the lips close again within 2 frames of when they were commanded closed
    for lo, hi in ((0.4, 1.2), (1.8, 2.4)):
        closed = next(i for i in range(int(hi * FPS) - 4, N) if jaw[i] < 0.05)
        assert abs(closed - hi * FPS) <= 2, (closed, hi)
    smile = motion.blendshapes[:, [B["mouthSmileLeft"], B["mouthSmileRight"]]].mean(1)
    wsmile = want[:, B["mouthSmileLeft"]]
    # the fit reads the smile late at both ends (small lifts are inside its neutral range) and
    # some of the jaw openings as smile (corr 0.88, RMS 0.11-0.16, peak 0.89 for 0.7), so: the
    # peak is in the smile, and a face at rest (no jaw, no smile) reads no smile
    assert np.corrcoef(smile, wsmile)[0, 1] > 0.7
    assert 30 <= int(np.argmax(smile)) <= 55 and smile.max() > 0.4
    assert smile[:10].max() < 0.05 and smile[62:].max() < 0.05
    # blinks: on the commanded frame, and nowhere else. The mesh sees the rendered lids only
    # partly closed (lid gap 0.40 -> 0.30 of the eye width: a 25 % drop), so the weight peaks at
    # 0.25-0.37 for a full commanded blink; away from blinks it stays under 0.1
    blink = motion.blendshapes[:, [B["eyeBlinkLeft"], B["eyeBlinkRight"]]].mean(1)
    for c in BLINKS:
        assert abs(int(np.argmax(blink[c - 5:c + 6])) - 5) <= 1
        assert blink[c - 1:c + 2].max() > 0.18
    far = np.ones(N, bool)
    for c in BLINKS:
        far[c - 4:c + 5] = False
    assert blink[far].max() < 0.1
    ev = events(motion, blink_on=0.15, blink_off=0.1)
    assert ev["blinks"] == 2 and ev["closures"] == 2


def test_capture_file_round_trips_and_cli(captured, driver, tmp_path):
    motion, _ = captured
    assert MotionSequence.load(driver["dir"] / "motion.json").equals(motion)
    r = _cli("capture", driver["video"], "-o", tmp_path / "m.csv", "--quiet")
    assert r.returncode == 0, r.stderr
    csv = MotionSequence.load(tmp_path / "m.csv")
    assert len(csv) == N and np.allclose(csv.rotation, motion.rotation, atol=1e-4)


def test_drive_another_portrait_follows_the_driver(driver, astronaut, tracker, tmp_path):
    out = tmp_path / "astro.mp4"
    rig = build_rig(astronaut, SIZE, tracker=tracker)
    res = Animator(astronaut, rig=rig, watermark=False).drive(driver["video"], out)
    assert res.frames == N
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.video[0].average_rate == FPS
    ms = [measure(tracker, rig, f) for f in iter_frames(out)]
    assert all(m is not None for m in ms)
    yaw = np.array([m.pose[1] for m in ms])
    gap = np.array([m.lip_gap for m in ms])
    want = driver["motion"]
    assert np.corrcoef(yaw, want.rotation[:, 1])[0, 1] > 0.95
    assert np.corrcoef(gap, want.blendshapes[:, B["jawOpen"]])[0, 1] > 0.8
    eyes = np.array([np.mean(m.eye_open) for m in ms])
    for c in BLINKS:  # the portrait's eyes close on the driver's blinks (within a frame)
        assert abs(int(np.argmin(eyes[c - 5:c + 6])) - 5) <= 1


def test_drive_options_and_audio_replacement(driver, hopper_path, tmp_path):
    wav = tmp_path / "other.wav"
    save_wav(wav, np.zeros(8000, np.float32), 16000)
    out = tmp_path / "still.mp4"
    r = _cli("drive", hopper_path, driver["silent"], "-o", out, "--size", 256, "--audio", wav, "--absolute",
             "--motion-scale", 0, "--gaze", "10,0", "--no-watermark", "--quiet", "--save-motion", tmp_path / "m.csv")
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.video[0].frames == 12
    played = MotionSequence.load(tmp_path / "m.csv")
    assert len(played) == 12 and not played.rotation.any() and np.allclose(played.gaze, [10, 0])


def _write(path, frames, fps=FPS):
    with VideoWriter(path, fps, frames[0].shape[1::-1]) as vw:
        for f in frames:
            vw.write(f)


def test_gaps_are_interpolated_and_reported(driver, tmp_path):
    frames = list(iter_frames(driver["video"]))
    blank = np.full_like(frames[0], 128)
    path = tmp_path / "gap.mp4"
    _write(path, frames[:10] + [blank] * 20 + frames[30:40])
    cap = Capture(path)
    motion = MotionSequence.from_frames(list(cap), cap.info.fps)
    assert len(motion) == 40 and cap.report.found == 20 and cap.report.gaps == [(0.4, 0.8)]
    assert "interpolated" in cap.report.notices()[0]
    # the gap is a straight line between the frames either side (after the short smoothing)
    assert np.all(np.isfinite(motion.rotation)) and abs(motion.rotation[20, 1] - motion.rotation[[12, 27], 1].mean()) < 3
    r = _cli("capture", path, "-o", tmp_path / "m.json", "--max-gap", 0.5)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "lost for more than 0.5 s" in r.stderr
    assert not (tmp_path / "m.json").exists()


def test_bad_inputs_are_one_line_errors(driver, hopper_path, tmp_path):
    noface = tmp_path / "noface.mp4"
    rng = np.random.default_rng(0)
    _write(noface, [rng.integers(0, 255, (128, 128, 3), np.uint8) for _ in range(10)])
    cases = [
        (("capture", noface, "-o", tmp_path / "a.json"), "no face found"),
        (("drive", hopper_path, noface, "-o", tmp_path / "b.mp4", "--audio", driver["dir"] / "tone.wav"),
         "no face found"),
        (("drive", hopper_path, driver["silent"], "-o", tmp_path / "c.mp4"), "no audio track"),
        (("capture", driver["video"], "-o", tmp_path / "a.txt"), ".json or .csv"),
        (("capture", tmp_path / "missing.mp4", "-o", tmp_path / "a.json"), "not found"),
        (("capture", hopper_path, "-o", tmp_path / "a.json"), "facecast: error"),
        (("drive", hopper_path, driver["video"], "-o", tmp_path / "d.mp4", "--motion-scale", 5), "between 0 and 3"),
        (("drive", hopper_path, driver["video"], "-o", tmp_path / "d.mp4", "--relative", "--absolute"),
         "not allowed"),
    ]
    for args, words in cases:
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("facecast: error:") and r.stderr.count("\n") == 1, (args, r.stderr)
        assert words in r.stderr, (args, r.stderr)
    assert not any(p.name.startswith(("a.", "b.", "c.", "d.")) for p in tmp_path.iterdir())


def test_several_faces_follow_the_chosen_one(driver, astronaut, tmp_path):
    """Grace Hopper (turning) beside the still astronaut: face 0 (larger) turns, face 1 does not."""
    import cv2
    other = cv2.resize(build_rig(astronaut, SIZE).image, (200, 200))
    side = np.zeros((SIZE, 200, 3), np.uint8)
    side[28:228] = other
    frames = [np.concatenate([f, side], axis=1) for f in list(iter_frames(driver["video"]))[:14]]
    path = tmp_path / "two.mp4"
    _write(path, frames)
    yaw = {}
    for face in (0, 1):
        cap = Capture(path, face=face)
        motion = MotionSequence.from_frames(list(cap), cap.info.fps)
        assert cap.report.faces == 2 and "found 2 faces" in cap.report.notices()[0]
        yaw[face] = motion.rotation[:, 1]
    assert yaw[0][-1] > 5 and np.abs(yaw[1]).max() < 2, yaw
    r = _cli("capture", path, "-o", tmp_path / "m.json", "--face", 3)
    assert r.returncode == 2 and "--face 3 is out of range" in r.stderr and r.stderr.count("\n") == 1
