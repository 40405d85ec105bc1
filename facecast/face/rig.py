"""Face rig: everything the renderer needs to know about one portrait, built once from the photo.

`build_rig(image, size=512)` finds the face (largest, or `face_index`), cuts a square portrait
crop around it, re-runs the 478-point face mesh on the crop, estimates the photo's head pose,
draws the masks (face, lips, mouth opening, eyes, irises, person) and fills the background
behind the person once (inpainting), so head motion uncovers plausible background. It also fits
the photo's own expression (`expression.fit_expression`): blendshape weights are absolute (0 = a
neutral face with closed lips), so the renderer needs to know what the photo shows.

Crop (`framing.plan_crop`): a square of side `CROP_SCALE` x face size (the larger side of the
landmark box, forehead to chin), centred on the face and raised by `CROP_RAISE` x face size to keep
the hair in view; shifted to stay inside the photo, tightened down to `MIN_CROP_SCALE` x face size
if it still does not fit, and only then extended past the photo with a plausible fill (never
replicated edge pixels). `FaceRig.photo_area` says which crop pixels show the photo.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import FacecastError
from . import headpose
from . import topology as topo
from .expression import PhotoExpression, fit_expression
from .framing import (
    CROP_SCALE,
    extend_canvas,
    fill_background,
    person_matte,
    photo_coverage,
    plan_crop,
)
from .image_io import load_image
from .tracking import DetectedFace, FaceTracker

MIN_FACE_PX = 64
DETECT_MAX_SIDE = 1280
MIN_SIZE, MAX_SIZE = 256, 1024


@dataclass
class FaceRig:
    """One portrait, prepared for animation. All pixel data is the square crop of side `size`.

    image: (S, S, 3) uint8 RGB crop of the photo.
    landmarks: (478, 3) float32 crop pixels (x right, y down, z away from the viewer).
    rotation: (3, 3) float64 the photo's head frame (columns: face right, down, back).
    pose: (pitch, yaw, roll) degrees of the photo's head, from `rotation`.
    head_center: (3,) float32 pivot of head rotation, crop pixels.
    face_scale: eye-corner distance in pixels (the unit of all deformations).
    masks: name -> (S, S) uint8 0..255 for face, lips, mouth, eyes, irises, person.
    background: (S, S, 3) uint8 crop with the person removed and filled.
    crop_box: (x0, y0, side) of the crop in the original photo's pixels: crop pixel (u, v) shows
        the photo at pixel coordinates (x0 + u * side / size, y0 + v * side / size).
    photo: the whole original image (H, W, 3) uint8, for full-frame paste-back.
    photo_area: (S, S) float32 in [0, 1], the share of each crop pixel that shows the photo (the
        rest is fill, where the crop runs past the photo's edge); None: all of it.
    expression: the photo's own expression (`expression.PhotoExpression`: absolute blendshape
        weights, and the landmarks of this face at rest).
    """

    image: np.ndarray
    landmarks: np.ndarray
    rotation: np.ndarray
    pose: tuple[float, float, float]
    head_center: np.ndarray
    face_scale: float
    masks: dict[str, np.ndarray]
    background: np.ndarray
    crop_box: tuple[float, float, float]
    photo: np.ndarray
    faces_found: int = 1
    notices: list[str] = field(default_factory=list)
    expression: PhotoExpression | None = None
    photo_area: np.ndarray | None = None

    def __post_init__(self):
        if self.expression is None:
            self.expression = fit_expression(self.landmarks, self.rotation, self.face_scale)

    @property
    def size(self) -> int:
        return self.image.shape[0]

    @property
    def triangles(self) -> np.ndarray:
        """(M, 3) int32 face-mesh triangles (surface only, mouth and eyes open)."""
        return topo.mesh_triangles()

    def mouth_gap(self) -> float:
        """Inner-lip gap of the photo, in face-scale units."""
        return float(np.linalg.norm(self.landmarks[topo.UPPER_LIP_MID, :2] - self.landmarks[topo.LOWER_LIP_MID, :2])
                     / self.face_scale)

    def summary(self) -> dict:
        """Numbers that describe the rig, JSON-ready."""
        return {
            "size": self.size,
            "crop_box": [round(float(v), 2) for v in self.crop_box],
            "crop_scale": CROP_SCALE,
            "faces_found": self.faces_found,
            "head_pose_deg": {k: round(v, 2) for k, v in zip(("pitch", "yaw", "roll"), self.pose)},
            "face_scale_px": round(self.face_scale, 2),
            "mouth_gap": round(self.mouth_gap(), 4),
            "expression": self.expression.as_dict(),
            "mask_area_fraction": {k: round(float(m.mean()) / 255.0, 5) for k, m in self.masks.items()},
        }


def build_rig(image, size: int = 512, face_index: int = 0, tracker: FaceTracker | None = None) -> FaceRig:
    """Build a `FaceRig` from an image path or array. Raises FacecastError for user errors."""
    if not (MIN_SIZE <= int(size) <= MAX_SIZE):
        raise FacecastError(f"--size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    size = int(size)
    photo = load_image(image)
    own_tracker = tracker is None
    tracker = tracker or FaceTracker()
    try:
        faces = find_faces(photo, tracker)
        if not faces:
            raise FacecastError("no face found in the image; use a photo, painting or drawing where one face is clearly visible")
        notices = []
        if face_index < 0 or face_index >= len(faces):
            raise FacecastError(f"--face {face_index} is out of range: the image has {len(faces)} face(s), numbered 0 (largest) to {len(faces) - 1}")
        if len(faces) > 1:
            notices.append(f"found {len(faces)} faces; animating face {face_index} "
                           f"({'the largest' if face_index == 0 else 'by size'}); use --face N to pick another (0 = largest)")
        face = faces[face_index]
        if face.size < MIN_FACE_PX:
            raise FacecastError(f"the face is only {face.size:.0f} pixels tall; use a photo where the face is at least "
                                f"{MIN_FACE_PX} pixels (crop closer or use a higher-resolution image)")
        crop, box, area = crop_portrait(photo, face, size)
        found = tracker.landmarks(crop)
        if not found:
            found = tracker.landmarks(crop, lenient=True)
        if not found:
            raise FacecastError("the face was found but its features could not be traced; try a sharper, more frontal photo")
        # the face nearest where the detected one lands in the crop is ours
        bx0, by0, bside = box
        c = (np.array([(face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2]) - [bx0, by0]) * size / bside
        lm = min(found, key=lambda f: np.linalg.norm(f.landmarks[:, :2].mean(0) - c)).landmarks
        person = tracker.person_mask(crop)
    finally:
        if own_tracker:
            tracker.close()
    return assemble_rig(crop, lm, person, box, area, photo, len(faces), notices)


def find_faces(photo: np.ndarray, tracker: FaceTracker) -> list[DetectedFace]:
    """Faces in the photo, largest first, landmarks in photo pixels. Tries harder for drawn faces."""
    h, w = photo.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else photo
    attempts = [(small, 0, False)]
    # a face that fills the picture: pad it so the detector sees a whole head
    pad = max(small.shape[:2]) // 2
    padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    attempts += [(padded, pad, False), (small, 0, True), (padded, pad, True)]
    for img, off, lenient in attempts:
        faces = tracker.landmarks(img, lenient=lenient)
        if faces:
            faces += _more_faces(img, faces, tracker)
            faces.sort(key=lambda f: -f.size)
            return [DetectedFace(_shift(f.landmarks, -off) / scale) for f in faces]
    # last resort: face-detector boxes, then the mesh on each enlarged box crop
    for x0, y0, x1, y1 in tracker.detect_boxes(small):
        side = 2.0 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        sub, (bx, by, bs) = _square_crop(small, cx, cy, side, 384)
        for lenient in (False, True):
            found = tracker.landmarks(sub, lenient=lenient)
            if found:
                lm = found[0].landmarks * (bs / 384)
                lm[:, 0] += bx
                lm[:, 1] += by
                return [DetectedFace(lm / scale)]
    return []


def _more_faces(img: np.ndarray, found: list[DetectedFace], tracker: FaceTracker) -> list[DetectedFace]:
    """Faces the mesh's detector passed over: blank the faces found so far, then look again in
    the whole picture and in overlapping square tiles (the detector sees small faces in a tile)."""
    h, w = img.shape[:2]
    work = img.copy()
    more: list[DetectedFace] = []
    side = min(h, w) // 2 if max(h, w) < 2 * min(h, w) else min(h, w)
    tiles = [(0, 0, w, h)] + [(x, y, side, side) for y in range(0, max(1, h - side + 1), max(1, side // 2))
                              for x in range(0, max(1, w - side + 1), max(1, side // 2))]
    for x, y, tw, th in tiles:
        for f in found + more:
            x0, y0, x1, y1 = f.bbox
            pad = 0.25 * f.size
            cv2.rectangle(work, (int(x0 - pad), int(y0 - 2 * pad)), (int(x1 + pad), int(y1 + pad)),
                          (128, 128, 128), -1)
        for f in tracker.landmarks(work[y:y + th, x:x + tw]):
            lm = f.landmarks.copy()
            lm[:, 0] += x
            lm[:, 1] += y
            more.append(DetectedFace(lm))
        if len(found) + len(more) >= tracker.max_faces:
            break
    return more


def _shift(lm: np.ndarray, off: float) -> np.ndarray:
    out = lm.copy()
    out[:, :2] += off
    return out


def _square_crop(img: np.ndarray, x0: float, y0: float, side: float, out: int):
    """Square crop of `side` px from (x0, y0), resampled to out x out; borders mirrored (the part
    past the photo's edge is replaced by `framing.extend_canvas`)."""
    side = max(2.0, side)
    s = out / side
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)
    src = img
    if s < 0.5:  # pre-shrink so the affine resample does not alias
        k = int(1 / s) // 2 * 2 + 1
        src = cv2.GaussianBlur(img, (k, k), 0)
    crop = cv2.warpAffine(src, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return crop, (x0, y0, side)


def crop_portrait(photo: np.ndarray, face: DetectedFace, size: int):
    """The square portrait crop for `face`, (size, size, 3) uint8, its box (x0, y0, side) and
    the share of each crop pixel that shows the photo ((size, size) float32, `photo_coverage`)."""
    x0, y0, side = plan_crop(photo.shape, face.bbox, face.size)
    crop, box = _crop_box(photo, x0, y0, side, size)
    area = photo_coverage(photo.shape, box, size)
    return extend_canvas(crop, area), box, area


def _crop_box(photo: np.ndarray, x0: float, y0: float, side: float, size: int):
    if side / size > 1.5:  # big downscale: area-average first for a clean crop
        f = size * 1.5 / side
        small = cv2.resize(photo, (max(1, round(photo.shape[1] * f)), max(1, round(photo.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / photo.shape[1], small.shape[0] / photo.shape[0]
        # photo pixel x is pixel (x + 0.5) * fx - 0.5 of `small`
        crop, (sx0, sy0, sside) = _square_crop(small, (x0 + 0.5) * fx - 0.5, (y0 + 0.5) * fy - 0.5, side * fx, size)
        # the box in the photo's pixels: a pixel of `small` at index i covers the photo at
        # (i + 0.5) / f - 0.5 (per axis, with the factors the rounding of its size gave)
        return crop, ((sx0 + 0.5) / fx - 0.5, (sy0 + 0.5) / fy - 0.5, sside / fx)
    return _square_crop(photo, x0, y0, side, size)


def assemble_rig(crop, lm, person, box, area, photo, faces_found, notices) -> FaceRig:
    size = crop.shape[0]
    lm = lm.astype(np.float32)
    rot = headpose.head_frame(lm)
    pose = headpose.matrix_to_euler(rot)
    face_scale = headpose.face_scale(lm)
    center = headpose.head_pivot(lm, rot, face_scale)
    person = person_matte(crop, np.clip(np.asarray(person, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8))
    masks = draw_masks(lm, person.astype(np.float32) / 255.0, size)
    background = fill_background(crop, masks["person"])
    return FaceRig(image=crop, landmarks=lm, rotation=rot, pose=pose, head_center=center.astype(np.float32),
                   face_scale=face_scale, masks=masks, background=background, crop_box=tuple(map(float, box)),
                   photo=photo, faces_found=faces_found, notices=notices,
                   photo_area=None if area.min() >= 0.999 else area)


def _poly(mask: np.ndarray, pts: np.ndarray) -> None:
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)


def draw_masks(lm: np.ndarray, person: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Anti-aliased masks (S, S) uint8 from the landmarks and the person segmentation."""
    def blank():
        return np.zeros((size, size), np.uint8)

    xy = lm[:, :2]
    face, lips, mouth, eyes, irises = blank(), blank(), blank(), blank(), blank()
    _poly(face, xy[topo.FACE_OVAL])
    _poly(lips, xy[topo.LIPS_OUTER])
    _poly(mouth, xy[topo.LIPS_INNER])
    lips = cv2.subtract(lips, mouth)
    _poly(eyes, xy[topo.RIGHT_EYE])
    _poly(eyes, xy[topo.LEFT_EYE])
    for iris in (topo.RIGHT_IRIS, topo.LEFT_IRIS):
        c, r = iris_circle(lm, iris)
        cv2.circle(irises, (round(c[0] * 16), round(c[1] * 16)), round(r * 16), 255, -1, cv2.LINE_AA, shift=4)
    irises = cv2.min(irises, eyes)
    person8 = np.clip(person * 255.0 + 0.5, 0, 255).astype(np.uint8)
    person8 = cv2.max(person8, face)  # the face is always part of the person
    # so is the top of the head (hats and pale hair often escape the segmenter): an ellipse
    # over the forehead, as wide as the face
    w = float(np.linalg.norm(xy[454] - xy[234]))
    h = float(np.linalg.norm(xy[152] - xy[10]))
    top = xy[10]
    head = np.zeros_like(face)
    cv2.ellipse(head, (round(top[0] * 16), round((top[1] + 0.05 * h) * 16)), (round(0.55 * w * 16), round(0.5 * h * 16)),
                0, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
    person8 = cv2.max(person8, head)
    return {"face": face, "lips": lips, "mouth": mouth, "eyes": eyes, "irises": irises, "person": person8}


def iris_circle(lm: np.ndarray, iris: list[int]) -> tuple[np.ndarray, float]:
    """Centre (2,) and radius of an iris from its 5 landmarks (centre + ring)."""
    c = lm[iris[0], :2]
    r = float(np.mean(np.linalg.norm(lm[iris[1:], :2] - c, axis=1)))
    return c, r
