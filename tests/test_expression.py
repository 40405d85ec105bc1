"""Absolute expression weights (issue 9): the rig reads the photo's own expression, and any target
renders from it, so smiling and open-mouthed photos close their lips. Measured on re-tracked
renders of real photos that show teeth or an open mouth (`photos`: the astronaut from
scikit-image, two White House photographs from a PyPI source archive)."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from facecast.face import topology as topo
from facecast.face.expression import FIT_NAMES, corner_lift
from facecast.face.rig import build_rig
from facecast.motion.types import BLENDSHAPE_INDEX, MotionFrame, MotionSequence
from facecast.rendering.renderer import Renderer

from registry_files import registry_file_or_skip

#: the issue's bounds, in inter-ocular (eye-corner) distances
CLOSED_GAP = 0.03
NEUTRAL_LIFT_TOLERANCE = 0.02
# /m/ as the generator makes it: jaw nearly shut, lips sealed and pressed
BILABIAL = {"jawOpen": 0.08, "mouthClose": 0.08, "mouthPressLeft": 0.35, "mouthPressRight": 0.35}


def _photo(name):
    return str(registry_file_or_skip(name))


@pytest.fixture(scope="module")
def teeth_rigs(astronaut_rig, tracker):
    """Rigs (512 px) of the photos with parted lips: two broad smiles with teeth, one open mouth."""
    return {"astronaut": astronaut_rig,
            "obama": build_rig(_photo("obama.jpg"), 512, tracker=tracker),
            "obama2": build_rig(_photo("obama2.jpg"), 512, tracker=tracker)}


@pytest.fixture(scope="module")
def renderers(teeth_rigs):
    return {k: Renderer(r) for k, r in teeth_rigs.items()}


def retracked(tracker, frame):
    faces = tracker.landmarks(frame)
    assert faces, "no face found in the rendered frame"
    c = np.array(frame.shape[1::-1]) / 2
    return min(faces, key=lambda f: np.linalg.norm(f.landmarks[:, :2].mean(0) - c)).landmarks


def opening_pixels_shown(renderer, rig, motion):
    """Frame pixels whose source is inside the photo's mouth opening (its inner-lip outline, less
    a pixel of its rim): what of the teeth and the dark mouth the frame still shows."""
    _geo, smap, _band = renderer.warp(motion)
    opening = cv2.erode((rig.masks["mouth"] > 128).astype(np.uint8), np.ones((3, 3), np.uint8))
    xy = np.round(smap).astype(int).clip(0, rig.size - 1)
    return int(opening[xy[..., 1], xy[..., 0]].sum()), int(opening.sum())


def test_the_photo_expression_is_read(hopper_rig, teeth_rigs):
    e = hopper_rig.expression
    assert set(e.as_dict()) == set(FIT_NAMES)
    assert max(e.as_dict().values()) <= 0.1, e.as_dict()           # a neutral face reads as neutral
    for k in ("astronaut", "obama"):
        w = teeth_rigs[k].expression.as_dict()
        assert min(w["mouthSmileLeft"], w["mouthSmileRight"]) >= 0.4, (k, w)
    assert teeth_rigs["obama2"].expression.as_dict()["jawOpen"] >= 0.3
    for rig in (hopper_rig, *teeth_rigs.values()):
        # the face at rest has lips that meet, whatever the photo shows
        assert topo.lip_gap(rig.expression.rest_landmarks) < 0.005
        assert topo.lip_gap(rig.landmarks) > 0.1 or rig is hopper_rig


def test_analyze_json_reports_the_expression(tmp_path):
    r = subprocess.run([sys.executable, "-m", "facecast", "analyze", _photo("obama.jpg"), "-o",
                        str(tmp_path / "o.png"), "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    expr = json.loads(r.stdout)["expression"]
    for name in ("jawOpen", "mouthClose", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
                 "mouthFrownRight", "mouthFunnel", "mouthPucker", "mouthStretchLeft", "mouthStretchRight",
                 "mouthRollUpper", "mouthRollLower", "mouthPressLeft", "mouthPressRight", "eyeBlinkLeft",
                 "eyeBlinkRight", "eyeWideLeft", "eyeWideRight", "browInnerUp", "browDownLeft",
                 "browDownRight", "browOuterUpLeft", "browOuterUpRight"):
        assert 0.0 <= expr[name] <= 1.0
    assert expr["mouthSmileLeft"] > 0.4


@pytest.mark.parametrize("name", ["astronaut", "obama", "obama2"])
@pytest.mark.parametrize("target", [{}, BILABIAL], ids=["rest", "bilabial"])
def test_a_closed_target_closes_the_lips(renderers, teeth_rigs, tracker, name, target):
    """Rest and /m/ on a photo with parted lips: the re-tracked lips meet, no teeth are left."""
    rig, r = teeth_rigs[name], renderers[name]
    frame = r.render(MotionFrame(blendshapes=target))
    gap = topo.lip_gap(retracked(tracker, frame))
    assert gap <= CLOSED_GAP, f"{name}: inner-lip gap {gap:.3f} IOD"
    assert topo.lip_gap(retracked(tracker, rig.image)) > 2 * CLOSED_GAP   # the photo's lips are apart
    shown, area = opening_pixels_shown(r, rig, MotionFrame(blendshapes=target))
    assert shown <= 0.005 * area, f"{name}: {shown} of the opening's {area} pixels still show"


def lip_sources(renderer, rig, motion):
    """For the upper and the lower lip of the frame (inside its deformed contours, less a pixel):
    the share of pixels drawn from the photo's lips (its lip mask), and the median vertical
    stretch (frame rows per photo row; < 0: the lip is read upside down)."""
    geo, smap, _band = renderer.warp(motion)
    lm = geo.landmarks[:, :2]
    lips = rig.masks["lips"] > 128
    out = []
    for outer, inner in ((topo.LIPS_OUTER_UPPER, topo.LIPS_INNER_UPPER), (topo.LIPS_OUTER_LOWER, topo.LIPS_INNER_LOWER)):
        mask = np.zeros(smap.shape[:2], np.uint8)
        poly = np.concatenate([lm[outer], lm[inner][::-1]])
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        inside = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
        xy = np.round(smap[inside]).astype(int).clip(0, rig.size - 1)
        rows = np.gradient(smap[..., 1], axis=0)[inside]
        out.append((float(lips[xy[:, 1], xy[:, 0]].mean()), float(1.0 / np.median(rows))))
    return out


@pytest.mark.parametrize("name", ["astronaut", "obama", "obama2"])
@pytest.mark.parametrize("target", [{}, BILABIAL], ids=["rest", "bilabial"])
def test_closed_lips_are_drawn_from_the_photos_lips(renderers, teeth_rigs, name, target):
    """Lips closed over an opening are the photo's own lips, the right way up and not stretched
    much: the wet inner side left out of them is at most half of each lip's thickness. Reading it
    10 px deep drew a thin upper lip from the skin above it, upside down (obama: 81% lip pixels,
    stretch -33; the astronaut 87%, 2.8) and stretched obama2's lips 3.0-3.7x (now 2.1-2.8x)."""
    for lip, (share, stretch) in zip(("upper", "lower"), lip_sources(renderers[name], teeth_rigs[name],
                                                                      MotionFrame(blendshapes=target))):
        assert share >= 0.95, f"{name} {lip} lip: {share:.2f} of its pixels from the photo's lips"
        assert 0.0 < stretch < 3.0, f"{name} {lip} lip: stretched {stretch:.2f}x"


