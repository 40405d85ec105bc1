"""Capture: a video of a face -> facecast motion, one frame at a time, in constant memory.

Per decoded frame (PyAV, the video's own frame rate) the face mesh is tracked (MediaPipe in
video mode; frames wider than `TRACK_MAX_SIDE` are scaled down first) and measured against the
first frame with a face, the *reference*:

- head pose: the similarity (rotation, scale, translation) that maps the reference's rigid,
  expression-free points onto this frame's (`headpose.relative_pose`'s alignment). Rotation in
  degrees relative to the reference (the motion format's "relative to the photo"); scale relative
  to it; translation = the move of the head's pivot (between the ears, as the rig places it) in
  units of the crop the rig would cut around the reference face (`CROP_SCALE` x face size), the
  motion format's "crop widths".
- expression: the frame's mesh is moved back into the reference's pose (the inverse similarity),
  then the rig's own fit (`expression.fit_expression`, with one blendshape basis built from the
  reference) gives absolute weights: 0 = neutral, lips closed, whatever the reference shows. So a
  captured clip reads the same as a photo's expression, and blinks come out as eyeBlink weights.
- gaze: the irises' offset from the eye centres (`retrack.iris_offset`, on the mesh in the
  reference pose) turned into degrees with the renderer's own eyeball model (`EYEBALL_RADIUS`).

Frames where no face is found are filled by linear interpolation between the nearest frames
with one (held at the ends) and reported; a face lost for longer than `max_gap_s` is an error.
Smoothing is zero-phase and short (`SMOOTH_RADIUS` frames each side, so the stream runs that
many frames behind): a Gaussian on pose and gaze (tracker jitter), a 3-frame median on the
mouth, brows and cheeks (removes single-frame spikes, keeps every closure of 2 frames or more),
and none on the eyelids (a blink can be 2-3 frames long).
"""
from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import FacecastError
from ..evaluation.retrack import eye_openness, iris_offset
from ..face import topology as topo
from ..face.blendshapes import BlendshapeBasis, build_deltas
from ..face.expression import fit_expression
from ..face.framing import CROP_SCALE
from ..face.headpose import (
    face_scale,
    head_frame,
    head_pivot,
    matrix_to_euler,
    rigid_align,
)
from ..face.tracking import FaceTracker
from ..footage import iter_frames, video_info
from ..motion.controls import range_message
from ..motion.types import (
    BLENDSHAPE_INDEX,
    BLENDSHAPE_NAMES,
    NUM_BLENDSHAPES,
    MotionFrame,
    MotionSequence,
)
from ..outputs import check_motion_path
from ..rendering.eyes import EYEBALL_RADIUS, MAX_GAZE_DEG

TRACK_MAX_SIDE = 640          # px: larger frames are scaled down before tracking (the mesh sees 256 px)
MAX_GAP_S = 2.0               # a face lost for longer than this is an error, not a gap to fill
MAX_GAP_RANGE = (0.0, 60.0)
SMOOTH_RADIUS = 2             # frames each side of the zero-phase filters (the stream's delay)
POSE_SIGMA = 1.0              # frames: the Gaussian on pose and gaze
#: Blinks: the fit's eyeBlink reads only lids that close past the neutral range of all faces, and
#: the face mesh rarely sees lids fully shut. A video shows this person's open eyes, so each eye's
#: lid gap is also read against its own open level (the reference's, raised when a later frame
#: shows the eye wider, up to `OPEN_RAISE` x): a drop of `BLINK_FROM` of it is 0, of `BLINK_FULL`
#: is a full blink; eyeBlink is the larger of the two readings.
BLINK_FROM, BLINK_FULL, OPEN_RAISE = 0.12, 0.5, 1.25
_BLINK = (BLENDSHAPE_INDEX["eyeBlinkRight"], BLENDSHAPE_INDEX["eyeBlinkLeft"])

# layout of one frame's vector: rotation 3, translation 2, scale 1, blendshapes 52, gaze 2
_ROT, _TR, _SC, _BS, _GZ = slice(0, 3), slice(3, 5), 5, slice(6, 6 + NUM_BLENDSHAPES), slice(58, 60)
_DIM = 60
_EYELIDS = [BLENDSHAPE_INDEX[n] for n in BLENDSHAPE_NAMES if n.startswith(("eyeBlink", "eyeWide", "eyeSquint"))]
_MEDIAN = [i for i in range(NUM_BLENDSHAPES) if i not in _EYELIDS]
_POSE = np.r_[0:6, 58:60]


