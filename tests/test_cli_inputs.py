"""The command line on real photos, and every kind of bad input: exit 2, one clear line, no output left."""
import json
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from facecast.errors import FacecastError
from facecast.face.image_io import load_image
from facecast.face.rig import build_rig


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "facecast", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("facecast: error:")]


def test_analyze_writes_overlay_and_json(tmp_path, hopper_path):
    out = tmp_path / "overlay.png"
    r = run_cli("analyze", hopper_path, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["faces_found"] == 1 and abs(d["head_pose_deg"]["yaw"]) < 10
    img = cv2.imread(str(out))
    assert img.shape == (512, 1024, 3)


def test_animate_preset_writes_h264_mp4(tmp_path, hopper_path):
    out = tmp_path / "nod.mp4"
    r = run_cli("animate", hopper_path, "--preset", "nod", "--seconds", "1", "-o", out)
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        assert s.codec_context.name == "h264" and s.pix_fmt == "yuv420p"
    assert len(frames) == 25 and frames[0].shape == (512, 512, 3)
    assert np.abs(frames[6].astype(int) - frames[0]).mean() > 2  # the head moved


def test_animate_motion_file_with_audio_and_full_frame(tmp_path, hopper_path):
    from facecast.audio.io import save_wav
    from facecast.motion.presets import preset_motion
    motion = tmp_path / "m.csv"
    preset_motion("talk", 1.0, 25).save(motion)
    wav = tmp_path / "a.wav"
    t = np.arange(16000 * 2) / 16000
    save_wav(wav, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    out = tmp_path / "full.mp4"
    r = run_cli("animate", hopper_path, "--motion", motion, "--audio", wav, "--full-frame", "-o", out)
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) != (512, 512)
        n = sum(1 for _ in c.decode(v))
        assert n == 25
        assert a.codec_context.name == "aac"
        assert float(a.duration * a.time_base) == pytest.approx(1.0, abs=0.1)


def test_png_folder_output(tmp_path, hopper_path):
    out = tmp_path / "frames"
    r = run_cli("animate", hopper_path, "--preset", "blink", "--seconds", "0.4", "-o", out)
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("frame_*.png"))) == 10


# ---- bad input -------------------------------------------------------------------------------
def write(tmp_path, name, arr, **kw):
    p = tmp_path / name
    Image.fromarray(arr, **kw).save(p)
    return p


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    cat = write(d, "cat.png", skimage.data.chelsea())
    landscape = write(d, "coffee.png", skimage.data.coffee())
    text = d / "notes.jpg"
    text.write_text("this is not an image")
    tiny = write(d, "tiny.png", cv2.resize(skimage.data.astronaut(), (40, 40)))
    return {"cat": cat, "landscape": landscape, "text": text, "tiny": tiny, "missing": d / "nope.png"}


@pytest.mark.parametrize("kind", ["cat", "landscape", "text", "tiny", "missing"])
def test_bad_images_give_one_clear_line(tmp_path, bad_inputs, kind):
    out = tmp_path / "out.mp4"
    r = run_cli("animate", bad_inputs[kind], "--preset", "nod", "-o", out)
    assert r.returncode == 2
    assert len(error_lines(r.stderr)) == 1 and "Traceback" not in r.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_unwritable_and_bad_output(tmp_path, hopper_path):
    r = run_cli("animate", hopper_path, "--preset", "nod", "-o", tmp_path / "missing_dir" / "x.mp4")
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_cli("animate", hopper_path, "--preset", "nod", "-o", tmp_path / "x.gif")
    assert r.returncode == 2 and len(error_lines(r.stderr)) == 1


def test_small_face_is_refused_with_advice(astronaut, tracker):
    small = cv2.resize(astronaut, (150, 150), interpolation=cv2.INTER_AREA)
    with pytest.raises(FacecastError, match="pixels"):
        build_rig(small, tracker=tracker)


def test_several_faces_pick_largest_and_name_the_flag(hopper_path, astronaut, tracker):
    hop = load_image(hopper_path)
    small = cv2.resize(astronaut, (360, 360))
    canvas = np.full((600, 940, 3), 200, np.uint8)
    canvas[:, :512] = hop[:, :512]
    canvas[120:480, 560:920] = small
    rig = build_rig(canvas, tracker=tracker)
    assert rig.faces_found == 2 and any("--face" in n for n in rig.notices)
    other = build_rig(canvas, face_index=1, tracker=tracker)
    assert other.crop_box[0] > rig.crop_box[0]
    with pytest.raises(FacecastError, match="--face"):
        build_rig(canvas, face_index=5, tracker=tracker)


