"""MotionFrame / MotionSequence: JSON and CSV round trips are lossless, bad files are clear errors."""
import json

import numpy as np
import pytest

from facecast.errors import FacecastError
from facecast.motion.presets import PRESETS, preset_motion
from facecast.motion.types import BLENDSHAPE_NAMES, MotionFrame, MotionSequence


def random_sequence(n=37, fps=30.0, seed=0):
    rng = np.random.default_rng(seed)
    return MotionSequence(fps, rng.normal(0, 10, (n, 3)), rng.normal(0, 0.05, (n, 2)),
                          rng.uniform(0.8, 1.2, n), rng.uniform(0, 1, (n, 52)), rng.normal(0, 10, (n, 2)))


@pytest.mark.parametrize("ext", [".json", ".csv"])
def test_round_trip_is_lossless(tmp_path, ext):
    seq = random_sequence()
    p = tmp_path / f"m{ext}"
    seq.save(p)
    back = MotionSequence.load(p)
    assert back.equals(seq)


def test_csv_has_live_link_face_columns(tmp_path):
    p = tmp_path / "m.csv"
    random_sequence(3).save(p)
    header = p.read_text().splitlines()[0].split(",")
    assert header[:3] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft"]
    for col in ("JawOpen", "MouthSmileLeft", "TongueOut", "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw"):
        assert col in header


def test_json_schema_fields(tmp_path):
    p = tmp_path / "m.json"
    random_sequence(2).save(p)
    d = json.loads(p.read_text())
    assert d["format"] == "facecast.motion" and d["version"] == 2 and d["fps"] == 30.0
    assert d["expression"] == "absolute"   # weights: 0 = a neutral face with closed lips
    assert d["blendshape_names"] == list(BLENDSHAPE_NAMES)
    assert set(d["frames"][0]) == {"rotation", "translation", "scale", "gaze", "blendshapes"}


def test_frame_from_dict_and_unknown_name():
    f = MotionFrame(blendshapes={"jawOpen": 0.5, "eyeBlinkLeft": 2.0})
    assert f.weight("jawOpen") == 0.5 and f.weight("eyeBlinkLeft") == 1.0
    seq = random_sequence(5)
    assert MotionSequence.from_frames(list(seq), seq.fps).equals(seq)
    with pytest.raises(FacecastError):
        MotionFrame(blendshapes={"jawOpn": 0.5})


@pytest.mark.parametrize("text", ["{}", "not json", '{"format": "facecast.motion", "version": 9}',
                                  '{"format": "facecast.motion", "version": 1, "fps": 25, "frames": [{"rotation": [1]}]}'])
def test_bad_motion_files(tmp_path, text):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(FacecastError):
        MotionSequence.load(p)


def test_presets_are_deterministic_and_move():
    for name in PRESETS:
        a, b = preset_motion(name, 2.0), preset_motion(name, 2.0)
        assert a.equals(b) and len(a) == 50
        moving = np.ptp(a.rotation, 0).max() + np.ptp(a.blendshapes, 0).max() + np.ptp(a.gaze, 0).max()
        assert moving > 0.1, name