@pytest.mark.parametrize("name", ["astronaut", "obama", "obama2"])
def test_the_teeth_split_is_one_smooth_curve(teeth_rigs, name):
    """The photo's own mouth is split between the rows of teeth along one curve: the upper (skull)
    layer's lower edge steps at most 2 px from column to column. It stepped 7-8 px where a column
    found another dark row (a gap between teeth), drawing a jagged black edge under the upper
    teeth as the jaw closed (its smoothing ran across a 1-px-high image, not along it)."""
    from facecast.rendering.mouth import build_mouth
    mouth = build_mouth(teeth_rigs[name])
    assert mouth.own_teeth
    alpha = mouth.upper.alpha
    cols = np.flatnonzero(alpha.max(0) > 0.99)
    edge = np.array([np.flatnonzero(alpha[:, x] > 0.5).max() for x in cols])
    assert len(cols) > 50 and np.abs(np.diff(edge)).max() <= 2, np.abs(np.diff(edge)).max()


def test_the_photo_expression_still_reproduces_the_photo(renderers, teeth_rigs):
    for k, r in renderers.items():
        rig = teeth_rigs[k]
        assert np.array_equal(r.render(MotionFrame(blendshapes=rig.expression.weights)), rig.image)
        # and an old relative motion (0 = the photo) plays as the photo
        old = MotionSequence.from_json_dict({"format": "facecast.motion", "version": 1, "fps": 25,
                                             "frames": [{"blendshapes": [0.0] * 52}]})
        assert old.expression == "relative"
        assert np.array_equal(r.render(old[0]), rig.image)
        assert np.array_equal(old.to_absolute(rig.expression.weights).blendshapes[0], rig.expression.weights)


