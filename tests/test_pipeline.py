"""`Animator`, the one place the pipeline is assembled: streaming equals rendering, a motion plays
back with its audio trimmed to it, and a full-frame paste lands exactly on the photo."""
import av
import cv2
import numpy as np
import pytest

import facecast
from facecast.audio.io import save_wav
from facecast.evaluation.retrack import psnr

CHUNK = 320  # 20 ms at 16 kHz, the live mode's chunk


@pytest.fixture(scope="module")
def animator(hopper_path, tracker):
    return facecast.Animator(hopper_path, rig=facecast.build_rig(hopper_path, 256, tracker=tracker))


@pytest.fixture(scope="module")
def speech(tts_speech):
    return tts_speech[0][:int(1.6 * 16000)]


def test_stream_in_20ms_chunks_equals_the_rendered_file(tmp_path, animator, speech):
    controls = facecast.Controls(emotion="happy:0.4", seed=5)
    stream = animator.stream(controls)
    pairs = []
    for i in range(0, len(speech), CHUNK):
        pairs += stream.push(speech[i:i + CHUNK])
    pairs += stream.flush()
    # each stream and render gets its own watermark id: give the render the stream's, to compare
    res = animator.render(speech, tmp_path / "frames", controls=controls, save_motion=tmp_path / "m.json",
                          mark=stream.mark)
    assert len(pairs) == res.frames == 40
    files = sorted((tmp_path / "frames").glob("frame_*.png"))
    for (m, rgb), f, saved in zip(pairs, files, res.motion):
        assert np.array_equal(cv2.imread(str(f))[:, :, ::-1], rgb)
        assert np.allclose(m.blendshapes, saved.blendshapes) and np.allclose(m.rotation, saved.rotation)
    assert max(float(m.weight("jawOpen")) for m, _ in pairs) > 0.2  # it talks


def test_stream_controls_glide_keeps_the_seed(animator, speech):
    stream = animator.stream(facecast.Controls(seed=9))
    first = stream.push_motion(speech[:8000])
    stream.set_controls(facecast.Controls(emotion="happy:1", seed=1), glide_s=0.2)
    rest = stream.push_motion(speech[8000:])
    rest = [*rest, *stream.flush_motion()]
    smile = [m.weight("mouthSmileLeft") for m in rest]
    assert stream.generator.track.seed == 9
    assert smile[0] < 0.3 and smile[-1] > 0.6 and all(b >= a - 1e-6 for a, b in zip(smile[:5], smile[1:6]))
    assert len(first) + len(rest) == 40


def test_animate_trims_longer_audio_to_the_motion(tmp_path, animator, speech):
    from facecast.motion.presets import preset_motion
    wav = tmp_path / "long.wav"
    save_wav(wav, np.tile(speech, 4), 16000)  # 6.4 s of audio for 1 s of motion
    res = animator.animate(preset_motion("nod", 1.0, 25), tmp_path / "nod.mp4", audio=wav)
    with av.open(str(res.output)) as c:
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
    with av.open(str(res.output)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == 25 and res.frames == 25
    assert samples / a.rate == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("size", [256, 1024])
@pytest.mark.parametrize("which", ["hopper", "astronaut"])
def test_full_frame_paste_lands_on_the_photo(which, size, hopper_path, astronaut, tracker):
    """The zero-motion crop pasted back sits on the photo to a tenth of a pixel (phase
    correlation over the pasted area). Before this was checked it was off by up to 1.7 px."""
    rig = facecast.build_rig(hopper_path if which == "hopper" else astronaut, size, tracker=tracker)
    paster = facecast.Animator(rig.photo, rig=rig, full_frame=True).paster
    full = paster.paste(rig.image)
    assert full.shape[:2] == paster.shape
    inside = cv2.warpAffine(np.ones((size, size), np.float32), paster.matrix, paster.shape[::-1]) > 0.999
    ys, xs = np.nonzero(inside)
    box = (slice(ys.min() + 8, ys.max() - 8), slice(xs.min() + 8, xs.max() - 8))
    pasted = cv2.warpAffine(rig.image, paster.matrix, paster.shape[::-1], flags=cv2.INTER_LINEAR)
    a, b = (cv2.cvtColor(np.float32(im[box]), cv2.COLOR_RGB2GRAY) for im in (pasted, paster.photo))
    (dx, dy), _ = cv2.phaseCorrelate(b, a, cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F))
    assert abs(dx) < 0.1 and abs(dy) < 0.1, (dx, dy)
    assert psnr(full[box], paster.photo[box]) >= 30.0
