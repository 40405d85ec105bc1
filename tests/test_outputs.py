"""Outputs never destroy data: PNG-folder policy, `-o .`, inputs inside the output folder, the
user's umask, and SIGTERM mid-render leaving nothing behind."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facecast.errors import FacecastError
from facecast.outputs import PendingFile, PendingFrameFolder, write_text_atomic
from facecast.video import VideoWriter, check_output_path


def run_cli(*args, cwd=None, umask=None):
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([sys.executable, "-m", "facecast", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, preexec_fn=pre)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def inputs_dir(tmp_path, hopper_path, speech_wav):
    """A folder holding the user's inputs (a photo and a speech file) and a note."""
    d = tmp_path / "work"
    d.mkdir()
    shutil.copy(hopper_path, d / "me.jpg")
    shutil.copy(speech_wav[0], d / "speech.wav")
    (d / "notes.txt").write_text("keep me")
    return d


def frames(n, size=64):
    return [np.full((size, size, 3), 10 * i, np.uint8) for i in range(n)]


def test_render_into_existing_folder_with_inputs_is_refused_and_nothing_touched(inputs_dir):
    before = snapshot(inputs_dir)
    r = run_cli("render", inputs_dir / "me.jpg", inputs_dir / "speech.wav", "-o", inputs_dir)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("facecast: error: refusing to write frames into") and r.stderr.count("\n") == 1
    assert snapshot(inputs_dir) == before


def test_output_dot_is_refused_and_the_current_folder_untouched(inputs_dir):
    before = snapshot(inputs_dir)
    r = run_cli("render", "me.jpg", "speech.wav", "-o", ".", cwd=inputs_dir)
    assert r.returncode == 2 and "refusing to write frames into ." in r.stderr, r.stderr
    assert snapshot(inputs_dir) == before
    r = run_cli("animate", "me.jpg", "--preset", "nod", "--seconds", "0.2", "-o", ".", cwd=inputs_dir)
    assert r.returncode == 2, r.stderr
    assert snapshot(inputs_dir) == before


def test_output_named_like_an_existing_file_without_extension_is_refused(tmp_path):
    f = tmp_path / "README"
    f.write_text("mine")
    with pytest.raises(FacecastError, match="exists and is not a folder"):
        check_output_path(f)
    with pytest.raises(FacecastError, match="exists and is not a folder"):
        VideoWriter(f, 25, 64).__enter__()
    assert f.read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["README"]


def test_frames_go_into_a_new_folder(tmp_path):
    out = tmp_path / "new"
    with VideoWriter(out, 25, 64) as vw:
        for f in frames(3):
            vw.write(f)
    assert sorted(os.listdir(out)) == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    assert sorted(os.listdir(tmp_path)) == ["new"]  # no temporary folder left beside it


def test_frames_go_into_an_empty_folder(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    with VideoWriter(out, 25, 64) as vw:
        for f in frames(2):
            vw.write(f)
    assert sorted(os.listdir(out)) == ["frame_000000.png", "frame_000001.png"]


def test_frames_replace_an_earlier_longer_run(tmp_path):
    out = tmp_path / "frames"
    with VideoWriter(out, 25, 64) as vw:
        for f in frames(4):
            vw.write(f)
    with VideoWriter(out, 25, 64) as vw:
        for f in frames(2)[::-1]:
            vw.write(f)
    assert sorted(os.listdir(out)) == ["frame_000000.png", "frame_000001.png"]
    import cv2
    assert cv2.imread(str(out / "frame_000000.png"))[0, 0, 0] == 10  # the new first frame


def test_frame_folder_with_one_other_file_is_refused(tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "frame_000000.png").write_bytes(b"old")
    (out / "holiday.png").write_bytes(b"photo")
    before = snapshot(out)
    with pytest.raises(FacecastError, match="holds other files"):
        check_output_path(out)
    with pytest.raises(FacecastError, match="holds other files"):
        PendingFrameFolder(out)
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["frames"]


def test_a_file_appearing_in_the_folder_during_the_render_is_kept(tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    pending = PendingFrameFolder(out)
    pending.write(frames(1)[0])
    (out / "arrived.txt").write_text("during the render")
    with pytest.raises(FacecastError, match="holds other files"):
        pending.commit()
    assert sorted(os.listdir(out)) == ["arrived.txt"]


def test_an_error_inside_the_writer_leaves_nothing(tmp_path):
    for name in ("clip.mp4", "frames"):
        with pytest.raises(RuntimeError):
            with VideoWriter(tmp_path / name, 25, 64) as vw:
                vw.write(frames(1)[0])
                raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_outputs_follow_the_umask(tmp_path, hopper_path):
    out = tmp_path / "clip.mp4"
    r = run_cli("animate", hopper_path, "--preset", "nod", "--seconds", "0.2", "--size", "256", "-o", out,
                "--quiet", umask=0o027)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o640
    old = os.umask(0o002)
    try:
        write_text_atomic(tmp_path / "m.json", "{}")
        with PendingFile(tmp_path / "x.png") as f:
            f.path.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o664


def test_sigterm_mid_render_leaves_no_file(tmp_path, hopper_path, speech_wav):
    out = tmp_path / "o.mp4"
    p = subprocess.Popen([sys.executable, "-m", "facecast", "render", hopper_path, speech_wav[0], "-o", out,
                          "--size", "256", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".o.*.mp4")) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.poll() is None, "the render ended before it could be interrupted"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted; nothing was written" in err, err
    assert os.listdir(tmp_path) == []
