"""`facecast batch`: six real jobs on the local pool (one without a face), resuming, retrying
failures, the same frames on Ray, and bad manifests refused by row and field before any work."""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import skimage.data

import facecast
from facecast.audio.io import save_wav
from facecast.batching.manifest import read_manifest
from facecast.errors import FacecastError
from facecast.evaluation.retrack import psnr


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "facecast", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, hopper_path, tts_speech):
    """A folder with a portrait, a cat (no face), two short speech files and a motion file."""
    d = tmp_path_factory.mktemp("batch-inputs")
    x = tts_speech[0]
    save_wav(d / "a.wav", x[:int(0.6 * 16000)], 16000)
    save_wav(d / "b.wav", x[int(0.6 * 16000):int(1.2 * 16000)], 16000)
    cv2.imwrite(str(d / "hopper.jpg"), cv2.imread(hopper_path))
    cv2.imwrite(str(d / "cat.png"), skimage.data.chelsea()[:, :, ::-1])
    from facecast.motion.presets import preset_motion
    preset_motion("nod", 0.5, 25).save(d / "nod.json")
    return d


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def six_jobs(inputs):
    return write_jsonl(inputs / "six.jsonl", [
        {"image": "hopper.jpg", "audio": "a.wav", "output": "a.mp4", "size": 256, "seed": 1},
        {"image": "hopper.jpg", "audio": "b.wav", "output": "b.mp4", "size": 256, "emotion": "happy:0.5"},
        {"image": "hopper.jpg", "audio": "a.wav", "output": "sub/c.webm", "size": 256, "gaze": [-10, 0]},
        {"image": "hopper.jpg", "motion": "nod.json", "audio": "b.wav", "output": "nod.mp4", "size": 256},
        {"image": "cat.png", "audio": "a.wav", "output": "cat.mp4", "size": 256},
        {"image": "hopper.jpg", "audio": "b.wav", "output": "frames_e", "size": 256, "motion_scale": 0},
    ])


def records(outdir):
    return [json.loads(line) for line in (outdir / "results.jsonl").read_text().splitlines()]


def test_local_pool_runs_skips_and_retries(tmp_path, inputs):
    manifest = six_jobs(inputs)
    out = tmp_path / "out"
    s = facecast.batch(manifest, out, workers=2)
    assert (s.done, s.skipped, s.failed) == (5, 0, 1)
    failed = [r for r in s.results if r.status == "failed"]
    assert failed[0].name == "cat.mp4" and "no face" in failed[0].reason
    assert not (out / "cat.mp4").exists()
    for name in ("a.mp4", "b.mp4", "sub/c.webm", "nod.mp4"):
        assert (out / name).stat().st_size > 0
    assert len(list((out / "frames_e").glob("frame_*.png"))) == 15
    assert s.video_s == pytest.approx(0.6 * 4 + 0.5, abs=0.2) and s.speed > 0
    assert not [p for p in out.rglob(".*")]           # no temporary files left
    done = [r for r in records(out) if r["status"] == "done"]
    assert len(done) == 5 and len({r["video_id"] for r in done}) == 5
    from facecast.provenance.verify import verify
    report = verify(out / "a.mp4")   # marked, and the recorded id is the one the video carries
    # (a 0.6 s clip at 256 px is too short to read the mark's payload: its tags carry the id)
    assert report["found"] and report["metadata"]["video_id"] == \
        next(r["video_id"] for r in done if r["name"] == "a.mp4")

    again = facecast.batch(manifest, out, workers=2)  # the five are complete: skipped
    assert (again.done, again.skipped, again.failed) == (0, 5, 1)
    retry = facecast.batch(manifest, out, retry_failed=True)
    assert [r.name for r in retry.results] == ["cat.mp4"] and retry.failed == 1


def test_cli_exit_codes_and_summary(tmp_path, inputs):
    ok = write_jsonl(tmp_path / "ok.jsonl", [{"image": str(inputs / "hopper.jpg"), "audio": str(inputs / "a.wav"),
                                             "output": "one.mp4", "size": 256}])
    r = run_cli("batch", ok, "-o", tmp_path / "o1")
    assert r.returncode == 0, r.stderr
    assert "facecast: done row 1 one.mp4" in r.stderr and "1 done, 0 skipped, 0 failed" in r.stderr
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"image": str(inputs / "cat.png"), "audio": str(inputs / "a.wav"),
                                              "output": "cat.mp4", "size": 256}])
    r = run_cli("batch", bad, "-o", tmp_path / "o2")
    assert r.returncode == 1 and "0 done, 0 skipped, 1 failed" in r.stderr
    r = run_cli("batch", tmp_path / "missing.csv", "-o", tmp_path / "o3")
    assert r.returncode == 2 and r.stderr.startswith("facecast: error: manifest not found")
    assert not (tmp_path / "o3").exists()


