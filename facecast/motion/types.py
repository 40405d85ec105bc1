"""Motion: the per-frame latent every stage of facecast speaks.

A `MotionFrame` is one video frame's head pose, facial expression and gaze; a `MotionSequence`
is a clip of them at a fixed frame rate, stored as arrays. Sequences serialise to JSON
(`facecast.motion`, version 2) and to CSV with Live Link Face-style columns, and load back
losslessly (every value is float32; float32 -> decimal -> float32 is exact).

Conventions (the renderer and the re-tracking metrics both follow them):

- rotation  (pitch, yaw, roll) in degrees, relative to the head pose in the photo.
  pitch > 0 tilts the face up, yaw > 0 turns the face towards the viewer's right,
  roll > 0 tilts the head clockwise as seen in the image.
- translation (x, y) in units of the output crop width; x > 0 right, y > 0 down.
- scale: head size relative to the photo (head distance); 1.0 = as photographed, > 1 closer.
- blendshapes: ARKit names, weights in [0, 1]; Left/Right are the subject's own sides. Weights
  are absolute, as ARKit's are: 0 is a neutral, relaxed face with closed lips, whatever the photo
  shows (the renderer knows the photo's own expression). `expression = "relative"` marks weights
  of the old convention (facecast motion files of version 1): 0 = the photo's own expression; the
  renderer adds the photo's weights to them (`to_absolute`).
- gaze (yaw, pitch) in degrees relative to the head; yaw > 0 looks towards the viewer's
  right, pitch > 0 looks up.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FacecastError
from ..outputs import write_text_atomic

#: The 52 ARKit blendshape names, in ARKit's documented order (also Live Link Face's).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawRight", "jawLeft", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
NUM_BLENDSHAPES = len(BLENDSHAPE_NAMES)
BLENDSHAPE_INDEX: dict[str, int] = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}

JSON_FORMAT = "facecast.motion"
JSON_VERSION = 2
#: How blendshape weights are meant: "absolute" (0 = a neutral face with closed lips; ARKit's
#: convention, and facecast's since motion files of version 2) or "relative" (0 = the photo's own
#: expression: version-1 files).
EXPRESSIONS = ("absolute", "relative")


def _check_expression(expression: str) -> str:
    if expression not in EXPRESSIONS:
        raise FacecastError(f"\"expression\" must be one of {', '.join(EXPRESSIONS)}, got {expression!r}")
    return expression


def to_absolute(weights: np.ndarray, photo_weights: np.ndarray) -> np.ndarray:
    """Relative weights (0 = the photo's expression) -> absolute ones, for a photo whose own
    expression is `photo_weights` (52,): their sum, clipped to [0, 1] (the blendshapes are linear)."""
    return np.clip(np.asarray(weights, np.float32) + np.asarray(photo_weights, np.float32), 0.0, 1.0)


def blendshape_vector(weights: dict[str, float] | None = None) -> np.ndarray:
    """Return a (52,) float32 vector from a {name: weight} dict; unknown names raise."""
    v = np.zeros(NUM_BLENDSHAPES, np.float32)
    for name, w in (weights or {}).items():
        if name not in BLENDSHAPE_INDEX:
            raise FacecastError(f"unknown blendshape name {name!r}; names follow ARKit, e.g. 'jawOpen'")
        v[BLENDSHAPE_INDEX[name]] = w
    return np.clip(v, 0.0, 1.0)


@dataclass
class MotionFrame:
    """One frame of motion. See the module docstring for units and sign conventions.

    rotation: (3,) float32 pitch, yaw, roll in degrees.
    translation: (2,) float32 x, y in crop widths.
    scale: float, 1.0 = as photographed.
    blendshapes: (52,) float32 weights in [0, 1], ordered as `BLENDSHAPE_NAMES`; absolute
        (0 = neutral, lips closed) unless `expression` is "relative".
    gaze: (2,) float32 yaw, pitch in degrees.
    expression: "absolute" or "relative" (see the module docstring).
    """

    rotation: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    scale: float = 1.0
    blendshapes: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BLENDSHAPES, np.float32))
    gaze: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    expression: str = "absolute"

    def __post_init__(self):
        self.rotation = np.asarray(self.rotation, np.float32).reshape(3)
        self.translation = np.asarray(self.translation, np.float32).reshape(2)
        self.scale = float(np.float32(self.scale))
        bs = self.blendshapes
        self.blendshapes = blendshape_vector(bs) if isinstance(bs, dict) else \
            np.asarray(bs, np.float32).reshape(NUM_BLENDSHAPES)
        self.gaze = np.asarray(self.gaze, np.float32).reshape(2)
        _check_expression(self.expression)

    def weight(self, name: str) -> float:
        return float(self.blendshapes[BLENDSHAPE_INDEX[name]])

    @classmethod
    def neutral(cls) -> "MotionFrame":
        return cls()


class MotionSequence:
    """A clip of motion frames at `fps`, stored as arrays of T frames.

    rotation (T, 3), translation (T, 2), scale (T,), blendshapes (T, 52), gaze (T, 2);
    all float32. expression: how the blendshape weights are meant, "absolute" (0 = neutral, lips
    closed) or "relative" (0 = the photo's expression; old version-1 files).
    """

    def __init__(self, fps: float, rotation, translation, scale, blendshapes, gaze, expression: str = "absolute"):
        self.fps = float(fps)
        self.expression = _check_expression(expression)
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise FacecastError(f"motion frame rate must be positive, got {fps}")
        self.rotation = np.asarray(rotation, np.float32).reshape(-1, 3)
        n = len(self.rotation)
        self.translation = np.asarray(translation, np.float32).reshape(n, 2)
        self.scale = np.asarray(scale, np.float32).reshape(n)
        self.blendshapes = np.clip(np.asarray(blendshapes, np.float32).reshape(n, NUM_BLENDSHAPES), 0, 1)
        self.gaze = np.asarray(gaze, np.float32).reshape(n, 2)
        for name in ("rotation", "translation", "scale", "blendshapes", "gaze"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise FacecastError(f"motion has non-finite values in {name}")

    def __len__(self) -> int:
        return len(self.rotation)

    def __getitem__(self, i: int) -> MotionFrame:
        return MotionFrame(self.rotation[i], self.translation[i], self.scale[i],
                           self.blendshapes[i], self.gaze[i], self.expression)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    def to_absolute(self, photo_weights: np.ndarray) -> "MotionSequence":
        """This clip with absolute weights, for a photo whose own expression is `photo_weights`
        (52,) (`FaceRig.expression.weights`); itself when already absolute."""
        if self.expression == "absolute":
            return self
        return MotionSequence(self.fps, self.rotation, self.translation, self.scale,
                              to_absolute(self.blendshapes, photo_weights), self.gaze)

    @classmethod
    def from_frames(cls, frames: list[MotionFrame], fps: float) -> "MotionSequence":
        kinds = {f.expression for f in frames}
        if len(kinds) > 1:
            raise FacecastError("motion frames mix absolute and relative blendshape weights")
        return cls(fps,
                   np.array([f.rotation for f in frames], np.float32).reshape(-1, 3),
                   np.array([f.translation for f in frames], np.float32).reshape(-1, 2),
                   np.array([f.scale for f in frames], np.float32),
                   np.array([f.blendshapes for f in frames], np.float32).reshape(-1, NUM_BLENDSHAPES),
                   np.array([f.gaze for f in frames], np.float32).reshape(-1, 2),
                   kinds.pop() if kinds else "absolute")

    @classmethod
    def neutral(cls, n: int, fps: float = 25.0) -> "MotionSequence":
        return cls(fps, np.zeros((n, 3)), np.zeros((n, 2)), np.ones(n), np.zeros((n, NUM_BLENDSHAPES)),
                   np.zeros((n, 2)))

    def equals(self, other: "MotionSequence") -> bool:
        return (self.fps == other.fps and len(self) == len(other) and self.expression == other.expression and all(
            np.array_equal(getattr(self, k), getattr(other, k))
            for k in ("rotation", "translation", "scale", "blendshapes", "gaze")))

    # ---- JSON -------------------------------------------------------------------------------
    def to_json_dict(self) -> dict:
        frames = []
        for i in range(len(self)):
            frames.append({
                "rotation": [float(v) for v in self.rotation[i]],
                "translation": [float(v) for v in self.translation[i]],
                "scale": float(self.scale[i]),
                "gaze": [float(v) for v in self.gaze[i]],
                "blendshapes": [float(v) for v in self.blendshapes[i]],
            })
        return {"format": JSON_FORMAT, "version": JSON_VERSION, "expression": self.expression, "fps": self.fps,
                "blendshape_names": list(BLENDSHAPE_NAMES), "frames": frames}

    @classmethod
    def from_json_dict(cls, d: dict) -> "MotionSequence":
        if not isinstance(d, dict) or d.get("format") != JSON_FORMAT:
            raise FacecastError(f"not a facecast motion file (expected \"format\": \"{JSON_FORMAT}\")")
        version = d.get("version")
        if version == 1:
            # version 1 meant weights relative to the photo (0 = the photo's own expression)
            expression = "relative"
        elif version == JSON_VERSION:
            expression = d.get("expression", "absolute")
            if expression not in EXPRESSIONS:
                raise FacecastError(f"malformed motion file: \"expression\" must be one of "
                                    f"{', '.join(EXPRESSIONS)}, got {expression!r}")
        else:
            raise FacecastError(f"unsupported motion file version {version!r}; this facecast reads "
                                f"versions 1 (weights relative to the photo) and {JSON_VERSION}")
        names = d.get("blendshape_names", list(BLENDSHAPE_NAMES))
        try:
            order = [BLENDSHAPE_INDEX[n] for n in names]
            frames = d["frames"]
            n = len(frames)
            bs = np.zeros((n, NUM_BLENDSHAPES), np.float32)
            for i, f in enumerate(frames):
                bs[i, order] = f.get("blendshapes", [0.0] * len(order))
            return cls(d["fps"],
                       [f.get("rotation", [0, 0, 0]) for f in frames] or np.zeros((0, 3)),
                       [f.get("translation", [0, 0]) for f in frames] or np.zeros((0, 2)),
                       [f.get("scale", 1.0) for f in frames],
                       bs,
                       [f.get("gaze", [0, 0]) for f in frames] or np.zeros((0, 2)),
                       expression)
        except (KeyError, TypeError, ValueError) as e:
            raise FacecastError(f"malformed motion file: {e}") from None

    # ---- CSV (Live Link Face-style columns) ---------------------------------------------------
    def csv_header(self) -> list[str]:
        return (["Timecode", "BlendShapeCount"] + [n[0].upper() + n[1:] for n in BLENDSHAPE_NAMES]
                + ["HeadYaw", "HeadPitch", "HeadRoll",
                   "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                   "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
                   "HeadX", "HeadY", "HeadScale", "Time"])

    def to_csv_text(self) -> str:
        if self.expression != "absolute":
            raise FacecastError("CSV holds ARKit's absolute blendshape weights; this motion's weights are relative "
                                "to a photo: convert it with to_absolute(photo weights) first, or save it as .json")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.csv_header())
        fps_i = max(1, int(round(self.fps)))
        for i in range(len(self)):
            t = i / self.fps
            secs = int(t)
            ff = int(round((t - secs) * self.fps)) % fps_i
            tc = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}:{ff:02d}.000"
            p, y, r = (repr(float(v)) for v in self.rotation[i])
            gy, gp = (repr(float(v)) for v in self.gaze[i])
            row = ([tc, NUM_BLENDSHAPES] + [repr(float(v)) for v in self.blendshapes[i]]
                   + [y, p, r, gy, gp, "0.0", gy, gp, "0.0",
                      repr(float(self.translation[i, 0])), repr(float(self.translation[i, 1])),
                      repr(float(self.scale[i])), repr(t)])
            w.writerow(row)
        return buf.getvalue()

    @classmethod
    def from_csv_text(cls, text: str, fps: float | None = None) -> "MotionSequence":
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            raise FacecastError("motion CSV has no frames")
        try:
            n = len(rows)
            bs = np.array([[float(r.get(nm[0].upper() + nm[1:], 0) or 0) for nm in BLENDSHAPE_NAMES]
                           for r in rows], np.float32)
            rot = np.array([[float(r.get("HeadPitch", 0) or 0), float(r.get("HeadYaw", 0) or 0),
                             float(r.get("HeadRoll", 0) or 0)] for r in rows], np.float32)
            gaze = np.array([[float(r.get("LeftEyeYaw", 0) or 0), float(r.get("LeftEyePitch", 0) or 0)]
                             for r in rows], np.float32)
            tr = np.array([[float(r.get("HeadX", 0) or 0), float(r.get("HeadY", 0) or 0)] for r in rows],
                          np.float32)
            sc = np.array([float(r.get("HeadScale", 1) or 1) for r in rows], np.float32)
            if fps is None:
                if "Time" in rows[0] and n > 1:
                    fps = 1.0 / (float(rows[1]["Time"]) - float(rows[0]["Time"]))
                    fps = round(fps, 6)
                else:
                    fps = 60.0  # Live Link Face's recording rate
        except (ValueError, ZeroDivisionError) as e:
            raise FacecastError(f"malformed motion CSV: {e}") from None
        return cls(fps, rot, tr, sc, bs, gaze)

    # ---- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write JSON or CSV (by extension), atomically (temp file + rename)."""
        path = Path(path)
        ext = path.suffix.lower()
        if ext == ".json":
            text = json.dumps(self.to_json_dict(), separators=(",", ":"))
        elif ext == ".csv":
            text = self.to_csv_text()
        else:
            raise FacecastError(f"motion files are .json or .csv, not {ext or 'no extension'!r}")
        write_text_atomic(path, text)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MotionSequence":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FacecastError(f"motion file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise FacecastError(f"cannot read motion file {path}: {e}") from None
        if path.suffix.lower() == ".csv":
            return cls.from_csv_text(text)
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise FacecastError(f"motion file {path} is not valid JSON: {e}") from None
        return cls.from_json_dict(d)
