"""One `Controls` model for the command line, the controls file, the HTTP API and the WebSocket:
validation with one-line errors, and one JSON round trip."""
import json

import pytest

from facecast.errors import FacecastError
from facecast.motion.controls import Controls, ControlTrack


def test_json_round_trip_keeps_every_value():
    c = Controls(emotion="happy:0.5+surprised:0.25", gaze=(-15, 4.5), head_distance=1.2, head_offset=(0.1, -0.05),
                 motion_scale=1.5, expression_scale=0.8, blink_rate=9, seed=42)
    back = Controls.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c
    assert back.emotion == pytest.approx((0.5, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0)) and back.gaze == (-15.0, 4.5) and back.seed == 42


def test_from_dict_merges_into_a_base_and_keeps_what_it_leaves_out():
    base = Controls(emotion="sad:0.4", seed=7, blink_rate=5)
    c = Controls.from_dict({"gaze": [10, 0]}, base)
    assert c.gaze == (10.0, 0.0) and c.seed == 7 and c.blink_rate == 5 and c.emotion == base.emotion
    assert Controls.from_dict(None, base) is base


@pytest.mark.parametrize("d, words", [
    ({"mood": "happy"}, "unknown control(s) mood"),
    ({"gaze": [50, 0]}, "gaze (each number) must be between -35 and 35, got 50,0"),
    ({"gaze": [1]}, "gaze must be a pair of numbers"),
    ({"head_distance": True}, "head-distance must be a number"),
    ({"motion_scale": "fast"}, "motion-scale must be a number"),
    ({"blink_rate": float("nan")}, "blink-rate must be between 0 and 60"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"seed": -1}, "seed must be between 0 and 4294967295"),
    ({"emotion": "joyful"}, "unknown emotion 'joyful'"),
    ({"emotion": [0.5, 0, 0]}, "emotion must be like"),
    ({"emotion": {"happy": 2}}, "emotion intensity must be in 0..1"),
    ({"emotion": {"happy": "x"}}, "emotion intensity must be a number in 0..1, got 'x'"),
    ({"emotion": {"happy": None}}, "emotion intensity must be a number in 0..1, got None"),
    ({"emotion": {"happy": [1]}}, "emotion intensity must be a number in 0..1, got [1]"),
    ({"emotion": [1]}, "emotion must be like"),
])
def test_bad_values_raise_one_line_naming_the_control(d, words):
    with pytest.raises(FacecastError) as e:
        Controls.from_dict(d)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_controls_are_immutable_and_reseeded_by_copy():
    c = Controls(seed=3)
    with pytest.raises(Exception):
        c.seed = 4
    assert c.with_seed(9).seed == 9 and c.seed == 3


def test_track_round_trip_and_keyframes():
    track = ControlTrack.from_dict({"seed": 7, "motion_scale": 1.2, "keyframes": [
        {"t": 0.0, "emotion": "neutral"}, {"t": 2.0, "emotion": "happy:0.8", "gaze": [10, 0]}]})
    again = ControlTrack.from_dict(json.loads(json.dumps(track.to_dict())))
    assert again.base == track.base and again.keyframes == track.keyframes
    mid = track.at(1.0)
    assert mid.emotion[0] == pytest.approx(0.4) and mid.gaze == pytest.approx((5.0, 0.0)) and mid.seed == 7
    assert track.at(5.0).motion_scale == pytest.approx(1.2)
    with pytest.raises(FacecastError, match="keyframe time must be a number"):
        ControlTrack.from_dict({"keyframes": [{"t": "soon"}]})


def test_json_schema_names_every_control():
    schema = Controls.model_json_schema()
    assert set(schema["properties"]) == {"emotion", "gaze", "head_distance", "head_offset", "motion_scale",
                                         "expression_scale", "blink_rate", "seed"}