@dataclass
class CaptureReport:
    """How a capture went: frames read, frames with a face, the gaps filled (start s, length s),
    faces in the reference frame, which face was followed, wall time."""

    frames: int = 0
    found: int = 0
    gaps: list[tuple[float, float]] = field(default_factory=list)
    faces: int = 0
    face: int = 0
    wall_s: float = 0.0

    @property
    def interpolated(self) -> int:
        return self.frames - self.found

    @property
    def fps(self) -> float:
        """Capture speed, frames per second of wall time."""
        return self.frames / max(self.wall_s, 1e-9)

    def notices(self) -> list[str]:
        out = []
        if self.faces > 1:
            out.append(f"found {self.faces} faces in the first frame with a face; following face {self.face} "
                       f"({'the largest' if self.face == 0 else 'by size'}); use --face N to pick another")
        if self.gaps:
            spans = ", ".join(f"{s:.2f} s (+{d:.2f} s)" for s, d in self.gaps[:5])
            more = f" and {len(self.gaps) - 5} more" if len(self.gaps) > 5 else ""
            out.append(f"no face in {self.interpolated} of {self.frames} frames, interpolated: at {spans}{more}")
        return out


class _Reference:
    """The first frame with a face: what every later frame is measured against."""

    def __init__(self, lm: np.ndarray):
        self.lm = lm.astype(np.float64)
        self.rot = head_frame(self.lm)
        self.face_scale = face_scale(self.lm)
        self.basis = BlendshapeBasis(build_deltas(lm.astype(np.float32), self.rot, self.face_scale))
        self.pivot = head_pivot(self.lm, self.rot, self.face_scale)
        size = float(max(np.ptp(self.lm[:, 0]), np.ptp(self.lm[:, 1])))
        self.crop_w = CROP_SCALE * size
        self.rigid = self.lm[topo.RIGID_POINTS]
        self.open0 = np.array(eye_openness(self.lm))
        self.open = self.open0.copy()

    def measure(self, lm: np.ndarray) -> np.ndarray:
        """One frame's vector (see `_DIM`): pose relative to the reference, absolute weights, gaze."""
        lm = lm.astype(np.float64)
        R, s, t = rigid_align(self.rigid, lm[topo.RIGID_POINTS])
        v = np.zeros(_DIM)
        v[_ROT] = matrix_to_euler(R)
        v[_SC] = s
        v[_TR] = ((s * R @ self.pivot + t) - self.pivot)[:2] / self.crop_w
        canon = (lm - t) @ R / s                     # back into the reference's pose
        v[_BS] = fit_expression(canon, self.rot, self.face_scale, self.basis).weights
        eyes = np.array(eye_openness(canon))
        self.open = np.maximum(self.open, np.minimum(eyes, OPEN_RAISE * self.open0))
        drop = 1.0 - eyes / np.maximum(self.open, 1e-6)
        closed = np.clip((drop - BLINK_FROM) / (BLINK_FULL - BLINK_FROM), 0.0, 1.0)
        for k, i in enumerate(_BLINK):
            v[6 + i] = max(v[6 + i], closed[k])
        off = iris_offset(canon) / EYEBALL_RADIUS
        v[_GZ] = np.degrees(np.arcsin(np.clip([off[0], -off[1]], -1.0, 1.0)))
        v[_GZ] = np.clip(v[_GZ], -MAX_GAZE_DEG, MAX_GAZE_DEG)
        return v


class Capture:
    """A capture in progress: iterate for `MotionFrame`s (absolute weights) at `info.fps`.

    Constant memory: frames are decoded, tracked and measured one by one; only a face gap (at
    most `max_gap_s`) and the smoothing window are held. `report` fills in as it runs.
    """

    def __init__(self, video: str | os.PathLike, face: int = 0, max_gap_s: float = MAX_GAP_S,
                 smooth: bool = True, tracker: FaceTracker | None = None):
        if not MAX_GAP_RANGE[0] <= max_gap_s <= MAX_GAP_RANGE[1]:
            raise FacecastError(range_message("--max-gap", *MAX_GAP_RANGE, max_gap_s))
        self.info = video_info(video)
        self.face = int(face)
        self.max_gap = math.floor(max_gap_s * self.info.fps + 1e-9)
        self.smooth = smooth
        self.tracker = tracker
        self.report = CaptureReport(face=self.face)
        self.reference: _Reference | None = None

    def __iter__(self) -> Iterator[MotionFrame]:
        t0 = time.perf_counter()
        own = self.tracker is None
        tracker = self.tracker or FaceTracker(max_faces=max(2, self.face + 1), video=True)
        try:
            vecs = self._filled(self._raw(tracker))
            if self.smooth:
                vecs = _smoothed(vecs)
            for v in vecs:
                self.report.wall_s = time.perf_counter() - t0
                yield MotionFrame(v[_ROT], v[_TR], v[_SC], np.clip(v[_BS], 0, 1), v[_GZ])
        finally:
            if own:
                tracker.close()
            self.report.wall_s = time.perf_counter() - t0

    def _raw(self, tracker: FaceTracker) -> Iterator[np.ndarray | None]:
        prev = None
        for img in iter_frames(self.info.path, max_side=TRACK_MAX_SIDE):
            self.report.frames += 1
            faces = tracker.landmarks(img)
            if not faces:
                yield None
                continue
            if self.reference is None:
                if self.face >= len(faces):
                    raise FacecastError(f"--face {self.face} is out of range: the video's first frame with a face "
                                        f"has {len(faces)} face(s), numbered 0 (largest) to {len(faces) - 1}")
                lm = faces[self.face].landmarks
                self.reference = _Reference(lm)
                self.report.faces = len(faces)
            else:  # the face nearest where ours was
                lm = min(faces, key=lambda f: np.linalg.norm(f.landmarks[:, :2].mean(0) - prev)).landmarks
            prev = lm[:, :2].mean(0)
            self.report.found += 1
            yield self.reference.measure(lm)

    def _filled(self, raw: Iterator[np.ndarray | None]) -> Iterator[np.ndarray]:
        fps, p = self.info.fps, self.info.path
        last = None
        pending = 0
        i = 0
        for v in raw:
            if v is None:
                pending += 1
                if pending > self.max_gap:
                    if last is None:
                        raise FacecastError(f"no face found in the first {pending / fps:.1f} s of {p}; use footage "
                                            "where one face is clearly visible (a frontal, well-lit face)")
                    raise FacecastError(f"the face is lost for more than {self.max_gap / fps:.1f} s from "
                                        f"{(i - pending + 1) / fps:.2f} s in {p}; cut that part or raise --max-gap")
                i += 1
                continue
            if pending:
                self.report.gaps.append(((i - pending) / fps, pending / fps))
                for k in range(1, pending + 1):
                    yield v if last is None else last + (v - last) * (k / (pending + 1))
            yield v
            last, pending = v, 0
            i += 1
        if last is None:
            raise FacecastError(f"no face found in {p}; use footage where one face is clearly visible")
        if pending:
            self.report.gaps.append(((i - pending) / fps, pending / fps))
            for _ in range(pending):
                yield last