def test_image_kinds_all_load_and_rig(tmp_path, astronaut, tracker):
    gray = write(tmp_path, "gray.png", cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))
    rgba = write(tmp_path, "rgba.png", np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)]))
    p16 = tmp_path / "deep.png"
    cv2.imwrite(str(p16), (astronaut[:, :, ::-1].astype(np.uint16) * 257))
    # EXIF orientation 6 (rotate 90 CW to view): store the picture rotated the other way
    rot = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut, 1)))
    exif = rot.getexif()
    exif[0x0112] = 6
    pexif = tmp_path / "exif.jpg"
    rot.save(pexif, exif=exif.tobytes())
    huge = tmp_path / "huge.jpg"
    cv2.imwrite(str(huge), cv2.resize(astronaut, (8000, 8000), interpolation=cv2.INTER_LINEAR)[:, :, ::-1])
    for p in (gray, rgba, p16, pexif, huge):
        img = load_image(p)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        rig = build_rig(p, 256, tracker=tracker)
        # the face is upright: eyes above the mouth
        assert rig.landmarks[159, 1] < rig.landmarks[13, 1], p.name


def test_symlink_loops_and_dangling_links_say_so(tmp_path, hopper_path):
    from facecast.audio.io import load_audio, load_audio_info
    from facecast.motion.controls import ControlTrack
    loops = {}
    for name in ("face.jpg", "speech.wav", "controls.json"):
        a, b = tmp_path / name, tmp_path / f"other_{name}"
        a.symlink_to(b)
        b.symlink_to(a)
        loops[name] = a
    out = tmp_path / "out.mp4"
    r = run_cli("animate", loops["face.jpg"], "--preset", "nod", "-o", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert error_lines(r.stderr) == [f"facecast: error: image path is a symlink loop: {loops['face.jpg']}; "
                                     "point it at a real file"]
    r = run_cli("render", hopper_path, loops["speech.wav"], "-o", out)
    assert r.returncode == 2 and len(error_lines(r.stderr)) == 1
    assert f"audio file path is a symlink loop: {loops['speech.wav']}" in r.stderr
    assert not out.exists()
    for fn, path in ((load_image, loops["face.jpg"]), (load_audio, loops["speech.wav"]),
                     (load_audio_info, loops["speech.wav"]), (ControlTrack.load, loops["controls.json"])):
        with pytest.raises(FacecastError, match="symlink loop") as e:
            fn(path)
        assert "not found" not in str(e.value)
    dangling = tmp_path / "gone.png"
    dangling.symlink_to(tmp_path / "deleted.png")
    with pytest.raises(FacecastError, match=r"image not found: .*gone.png is a link to .*deleted.png, which does not exist"):
        load_image(dangling)


def png_declaring(w: int, h: int) -> bytes:
    """A 60-byte PNG whose header declares w x h pixels (1-bit gray)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path):
    """A 60-byte PNG declaring 19000x19000 pixels: one line, exit 2, at once, without allocating
    its 1 GB of pixels (it drove the CLI to 4.9 GB before the declared size was checked)."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(19000, 19000))
    # the CLI in a fresh process that reports its own peak memory (VmHWM, KB) as it exits
    # (not getrusage: Linux carries ru_maxrss over from the parent through fork and exec)
    probe = ("import atexit, re, sys; from facecast.cli import main; atexit.register(lambda: print(re.search("
             "r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))); sys.exit(main())")
    r = subprocess.run([sys.executable, "-c", probe, "analyze", str(bomb), "-o", str(tmp_path / "o.png")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and error_lines(r.stderr) == [
        f"facecast: error: {bomb} is too large (over 120 megapixels); downscale it first"], r.stderr
    assert int(r.stdout.split()[-1]) < 600_000  # far below the 1 GB of pixels it declares
    # 132 MP: below PIL's own limit (179 MP), above ours
    bomb.write_bytes(png_declaring(12000, 11000))
    with pytest.raises(FacecastError, match=r"too large \(over 120 megapixels\)"):
        load_image(bomb)
