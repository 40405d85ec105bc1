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
value (given at the top level or on the command line). The same keys and values make the
`controls` object of the HTTP API and of the live WebSocket messages.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from ..errors import FacecastError
from ..inputs import check_input_file

EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "disgusted", "fearful", "contempt")
NUM_EMOTIONS = len(EMOTIONS) - 1          # weights held per emotion, neutral excluded
#: other names people type for the same emotions
EMOTION_ALIASES = {"joy": "happy", "sadness": "sad", "anger": "angry", "surprise": "surprised",
                   "disgust": "disgusted", "fear": "fearful", "afraid": "fearful"}
#: the emotions before disgusted, fearful and contempt were added: four weights in this order are
#: still read (missing ones are 0)
OLD_EMOTIONS = EMOTIONS[1:5]

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
    """'happy:0.7' or 'happy' (intensity 0.7) or 'happy:0.5+sad:0.2' or {'happy': 0.5, 'sad': 0.2}
    -> (NUM_EMOTIONS,) weights in [0, 1], in the order of EMOTIONS[1:]."""
    v = np.zeros(NUM_EMOTIONS, np.float32)
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
        name = EMOTION_ALIASES.get(name, name)
        if name not in EMOTIONS:
            raise FacecastError(f"unknown emotion {name!r}; choose from {', '.join(EMOTIONS)}")
        if isinstance(inten, bool) or not isinstance(inten, (int, float, np.floating, np.integer)):
            raise FacecastError(f"emotion intensity must be a number in 0..1, got {inten!r}")
        if not 0.0 <= float(inten) <= 1.0:
            raise FacecastError(f"emotion intensity must be in 0..1, got {inten}")
        if name != "neutral":
            v[EMOTIONS.index(name) - 1] = float(inten)
    return v


Pair = tuple[float, float]
EmotionWeights = tuple[float, float, float, float, float, float, float]


