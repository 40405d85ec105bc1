"""Emotions from their action units: each rendered at intensity 1 on two closed-mouth photos and
measured against a neutral render, in inter-ocular distances (facecast.evaluation.emotions).

Two readings: the renderer's deformed mesh (exact) and the face mesh tracker run on the renders
(what shows in the pixels; the tracker under-reads brows, Grace Hopper's behind her glasses most).
"""
import numpy as np
import pytest

from facecast.errors import FacecastError
from facecast.evaluation.emotions import emotion_weights, measure_emotions
from facecast.motion.controls import EMOTIONS, Controls, parse_emotion
from facecast.motion.expression import ACTION_UNITS, EMOTION_AUS
from facecast.motion.types import BLENDSHAPE_INDEX as BI
from facecast.rendering.renderer import Renderer


@pytest.fixture(scope="module")
def renderers(hopper_rig, astronaut_rig):
    return {"hopper": Renderer(hopper_rig), "astronaut": Renderer(astronaut_rig)}


@pytest.fixture(scope="module")
def mesh(renderers):
    return {k: measure_emotions(r) for k, r in renderers.items()}


@pytest.fixture(scope="module")
def retracked(renderers, tracker):
    return {k: measure_emotions(r, tracker) for k, r in renderers.items()}


# (emotion, feature, bound): feature >= bound when bound > 0, feature <= bound when bound < 0
MESH_TARGETS = [
    ("happy", "corner_up", 0.08), ("happy", "mouth_wider", 0.1), ("happy", "lower_lid_up", 0.015),
    ("happy", "eye_open", -0.02),
    ("sad", "inner_brow_up", 0.03), ("sad", "corner_up", -0.05), ("sad", "upper_lip_up", -0.03),
    ("angry", "brow_up", -0.08), ("angry", "brows_together", 0.1), ("angry", "upper_lip_up", -0.02),
    ("surprised", "brow_up", 0.08), ("surprised", "eye_open", 0.02),
    ("disgusted", "brow_up", -0.05), ("disgusted", "upper_lip_up", 0.1),
    ("fearful", "inner_brow_up", 0.04), ("fearful", "brows_together", 0.04), ("fearful", "eye_open", 0.02),
    ("fearful", "mouth_wider", 0.2),
    ("contempt", "corner_up", 0.02),
]
# the targets, re-tracked (angry's brows: >= 0.012 here; the tracker reads the astronaut's
# 0.16 IOD mesh lowering as 0.017, Grace Hopper's as 0.035)
RETRACKED_TARGETS = [
    ("happy", "corner_up", 0.04), ("happy", "mouth_wider", 0.06),
    ("sad", "inner_brow_up", 0.015), ("sad", "corner_up", -0.03),
    ("angry", "brow_up", -0.012),
    ("surprised", "brow_up", 0.05),
    ("disgusted", "brow_up", -0.015), ("disgusted", "upper_lip_up", 0.02),
    ("fearful", "inner_brow_up", 0.03), ("fearful", "mouth_wider", 0.03),
]


def _check(table, targets):
    bad = []
    for emo, feat, bound in targets:
        v = table[emo][feat]
        if (bound > 0 and v < bound) or (bound < 0 and v > bound):
            bad.append(f"{emo} {feat} {v:+.3f} (want {'>=' if bound > 0 else '<='} {bound:+.3f})")
    return bad


@pytest.mark.parametrize("photo", ["hopper", "astronaut"])
def test_emotion_mesh_moves_as_its_action_units(mesh, photo):
    assert not _check(mesh[photo], MESH_TARGETS), _check(mesh[photo], MESH_TARGETS)


@pytest.mark.parametrize("photo", ["hopper", "astronaut"])
def test_emotion_shows_when_retracked(retracked, photo):
    t = retracked[photo]
    assert all(f is not None for f in t.values())
    assert not _check(t, RETRACKED_TARGETS), _check(t, RETRACKED_TARGETS)


def test_anger_lowers_the_brows_not_raises_them(mesh, retracked):
    """The issue's bug: anger raised the brows. Every reading must now lower them."""
    for table in list(mesh.values()) + list(retracked.values()):
        assert table["angry"]["brow_up"] < 0 and table["angry"]["inner_brow_up"] < 0


def test_every_emotion_is_a_documented_action_unit_combination():
    assert set(EMOTION_AUS) == set(EMOTIONS[1:])
    for aus in EMOTION_AUS.values():
        for au in aus:
            for shape in ACTION_UNITS[au]:
                assert shape in BI or shape + "Left" in BI, shape
    assert set(EMOTION_AUS["happy"]) == {"AU6", "AU12"}
    assert {"AU4", "AU5", "AU7", "AU23", "AU24"} <= set(EMOTION_AUS["angry"])
    w = emotion_weights("contempt")                       # one-sided
    assert w[BI["mouthDimpleLeft"]] > 0 and w[BI["mouthDimpleRight"]] == 0
    assert emotion_weights("angry")[BI["browInnerUp"]] == 0


def test_new_emotions_parse_and_old_inputs_still_work():
    assert parse_emotion("disgusted:0.5")[EMOTIONS.index("disgusted") - 1] == pytest.approx(0.5)
    assert parse_emotion("fear")[EMOTIONS.index("fearful") - 1] == pytest.approx(0.7)
    v = parse_emotion("happy:0.7+contempt:0.2")
    assert v[0] == pytest.approx(0.7) and v[-1] == pytest.approx(0.2) and v.sum() == pytest.approx(0.9)
    old = Controls(emotion=[0.5, 0, 0, 0.25])             # four weights: the older form
    assert old.emotion == pytest.approx((0.5, 0, 0, 0.25, 0, 0, 0))
    c = Controls(emotion={"fearful": 0.4, "sad": 0.1})
    back = Controls.from_dict(c.to_dict())
    assert back == c and set(c.to_dict()["emotion"]) == set(EMOTIONS[1:])
    with pytest.raises(FacecastError, match="unknown emotion"):
        parse_emotion("joyful")