@pytest.mark.parametrize("name", ["astronaut", "obama"])
def test_a_neutral_target_takes_the_smile_away(renderers, teeth_rigs, hopper_rig, tracker, name):
    """The mouth corners of a broad smile come down to those of a neutral face (Grace Hopper's),
    re-tracked, within 0.02 IOD."""
    rig = teeth_rigs[name]
    neutral = corner_lift(retracked(tracker, hopper_rig.image))
    smiling = corner_lift(retracked(tracker, rig.image))
    rest = corner_lift(retracked(tracker, renderers[name].render(MotionFrame())))
    assert smiling > neutral + 0.04, (smiling, neutral)
    assert abs(rest - neutral) <= NEUTRAL_LIFT_TOLERANCE, (name, rest, neutral, smiling)
    # and a sad target goes further down than neutral
    sad = renderers[name].render(MotionFrame(blendshapes={"mouthFrownLeft": 0.65, "mouthFrownRight": 0.65}))
    assert corner_lift(retracked(tracker, sad)) < rest


def test_expression_scale_zero_and_silence_give_a_neutral_face(tts_speech):
    from facecast.motion.controls import Controls
    from facecast.motion.generator import generate_motion
    x, _ = tts_speech
    audio = np.concatenate([np.zeros(16000, np.float32), x])
    shown = [n for n in BLENDSHAPE_INDEX if not n.startswith(("eyeLook", "eyeBlink"))]
    ids = [BLENDSHAPE_INDEX[n] for n in shown]
    flat = generate_motion(audio, 16000, controls=Controls(expression_scale=0.0, emotion="happy:0.8"))
    assert np.abs(flat.blendshapes[:, ids]).max() == 0.0
    talk = generate_motion(audio, 16000)
    assert np.abs(talk.blendshapes[5:20, ids]).max() < 0.02      # the first second is silent: at rest
    assert talk.blendshapes[:, BLENDSHAPE_INDEX["mouthPressLeft"]].max() > 0.3   # bilabials press


@pytest.mark.parametrize("name", ["astronaut", "obama.jpg"])
def test_eval_lipsync_on_teeth_photos(tmp_path, name):
    """`facecast eval lipsync --image PHOTO` on photos that show their teeth: lips close for p/b/m
    and in pauses (9 eSpeak clips, 256 px)."""
    if name == "astronaut":
        import skimage.data
        path = tmp_path / "astronaut.png"
        cv2.imwrite(str(path), skimage.data.astronaut()[:, :, ::-1])
    else:
        path = _photo(name)
    r = subprocess.run([sys.executable, "-m", "facecast", "eval", "lipsync", "--image", str(path), "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    overall = report["overall"]
    # the metric's closed level is the clip's own (5th percentile of the gap): check that it is
    # really closed, not the photo's parted lips
    assert max(c["closed_ref"] for c in report["clips"]) <= CLOSED_GAP
    assert overall["bilabial_closure_rate"] >= 0.95, overall["bilabial_closure_rate"]
    assert overall["silence_closed_rate"] >= 0.95, overall["silence_closed_rate"]
