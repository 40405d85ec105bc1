"""Face tracking with the models shipped inside the mediapipe 0.10.21 wheel.

`FaceTracker` finds faces and their 478 3D landmarks (face mesh with iris) and segments the
person from the background. It is used to build a rig from a photo and to re-track rendered
frames for the quality metrics. Landmarks are returned in pixel units of the given image:
x right, y down, z towards the back of the head (MediaPipe's z, scaled by the image width).

MediaPipe's native code logs to file descriptor 2 (absl lines like `W0000 ...
inference_feedback_manager.cc:114] ...`, TFLite's `INFO: Created TensorFlow Lite XNNPACK
delegate for CPU.`), some of it from graph threads shortly after a graph is created. No Python
setting reaches those loggers, so every graph call of `FaceTracker` runs inside
`native_logs_filtered()`: fd 2 points at a temporary file meanwhile, and what was written there
goes back to the real stderr afterwards minus those log lines. New graphs are warmed up with one
blank image inside that window, which waits for their threads to finish opening (and logging).
Set FACECAST_VERBOSE_NATIVE_LOGS=1, or pass `native_logs=True`, to keep the lines.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

#: Environment variable: set to 1 to keep MediaPipe's native log lines on stderr.
NATIVE_LOGS_ENV = "FACECAST_VERBOSE_NATIVE_LOGS"
#: Lines that `native_logs_filtered` drops: absl/glog info and warning lines
#: ("W0000 00:00:1712345678.123456    6464 file.cc:114] ...": before absl::InitializeLog the
#: seconds field holds the Unix time), TFLite's "INFO: ..." lines and absl's note about logging
#: before InitializeLog. Errors (E/F lines) still come through.
_NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\s:]+:\d+\] "
    rb"|INFO: "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")


def native_logs_wanted() -> bool:
    """True when FACECAST_VERBOSE_NATIVE_LOGS asks to keep MediaPipe's native log lines."""
    return os.environ.get(NATIVE_LOGS_ENV, "").strip().lower() not in ("", "0", "false", "no")


class _Fd2Filter:
    """Process-wide, nestable redirection of fd 2 into a temporary file (see the module doc).

    The first `enter()` redirects, the last `exit()` restores fd 2 and forwards every captured
    line that is not native log noise, so output of other threads is delayed, never lost.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None
        self._capture = None

    def enter(self) -> None:
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return
            _flush_python_stderr()
            try:
                capture = tempfile.TemporaryFile()  # noqa: SIM115 (closed in exit())
                saved = os.dup(2)
            except OSError:  # no usable fd 2 (or no temp dir): leave stderr alone
                return
            try:
                os.dup2(capture.fileno(), 2)
            except OSError:
                os.close(saved)
                capture.close()
                return
            self._saved, self._capture = saved, capture

    def exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth > 0 or self._saved is None:
                return
            _flush_python_stderr()
            saved, capture = self._saved, self._capture
            self._saved = self._capture = None
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = b"".join(ln for ln in capture.read().splitlines(keepends=True)
                            if not _NATIVE_LOG_LINE.match(ln))
            capture.close()
            if kept:
                try:
                    os.write(2, kept)
                except OSError:
                    pass


def _flush_python_stderr() -> None:
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


_FD2_FILTER = _Fd2Filter()


@contextmanager
def native_logs_filtered(enabled: bool = True) -> Iterator[None]:
    """Drop MediaPipe's native log lines written to fd 2 inside the block (when `enabled`)."""
    if not enabled:
        yield
        return
    _FD2_FILTER.enter()
    try:
        yield
    finally:
        _FD2_FILTER.exit()


def _import_mediapipe(native_logs: bool):
    if not native_logs:  # for glog/TF builds that read them at start; this wheel's absl does not
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mediapipe as mp  # imported late: it is slow to import
    return mp


@dataclass
class DetectedFace:
    """One face: landmarks (478, 3) float32 in image pixels; bbox (x0, y0, x1, y1) of the landmarks."""

    landmarks: np.ndarray

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        lo = self.landmarks[:, :2].min(0)
        hi = self.landmarks[:, :2].max(0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    @property
    def size(self) -> float:
        """Face size in pixels: the larger side of the landmark box."""
        x0, y0, x1, y1 = self.bbox
        return max(x1 - x0, y1 - y0)


class FaceTracker:
    """MediaPipe face mesh (478 points), face detector and selfie segmentation, CPU only.

    Create one per thread; `close()` (or use as a context manager) frees the graphs.
    `video=True` tracks across consecutive frames (faster), otherwise every image is independent.
    """

    def __init__(self, max_faces: int = 6, video: bool = False, min_confidence: float = 0.5,
                 native_logs: bool | None = None):
        self.native_logs = native_logs_wanted() if native_logs is None else bool(native_logs)
        self._mp = _import_mediapipe(self.native_logs)
        self._mesh = self._start(lambda mp: mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=min_confidence, min_tracking_confidence=0.5))
        self._lenient_mesh = None
        self._detector = None
        self._segmenter = None
        self.max_faces = max_faces

    def _quiet(self):
        """The window around every graph call: MediaPipe's native log lines are dropped."""
        return native_logs_filtered(not self.native_logs)

    def _start(self, make):
        """Create a graph and run it once on a blank image, so that its threads have opened
        (and logged) before the quiet window ends."""
        with self._quiet():
            graph = make(self._mp)
            graph.process(np.zeros((64, 64, 3), np.uint8))
        return graph

    def _process(self, graph, image: np.ndarray):
        with self._quiet():
            return graph.process(np.ascontiguousarray(image))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        with self._quiet():
            for g in (self._mesh, self._lenient_mesh, self._detector, self._segmenter):
                if g is not None:
                    g.close()
        self._mesh = self._lenient_mesh = self._detector = self._segmenter = None

    # ---- landmarks --------------------------------------------------------------------------
    def landmarks(self, image: np.ndarray, lenient: bool = False) -> list[DetectedFace]:
        """All faces found in an RGB uint8 image (H, W, 3), largest first.

        The image is padded to a square first (MediaPipe's mesh is most accurate on square input).
        """
        h, w = image.shape[:2]
        side = max(h, w)
        if h != w:
            padded = cv2.copyMakeBorder(image, 0, side - h, 0, side - w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        else:
            padded = image
        mesh = self._mesh
        if lenient:
            if self._lenient_mesh is None:
                self._lenient_mesh = self._start(lambda mp: mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=self.max_faces, refine_landmarks=True,
                    min_detection_confidence=0.15))
            mesh = self._lenient_mesh
        res = self._process(mesh, padded)
        faces = []
        for fl in res.multi_face_landmarks or []:
            a = np.array([(p.x, p.y, p.z) for p in fl.landmark], np.float32) * side
            faces.append(DetectedFace(a))
        faces.sort(key=lambda f: -f.size)
        return faces

    def detect_boxes(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes (x0, y0, x1, y1) in pixels from the full-range face detector, lenient threshold."""
        if self._detector is None:
            self._detector = self._start(lambda mp: mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.2))
        h, w = image.shape[:2]
        res = self._process(self._detector, image)
        boxes = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
        return boxes

    # ---- segmentation -----------------------------------------------------------------------
    def person_mask(self, image: np.ndarray) -> np.ndarray:
        """Soft person-vs-background mask (H, W) float32 in [0, 1] for an RGB uint8 image."""
        if self._segmenter is None:
            self._segmenter = self._start(
                lambda mp: mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0))
        res = self._process(self._segmenter, image)
        return np.clip(res.segmentation_mask.astype(np.float32), 0.0, 1.0)