class Controls(BaseModel):
    """One setting of every control: one pydantic model for the command line, the controls file,
    the HTTP API and the WebSocket messages, with one JSON round trip (`to_dict` / `from_dict`).

    emotion: weights for happy, sad, angry, surprised, disgusted, fearful, contempt in [0, 1]
        (given as 'happy:0.7', a dict, or seven numbers in that order -- four, for the first four,
        as before those three were added; see `parse_emotion`), held as float32 values.
    gaze: (yaw, pitch) degrees the eyes rest on (0, 0 = the camera); small saccades are added.
    head_distance: head size factor (1 = as photographed, > 1 closer).
    head_offset: (x, y) head position offset in crop widths.
    motion_scale: head-motion amount (0 = still head, 1 = natural, 2 = lively).
    expression_scale: mouth and expression amount (1 = natural).
    blink_rate: blinks per minute on average.
    seed: random seed of head motion, blinks and saccades (same seed, same motion).

    Every bad value or unknown key raises `FacecastError` with one line naming the control.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    emotion: EmotionWeights = (0.0,) * NUM_EMOTIONS
    gaze: Pair = (0.0, 0.0)
    head_distance: float = 1.0
    head_offset: Pair = (0.0, 0.0)
    motion_scale: float = 1.0
    expression_scale: float = 1.0
    blink_rate: float = 17.0
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _check(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            raise FacecastError(f"controls must be a JSON object, got {type(values).__name__}")
        unknown = set(values) - set(cls.model_fields)
        if unknown:
            raise FacecastError(f"unknown control(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(cls.model_fields))}")
        out = dict(values)
        if "emotion" in out:
            e = out["emotion"]
            w = parse_emotion(e) if e is None or isinstance(e, (str, dict)) else _emotion_vector(e)
            out["emotion"] = tuple(float(v) for v in w)
        for name, (lo, hi) in CONTROL_RANGES.items():
            if name in out:
                out[name] = _checked(name, out[name], lo, hi)
        if "seed" in out:
            if float(out["seed"]) != int(out["seed"]):
                raise FacecastError(f"seed must be a whole number, got {format_number(out['seed'])}")
            out["seed"] = int(out["seed"])
        return out

    @classmethod
    def from_dict(cls, d: dict | None, base: "Controls | None" = None) -> "Controls":
        """Controls from a JSON object (any subset of the keys), merged into `base`."""
        if d is None:
            return base or cls()
        if not isinstance(d, dict):
            raise FacecastError(f"controls must be a JSON object, got {type(d).__name__}")
        return cls(**{**(base.to_dict() if base is not None else {}), **d})

    def to_dict(self) -> dict:
        """A JSON-ready dict that `from_dict` reads back to equal controls."""
        return {"emotion": {n: float(w) for n, w in zip(EMOTIONS[1:], self.emotion)},
                "gaze": list(self.gaze), "head_distance": self.head_distance, "head_offset": list(self.head_offset),
                "motion_scale": self.motion_scale, "expression_scale": self.expression_scale,
                "blink_rate": self.blink_rate, "seed": self.seed}

    def with_seed(self, seed: int) -> "Controls":
        return self.model_copy(update={"seed": int(seed)})

    def blend(self, other: "Controls", a: float) -> "Controls":
        """(1 - a) * self + a * other for the continuous controls; seed from self."""
        lerp = lambda x, y: (1 - a) * np.asarray(x, np.float64) + a * np.asarray(y, np.float64)  # noqa: E731
        return Controls.model_construct(
            emotion=tuple(float(v) for v in lerp(self.emotion, other.emotion).astype(np.float32)),
            gaze=tuple(float(v) for v in lerp(self.gaze, other.gaze)),
            head_distance=float(lerp(self.head_distance, other.head_distance)),
            head_offset=tuple(float(v) for v in lerp(self.head_offset, other.head_offset)),
            motion_scale=float(lerp(self.motion_scale, other.motion_scale)),
            expression_scale=float(lerp(self.expression_scale, other.expression_scale)),
            blink_rate=float(lerp(self.blink_rate, other.blink_rate)), seed=self.seed)


def _emotion_vector(v) -> np.ndarray:
    """Seven emotion weights (EMOTIONS[1:] order) in [0, 1] -> (NUM_EMOTIONS,) float32; four
    (happy, sad, angry, surprised: the older form) are read with the others 0."""
    try:
        w = np.asarray(v, np.float32).reshape(-1)
        if w.size == len(OLD_EMOTIONS):
            w = np.concatenate([w, np.zeros(NUM_EMOTIONS - w.size, np.float32)])
        w = w.reshape(NUM_EMOTIONS)
    except (TypeError, ValueError):
        raise FacecastError(f"emotion must be like 'happy:0.7', {{\"happy\": 0.5}} or seven weights, got {v!r}") from None
    if not np.all((w >= 0) & (w <= 1)):
        raise FacecastError(f"emotion weights must be in 0..1, got {[format_number(x) for x in w]}")
    return w


def _checked(name: str, value, lo: float, hi: float):
    """`value` as a float (a pair of floats for gaze and head_offset) within [lo, hi], or
    FacecastError naming the control. Booleans are not numbers here."""
    pair = name in ("gaze", "head_offset")
    label = name.replace("_", "-")
    items = value if pair and isinstance(value, (list, tuple, np.ndarray)) else (value,)
    try:
        v = tuple(float(x) for x in items if not isinstance(x, (bool, np.bool_)))
    except (TypeError, ValueError):
        v = ()
    if len(v) != (2 if pair else 1) or len(v) != len(items):
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
        """A controls file's JSON object: clip-wide controls at the top level, `keyframes` a list
        of objects with a time `t` in seconds and any controls; merged into `base`."""
        if not isinstance(d, dict):
            raise FacecastError("a controls file holds a JSON object")
        keyframes = d.get("keyframes", [])
        if not isinstance(keyframes, list):
            raise FacecastError("keyframes must be a list of objects with a time \"t\"")
        base = Controls.from_dict({k: v for k, v in d.items() if k != "keyframes"}, base)
        frames = []
        for k in keyframes:
            if not isinstance(k, dict) or "t" not in k:
                raise FacecastError("each keyframe needs a time \"t\" in seconds")
            t = k["t"]
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise FacecastError(f"keyframe time must be a number, got {t!r}")
            frames.append((float(t), Controls.from_dict({kk: vv for kk, vv in k.items() if kk != "t"}, base)))
        return cls(base, frames)

    def to_dict(self) -> dict:
        """The controls-file JSON object of this track (`from_dict` reads it back)."""
        d = self.base.to_dict()
        if self.keyframes:
            d["keyframes"] = [{"t": t, **c.to_dict()} for t, c in self.keyframes]
        return d

    @classmethod
    def load(cls, path: str | os.PathLike, base: Controls | None = None) -> "ControlTrack":
        p = check_input_file(path, "controls file")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FacecastError(f"cannot read controls file {p}: {e}") from None
        return cls.from_dict(d, base)
