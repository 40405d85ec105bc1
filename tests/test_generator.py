"""Audio -> motion: streaming equals whole-clip, controls act on the rendered and re-tracked video."""
import numpy as np
import pytest

from facecast.errors import FacecastError
from facecast.evaluation.retrack import measure
from facecast.motion.controls import Controls, ControlTrack, parse_emotion
from facecast.motion.generator import MotionGenerator, concat_motion, generate_motion
from facecast.motion.types import BLENDSHAPE_INDEX as BI


def chunked(x, sizes, controls=None):
    g = MotionGenerator(25.0, controls)
    parts, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        parts.append(g.push(x[i:i + n]))
        i += n
        k += 1
    parts.append(g.flush())
    return concat_motion(parts, 25.0)


def test_streaming_in_chunks_equals_whole_clip(tts_speech):
    x, _ = tts_speech
    whole = generate_motion(x, 16000, 25.0)
    assert len(whole) == round(len(x) / 16000 * 25)
    assert chunked(x, [320]).equals(whole)                       # 20 ms chunks
    rng = np.random.default_rng(1)
    assert chunked(x, list(rng.integers(1, 5000, 50))).equals(whole)


def test_frames_are_emitted_with_bounded_lookahead(tts_speech):
    x, _ = tts_speech
    g = MotionGenerator(25.0, lookahead_s=0.12)
    got = 0
    for i in range(0, len(x), 320):
        got += len(g.push(x[i:i + 320]))
        heard = (i + 320) / 16000
        # every frame whose time is at least look-ahead + one analysis window old is out
        assert got >= int((heard - 0.12 - 0.05) * 25)
        assert got <= int(heard * 25) + 1


def test_mouth_follows_speech_and_closes_in_silence(tts_speech):
    x, phonemes = tts_speech
    sil = np.zeros(16000, np.float32)
    m = generate_motion(np.concatenate([x, sil]), 16000, 25.0)
    jaw = m.blendshapes[:, BI["jawOpen"]] - m.blendshapes[:, BI["mouthClose"]]
    speech_end = len(x) / 16000
    opens = [jaw[int(p.start_s * 25):int(np.ceil(p.end_s * 25)) + 1].max() for p in phonemes if p.kind == "open_vowel"]
    assert np.mean(np.array(opens) > 0.2) >= 0.9
    tail = jaw[int((speech_end + 0.4) * 25):]
    assert tail.max() < 0.03
    silent = generate_motion(np.zeros(3 * 16000, np.float32), 16000, 25.0)
    assert silent.blendshapes[:, BI["jawOpen"]].max() < 0.02
    assert np.ptp(silent.rotation, 0).max() > 0.2        # idle motion: alive, not frozen


def test_seed_and_motion_scale(tts_speech):
    x, _ = tts_speech
    a = generate_motion(x, 16000, 25.0, Controls(seed=1))
    b = generate_motion(x, 16000, 25.0, Controls(seed=1))
    c = generate_motion(x, 16000, 25.0, Controls(seed=2))
    assert a.equals(b)
    assert np.abs(a.rotation - c.rotation).mean() > 0.3
    still = generate_motion(x, 16000, 25.0, Controls(motion_scale=0))
    assert np.abs(still.rotation).max() < 1e-6
    dp = np.abs(np.diff(a.rotation, axis=0)).sum(1).mean()
    assert 0.1 <= dp <= 0.6, dp


def test_blink_rate_follows_the_control():
    def blinks_per_min(rate):
        m = generate_motion(np.zeros(60 * 16000, np.float32), 16000, 25.0, Controls(blink_rate=rate, seed=3))
        closed = m.blendshapes[:, BI["eyeBlinkLeft"]] > 0.5
        return int((np.diff(closed.astype(int)) == 1).sum())
    slow, normal = blinks_per_min(8), blinks_per_min(17)
    assert 10 <= normal <= 25 and slow < normal


def test_keyframed_controls_blend():
    track = ControlTrack.from_dict({"keyframes": [{"t": 0, "emotion": "neutral"}, {"t": 2, "emotion": "happy:1"}]})
    assert track.at(1.0).emotion[0] == pytest.approx(0.5)
    m = generate_motion(np.zeros(3 * 16000, np.float32), 16000, 25.0, track)
    smile = m.blendshapes[:, BI["mouthSmileLeft"]]
    assert smile[0] < 0.05 and smile[25] == pytest.approx(0.5 * smile[-1], abs=0.05) and smile[-1] > 0.7


