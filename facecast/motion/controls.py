"""Controls of the motion generator: for a whole clip, or as keyframed tracks that change over time.

`Controls` holds one setting of every control; `ControlTrack` holds keyframes and gives the
controls at any time (linear blends between keyframes, held before the first and after the last),
so emotions cross-fade and gaze or head position glide.

Controls file (JSON), e.g. for `facecast render --controls controls.json`:

    {"seed": 7,
     "keyframes": [{"t": 0.0, "emotion": "neutral"},
                   {"t": 2.0, "emotion": "happy:0.8", "gaze": [10, 0]},
                   {"t": 5.0, "emotion": "surprised:0.6", "motion_scale": 1.5}]}

Any key of `Controls` may appear in a keyframe; keys a keyframe leaves out keep the clip-wide
value (given at the top level or on the command line).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace

import numpy as np

from ..errors import FacecastError
from ..inputs import check_input_file

EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")

#: The allowed range (lo, hi) of every numeric control; for the pairs (gaze, head_offset) it
#: holds for each of the two numbers. `Controls` checks its values against this table and the
#: command line's options (--gaze, --head-distance, ...) take their ranges from it.
CONTROL_RANGES: dict[str, tuple[float, float]] = {
    "gaze": (-35.0, 35.0),             # degrees, yaw and pitch
    "head_distance": (0.5, 2.0),       # head size factor
    "head_offset": (-0.3, 0.3),        # crop widths, x and y
    "motion_scale": (0.0, 3.0),
    "expression_scale": (0.0, 2.0),
    "blink_rate": (0.0, 60.0),         # blinks per minute
    "seed": (0, 2 ** 32 - 1),          # numpy's generators take non-negative seeds
}


def format_number(v: float) -> str:
    """A number as a person writes it: 2 not 2.0, 0.04, 4294967295, -0.3."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"


def range_message(name: str, lo: float, hi: float, got) -> str:
    """The one wording of an out-of-range value: 'NAME must be between LO and HI, got GOT'."""
    return f"{name} must be between {format_number(lo)} and {format_number(hi)}, got {got}"


def parse_emotion(spec: str | dict | None) -> np.ndarray:
    """'happy:0.7' or 'happy' (intensity 0.7) or {'happy': 0.5, 'sad': 0.2} -> (4,) weights
    for happy, sad, angry, surprised in [0, 1]."""
    v = np.zeros(4, np.float32)
    if spec is None or spec == "":
        return v
    if isinstance(spec, dict):
        items = spec.items()
    else:
        items = []
        for part in str(spec).split("+"):
            name, _, inten = part.strip().partition(":")
            try:
                items.append((name.strip().lower(), float(inten) if inten else 0.7))
            except ValueError:
                raise FacecastError(f"bad emotion {spec!r}; use e.g. happy:0.7") from None
    for name, inten in items:
        if name not in EMOTIONS:
            raise FacecastError(f"unknown emotion {name!r}; choose from {', '.join(EMOTIONS)}")
        if not 0.0 <= float(inten) <= 1.0:
            raise FacecastError(f"emotion intensity must be in 0..1, got {inten}")
        if name != "neutral":
            v[EMOTIONS.index(name) - 1] = float(inten)
    return v


@dataclass
class Controls:
    """One setting of every control.

    emotion: (4,) weights for happy, sad, angry, surprised (see `parse_emotion`).
    gaze: (yaw, pitch) degrees the eyes rest on (0, 0 = the camera); small saccades are added.
    head_distance: head size factor (1 = as photographed, > 1 closer).
    head_offset: (x, y) head position offset in crop widths.
    motion_scale: head-motion amount (0 = still head, 1 = natural, 2 = lively).
    expression_scale: mouth and expression amount (1 = natural).
    blink_rate: blinks per minute on average.
    seed: random seed of head motion, blinks and saccades (same seed, same motion).
    """

    emotion: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    gaze: tuple[float, float] = (0.0, 0.0)
    head_distance: float = 1.0
    head_offset: tuple[float, float] = (0.0, 0.0)
    motion_scale: float = 1.0
    expression_scale: float = 1.0
    blink_rate: float = 17.0
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.emotion, np.ndarray):
            self.emotion = parse_emotion(self.emotion)
        self.emotion = np.asarray(self.emotion, np.float32).reshape(4)
        for name, (lo, hi) in CONTROL_RANGES.items():
            setattr(self, name, _checked(name, getattr(self, name), lo, hi))
        self.seed = int(self.seed)

    def blend(self, other: "Controls", a: float) -> "Controls":
        """(1 - a) * self + a * other for the continuous controls; seed from self."""
        lerp = lambda x, y: (1 - a) * np.asarray(x, np.float64) + a * np.asarray(y, np.float64)  # noqa: E731
        return Controls(emotion=lerp(self.emotion, other.emotion).astype(np.float32),
                        gaze=tuple(lerp(self.gaze, other.gaze)), head_distance=float(lerp(self.head_distance, other.head_distance)),
                        head_offset=tuple(lerp(self.head_offset, other.head_offset)),
                        motion_scale=float(lerp(self.motion_scale, other.motion_scale)),
                        expression_scale=float(lerp(self.expression_scale, other.expression_scale)),
                        blink_rate=float(lerp(self.blink_rate, other.blink_rate)), seed=self.seed)