def test_emotions_blend_and_scale():
    a, b = emotion_weights("happy", 0.5), emotion_weights("surprised", 0.5)
    both = np.zeros(52)
    from facecast.motion.expression import add_expression
    add_expression(both, parse_emotion("happy:0.5+surprised:0.5"), 0.0, 1.0)
    assert np.allclose(np.clip(both, 0, 1), np.clip(a + b, 0, 1), atol=1e-6)
    none = np.zeros(52)
    add_expression(none, parse_emotion("angry:1"), 0.0, 0.0)
    assert not none.any()


def test_eval_expression_command(hopper_path, capsys):
    import json
    from facecast.cli import main
    assert main(["eval", "expression", hopper_path, "--size", "256", "--mesh", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reading"] == "mesh" and set(out["emotions"]) == set(EMOTIONS[1:])
    assert out["emotions"]["angry"]["brow_up"] < -0.05 and out["emotions"]["happy"]["corner_up"] > 0.04


def test_brows_eyes_and_smile_follow_the_voice(tts_speech, monkeypatch):
    from facecast.motion import expression
    from facecast.motion.generator import generate_motion
    x, _ = tts_speech
    c = Controls(motion_scale=0, blink_rate=0)
    with_voice = generate_motion(x, 16000, 25.0, c)
    monkeypatch.setattr(expression, "VOICE_EXPRESSION", 0.0)
    without = generate_motion(x, 16000, 25.0, c)
    d = with_voice.blendshapes - without.blendshapes
    brow, wide, smile = (d[:, BI[n]] for n in ("browInnerUp", "eyeWideLeft", "mouthSmileLeft"))
    assert (d >= -1e-6).all()                              # the voice only adds
    assert brow.max() > 0.05 and wide.max() > 0.02 and smile.max() > 0.005
    assert brow.mean() < 0.1 and wide.mean() < 0.05       # a modulation, not a new expression
    silence = generate_motion(np.zeros(2 * 16000, np.float32), 16000, 25.0, c)
    monkeypatch.setattr(expression, "VOICE_EXPRESSION", 1.0)
    silence_v = generate_motion(np.zeros(2 * 16000, np.float32), 16000, 25.0, c)
    assert np.allclose(silence.blendshapes, silence_v.blendshapes)


@pytest.mark.parametrize("emotion", EMOTIONS[1:])
def test_emotions_keep_working_while_the_mouth_speaks(tts_speech, emotion):
    """The emotion's own shapes stay on under speech (the visemes add to them), and the mouth still
    articulates: the jaw moves about as much as with a neutral face."""
    from facecast.motion.generator import generate_motion
    x, _ = tts_speech
    neutral = generate_motion(x, 16000, 25.0, Controls(motion_scale=0, blink_rate=0)).blendshapes
    m = generate_motion(x, 16000, 25.0, Controls(motion_scale=0, blink_rate=0, emotion=f"{emotion}:1")).blendshapes
    w = emotion_weights(emotion)
    key = [i for i in np.argsort(-w)[:3] if w[i] > 0.2 and i != BI["jawOpen"]]
    assert key
    assert (m[:, key] >= np.minimum(w[key], 1.0) - 0.02).mean() > 0.95, emotion
    jaw_n, jaw_e = neutral[:, BI["jawOpen"]], m[:, BI["jawOpen"]]
    assert np.std(jaw_e) > 0.8 * np.std(jaw_n) and np.corrcoef(jaw_e, jaw_n)[0, 1] > 0.95


def test_a_speaking_frame_still_shows_the_emotion(renderers, tracker, tts_speech):
    """On frames where the mouth is open in speech, re-tracked: happy lifts the corners, sad lowers
    them and raises the inner brows, angry lowers the brows, against the same frame spoken neutrally.
    Read as the mean over the four most open frames: the face mesh reads the inner brows of one
    open-mouthed frame with about 0.01 IOD of noise (0.008-0.039 over these frames), as large as
    the effect being checked."""
    from facecast.evaluation.emotions import features
    from facecast.evaluation.retrack import measure
    from facecast.motion.generator import generate_motion
    x, _ = tts_speech
    r = renderers["astronaut"]
    c = dict(motion_scale=0, blink_rate=0)
    base = generate_motion(x, 16000, 25.0, Controls(**c))
    frames = np.argsort(-base.blendshapes[:, BI["jawOpen"]])[:4]
    motions = {e: generate_motion(x, 16000, 25.0, Controls(**c, emotion=f"{e}:1")) for e in ("happy", "sad", "angry")}
    per_frame = []
    for i in frames:
        n = measure(tracker, r.rig, r.render(base[i])).landmarks
        per_frame.append({e: features(n, measure(tracker, r.rig, r.render(m[i])).landmarks) for e, m in motions.items()})
    got = {e: {k: float(np.mean([f[e][k] for f in per_frame])) for k in per_frame[0][e]} for e in motions}
    assert got["happy"]["corner_up"] > 0.04, got["happy"]
    assert got["sad"]["corner_up"] < -0.02 and got["sad"]["inner_brow_up"] > 0.01, got["sad"]
    assert got["angry"]["brow_up"] < -0.01, got["angry"]