def test_bad_controls():
    with pytest.raises(FacecastError):
        parse_emotion("joyful:0.5")
    with pytest.raises(FacecastError):
        Controls(motion_scale=-1)
    with pytest.raises(FacecastError):
        ControlTrack.from_dict({"keyframes": [{"emotion": "happy"}]})


# ---- controls measured on the rendered, re-tracked video -------------------------------------
@pytest.fixture(scope="module")
def hopper_renderer(hopper_rig):
    from facecast.rendering.renderer import Renderer
    return Renderer(hopper_rig)


def tracked(renderer, rig, tracker, motion, idx):
    return [measure(tracker, rig, renderer.render(motion[i])) for i in idx]


def test_emotion_happy_raises_mouth_corners(hopper_renderer, hopper_rig, tracker):
    silence = np.zeros(2 * 16000, np.float32)
    n = generate_motion(silence, 16000, 25.0, Controls(motion_scale=0, blink_rate=0))
    h = generate_motion(silence, 16000, 25.0, Controls(motion_scale=0, blink_rate=0, emotion="happy:1"))
    mn, = tracked(hopper_renderer, hopper_rig, tracker, n, [40])
    mh, = tracked(hopper_renderer, hopper_rig, tracker, h, [40])

    def corner_lift(lm):  # mouth corners relative to the lip midline, in eye widths
        mid = (lm[13, 1] + lm[14, 1]) / 2
        return (mid - (lm[61, 1] + lm[291, 1]) / 2) / np.linalg.norm(lm[263, :2] - lm[33, :2])
    assert corner_lift(mh.landmarks) > corner_lift(mn.landmarks) + 0.02


def test_gaze_head_distance_and_still_head_on_video(hopper_renderer, hopper_rig, tracker, tts_speech):
    x, _ = tts_speech
    x = x[:2 * 16000]
    base = generate_motion(x, 16000, 25.0, Controls(motion_scale=0, blink_rate=0))
    right = generate_motion(x, 16000, 25.0, Controls(motion_scale=0, blink_rate=0, gaze=(25, 0)))
    near = generate_motion(x, 16000, 25.0, Controls(motion_scale=0, blink_rate=0, head_distance=1.2))
    b = tracked(hopper_renderer, hopper_rig, tracker, base, [10, 30])
    r = tracked(hopper_renderer, hopper_rig, tracker, right, [10, 30])
    n = tracked(hopper_renderer, hopper_rig, tracker, near, [10, 30])
    assert all(ri.iris[0] - bi.iris[0] > 0.03 for ri, bi in zip(r, b))
    assert all(ni.scale / bi.scale == pytest.approx(1.2, abs=0.05) for ni, bi in zip(n, b))
    # motion scale 0: the skull's landmarks stay put (to tracker noise) while the mouth talks;
    # with head motion they move several times as much
    skull = [10, 151, 9, 8, 168, 6, 33, 133, 263, 362, 234, 454]
    lively = generate_motion(x, 16000, 25.0, Controls(motion_scale=1.5, blink_rate=0))
    lv = tracked(hopper_renderer, hopper_rig, tracker, lively, [10, 30])
    still_px = np.abs(b[1].landmarks[skull, :2] - b[0].landmarks[skull, :2]).mean()
    lively_px = np.abs(lv[1].landmarks[skull, :2] - lv[0].landmarks[skull, :2]).mean()
    assert still_px < 1.5 and lively_px > 2 * still_px, (still_px, lively_px)


def test_labiodentals_tuck_the_lower_lip():
    from scipy.signal import resample_poly

    from facecast.audio.speech import synthesize
    a, sr, ph = synthesize("Five fine fellows have very few voices. She sells seashells.", "en")
    x = resample_poly(a, 16000, sr).astype(np.float32)
    m = generate_motion(x, 16000, 25.0)
    roll = m.blendshapes[:, BI["mouthRollLower"]]

    def peak(kind=None, symbol=None):
        vals = [roll[int(p.start_s * 25):int(np.ceil(p.end_s * 25)) + 1].max() for p in ph
                if (kind and p.kind == kind) or (symbol and p.symbol == symbol)]
        return np.array(vals)
    fv, s = peak(kind="labiodental"), peak(symbol="s")
    # acoustics alone separate f/v from s only partly (a neighbouring z also tucks the lip)
    assert np.mean(fv > 0.15) >= 0.6 and fv.mean() > 1.3 * s.mean(), (fv, s)
