"""Face tracking with the models shipped inside the mediapipe 0.10.21 wheel.

`FaceTracker` finds faces and their 478 3D landmarks (face mesh with iris) and segments the
person from the background. It is used to build a rig from a photo and to re-track rendered
frames for the quality metrics. Landmarks are returned in pixel units of the given image:
x right, y down, z towards the back of the head (MediaPipe's z, scaled by the image width).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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

    def __init__(self, max_faces: int = 6, video: bool = False, min_confidence: float = 0.5):
        import mediapipe as mp  # imported here: it is slow to import and noisy on stderr
        self._mp = mp
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=min_confidence, min_tracking_confidence=0.5)
        self._lenient_mesh = None
        self._detector = None
        self._segmenter = None
        self.max_faces = max_faces

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
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
                self._lenient_mesh = self._mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=self.max_faces, refine_landmarks=True,
                    min_detection_confidence=0.15)
            mesh = self._lenient_mesh
        res = mesh.process(np.ascontiguousarray(padded))
        faces = []
        for fl in res.multi_face_landmarks or []:
            a = np.array([(p.x, p.y, p.z) for p in fl.landmark], np.float32) * side
            faces.append(DetectedFace(a))
        faces.sort(key=lambda f: -f.size)
        return faces

    def detect_boxes(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes (x0, y0, x1, y1) in pixels from the full-range face detector, lenient threshold."""
        if self._detector is None:
            self._detector = self._mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.2)
        h, w = image.shape[:2]
        res = self._detector.process(np.ascontiguousarray(image))
        boxes = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
        return boxes

    # ---- segmentation -----------------------------------------------------------------------
    def person_mask(self, image: np.ndarray) -> np.ndarray:
        """Soft person-vs-background mask (H, W) float32 in [0, 1] for an RGB uint8 image."""
        if self._segmenter is None:
            self._segmenter = self._mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        res = self._segmenter.process(np.ascontiguousarray(image))
        return np.clip(res.segmentation_mask.astype(np.float32), 0.0, 1.0)