def test_csv_manifest_with_pairs_and_controls_file(tmp_path, inputs):
    ctl = tmp_path / "ctl.json"
    ctl.write_text('{"keyframes": [{"t": 0, "emotion": "neutral"}, {"t": 0.5, "emotion": "happy:0.8"}]}')
    manifest = tmp_path / "m.csv"
    manifest.write_text("image,audio,output,gaze,seed,controls,full_frame\n"
                        f"{inputs / 'hopper.jpg'},{inputs / 'a.wav'},x.mp4,\"-10,5\",3,{ctl},false\n")
    job, = read_manifest(manifest, tmp_path / "out")
    assert job.controls["gaze"] == [-10.0, 5.0] and job.controls["seed"] == 3 and job.full_frame is False
    assert [k["t"] for k in job.controls["keyframes"]] == [0.0, 0.5]
    assert job.output == str((tmp_path / "out" / "x.mp4").resolve())


@pytest.mark.parametrize("row, words", [
    ({"image": "nowhere.jpg", "audio": "a.wav", "output": "x.mp4"}, "row 1, field image: file not found: nowhere.jpg"),
    ({"image": "hopper.jpg", "output": "x.mp4"}, "row 1, field audio: every job needs audio"),
    ({"image": "hopper.jpg", "audio": "a.wav", "output": "x.mp4", "mood": "happy"}, "row 1, field mood: unknown"),
    ({"image": "hopper.jpg", "audio": "a.wav", "output": "x.mp4", "emotion": "joyful"},
     "row 1, field emotion: unknown emotion 'joyful'"),
    ({"image": "hopper.jpg", "audio": "a.wav", "output": "x.mp4", "gaze": [90, 0]},
     "row 1, field gaze: gaze (each number) must be between -35 and 35"),
    ({"image": "hopper.jpg", "audio": "a.wav", "output": "../x.mp4"}, "row 1, field output: '../x.mp4' is outside"),
    ({"image": "hopper.jpg", "audio": "a.wav", "output": "/tmp/x.mp4"}, "row 1, field output: '/tmp/x.mp4' is outside"),
    ({"image": "hopper.jpg", "audio": "a.wav", "output": "x.gif"}, "row 1, field output: unsupported type '.gif'"),
    ({"image": "hopper.jpg", "audio": "a.wav", "output": "x.mp4", "size": 100}, "row 1, field size: must be"),
])
def test_bad_manifest_names_row_and_field(tmp_path, inputs, row, words):
    m = write_jsonl(inputs / "bad.jsonl", [row])
    with pytest.raises(FacecastError) as e:
        facecast.batch(m, tmp_path / "out")
    assert words in str(e.value)
    assert not (tmp_path / "out").exists()


def test_duplicate_outputs_refused(tmp_path, inputs):
    m = write_jsonl(inputs / "dup.jsonl", [{"image": "hopper.jpg", "audio": "a.wav", "output": "x.mp4"},
                                           {"image": "hopper.jpg", "audio": "b.wav", "output": "./x.mp4"}])
    with pytest.raises(FacecastError, match=r"row 2, field output: './x.mp4' is also the output of row 1"):
        read_manifest(m, tmp_path)


def test_interrupt_leaves_no_partial_file_and_keeps_finished(tmp_path, inputs, tts_speech):
    long_wav = tmp_path / "long.wav"
    save_wav(long_wav, np.tile(tts_speech[0], 6), 16000)
    m = write_jsonl(tmp_path / "m.jsonl", [
        {"image": str(inputs / "hopper.jpg"), "audio": str(inputs / "a.wav"), "output": "short.mp4", "size": 256},
        {"image": str(inputs / "hopper.jpg"), "audio": str(long_wav), "output": "long.mp4", "size": 256}])
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "facecast", "batch", str(m), "-o", str(out), "--workers", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(out.glob(".long.*.mp4")) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "the batch ended before it could be interrupted"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert sorted(os.listdir(out)) == ["results.jsonl", "short.mp4"]
    assert [r["name"] for r in records(out)] == ["short.mp4"]


def test_ray_gives_the_local_pools_frames(tmp_path, inputs):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'facecast[ray]')")
    m = write_jsonl(tmp_path / "m.jsonl", [
        {"image": str(inputs / "hopper.jpg"), "audio": str(inputs / "a.wav"), "output": "f", "size": 256, "seed": 4},
        {"image": str(inputs / "hopper.jpg"), "audio": str(inputs / "b.wav"), "output": "g", "size": 256,
         "emotion": "sad:0.6"}])
    local = facecast.batch(m, tmp_path / "local", workers=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = facecast.batch(m, tmp_path / "ray", engine="ray")
    finally:
        ray.shutdown()
    assert local.done == on_ray.done == 2
    # every video carries its own watermark id, so the frames differ by two faint marks only:
    # 44.5 dB between two marks on the same frames, against at most 35 dB for another seed
    ids = {r.video_id for r in local.results + on_ray.results}
    assert len(ids) == 4 and None not in ids
    for name in ("f", "g"):
        a = sorted((tmp_path / "local" / name).glob("frame_*.png"))
        b = sorted((tmp_path / "ray" / name).glob("frame_*.png"))
        assert len(a) == len(b) == 15
        assert min(psnr(cv2.imread(str(x)), cv2.imread(str(y))) for x, y in zip(a, b)) >= 42.0