_KEYS = {f.name for f in fields(Controls)}


def _checked(name: str, value, lo: float, hi: float):
    """`value` as a float (a pair of floats for gaze and head_offset) within [lo, hi], or
    FacecastError naming the control."""
    pair = name in ("gaze", "head_offset")
    label = name.replace("_", "-")
    try:
        v = tuple(float(x) for x in value) if pair else (float(value),)
    except (TypeError, ValueError):
        v = ()
    if len(v) != (2 if pair else 1):
        raise FacecastError(f"{label} must be {'a pair of numbers like (10, -5)' if pair else 'a number'}, "
                            f"got {value!r}")
    if not all(lo <= x <= hi for x in v):
        raise FacecastError(range_message(f"{label}{' (each number)' if pair else ''}", lo, hi,
                                          ",".join(format_number(x) for x in v)))
    return v if pair else v[0]


class ControlTrack:
    """Keyframed controls: `at(t)` gives the blended `Controls` at time t seconds."""

    def __init__(self, base: Controls | None = None, keyframes: list[tuple[float, Controls]] | None = None):
        self.base = base or Controls()
        self.keyframes = sorted(keyframes or [], key=lambda k: k[0])

    @classmethod
    def constant(cls, controls: Controls | None = None) -> "ControlTrack":
        return cls(controls or Controls())

    @property
    def seed(self) -> int:
        return self.base.seed

    def at(self, t: float) -> Controls:
        ks = self.keyframes
        if not ks:
            return self.base
        if t <= ks[0][0]:
            return ks[0][1]
        for (t0, c0), (t1, c1) in zip(ks, ks[1:]):
            if t <= t1:
                return c0.blend(c1, (t - t0) / max(t1 - t0, 1e-9))
        return ks[-1][1]

    @classmethod
    def from_dict(cls, d: dict, base: Controls | None = None) -> "ControlTrack":
        if not isinstance(d, dict):
            raise FacecastError("a controls file holds a JSON object")
        base = base or Controls()
        top = {k: v for k, v in d.items() if k != "keyframes"}
        unknown = set(top) - _KEYS
        if unknown:
            raise FacecastError(f"unknown control(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}")
        base = replace(base, **_convert(top))
        frames = []
        for k in d.get("keyframes", []):
            if not isinstance(k, dict) or "t" not in k:
                raise FacecastError("each keyframe needs a time \"t\" in seconds")
            vals = {kk: vv for kk, vv in k.items() if kk != "t"}
            unknown = set(vals) - _KEYS
            if unknown:
                raise FacecastError(f"unknown control(s) in keyframe: {', '.join(sorted(unknown))}")
            try:
                t = float(k["t"])
            except (TypeError, ValueError):
                raise FacecastError(f"keyframe time must be a number, got {k['t']!r}") from None
            frames.append((t, replace(base, **_convert(vals))))
        return cls(base, frames)

    @classmethod
    def load(cls, path: str | os.PathLike, base: Controls | None = None) -> "ControlTrack":
        p = check_input_file(path, "controls file")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FacecastError(f"cannot read controls file {p}: {e}") from None
        return cls.from_dict(d, base)


def _convert(vals: dict) -> dict:
    out = dict(vals)
    if "emotion" in out:
        out["emotion"] = parse_emotion(out["emotion"])
    try:
        return {k: (tuple(v) if isinstance(v, list) else v) for k, v in out.items()}
    except TypeError as e:
        raise FacecastError(f"bad control value: {e}") from None