def _smoothed(vecs: Iterator[np.ndarray], radius: int = SMOOTH_RADIUS) -> Iterator[np.ndarray]:
    """Zero-phase smoothing with `radius` frames each side (edges held); see the module doc."""
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / POSE_SIGMA) ** 2)
    k /= k.sum()
    win: deque[np.ndarray] = deque(maxlen=2 * radius + 1)

    def out():
        a = np.stack(win)
        v = a[radius].copy()
        v[_POSE] = k @ a[:, _POSE]
        mid = a[radius - 1:radius + 2, 6:6 + NUM_BLENDSHAPES]
        v[6 + np.array(_MEDIAN)] = np.median(mid[:, _MEDIAN], axis=0)
        return v

    for v in vecs:
        if not win:
            win.extend([v] * radius)
        win.append(v)
        if len(win) == win.maxlen:
            yield out()
    if win:
        for _ in range(radius):
            win.append(win[-1])
            if len(win) == win.maxlen:
                yield out()


def capture(video: str | os.PathLike, output: str | os.PathLike | None = None, face: int = 0,
            max_gap_s: float = MAX_GAP_S, smooth: bool = True) -> tuple[MotionSequence, CaptureReport]:
    """Capture a whole video into a `MotionSequence` (absolute weights, the video's frame rate),
    and write it to `output` (.json or .csv) when given. The motion is held in memory (60 floats
    a frame: about 1 MB per minute at 25 fps); `Capture` streams it instead."""
    check_motion_path(output)
    cap = Capture(video, face=face, max_gap_s=max_gap_s, smooth=smooth)
    frames = list(cap)
    motion = MotionSequence.from_frames(frames, cap.info.fps)
    if output is not None:
        motion.save(output)
    return motion, cap.report


def events(motion: MotionSequence, blink_on: float = 0.5, blink_off: float = 0.3,
           open_on: float = 0.15, closed_below: float = 0.05) -> dict:
    """Blinks and lip closures in a captured motion: counts and the frames they start on.
    A blink: both eyes' mean eyeBlink rises above `blink_on` (after falling below `blink_off`);
    a lip closure: jawOpen falls below `closed_below` after having been above `open_on`."""
    bs = motion.blendshapes
    blink = bs[:, [BLENDSHAPE_INDEX["eyeBlinkLeft"], BLENDSHAPE_INDEX["eyeBlinkRight"]]].mean(1)
    jaw = bs[:, BLENDSHAPE_INDEX["jawOpen"]]
    blinks, closures = [], []
    armed_b, armed_c = True, False
    for i in range(len(motion)):
        if armed_b and blink[i] > blink_on:
            blinks.append(i)
            armed_b = False
        elif blink[i] < blink_off:
            armed_b = True
        if jaw[i] > open_on:
            armed_c = True
        elif armed_c and jaw[i] < closed_below:
            closures.append(i)
            armed_c = False
    return {"blinks": len(blinks), "blink_frames": blinks, "closures": len(closures),
            "closure_frames": closures, "closed_fraction": float(np.mean(jaw < closed_below)) if len(jaw) else 0.0}
