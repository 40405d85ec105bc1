"""Eyeballs: the part of each eye seen through the lid opening, with the iris moved by gaze.

At rig time each eye's iris is cut out (a soft disc) and the sclera behind it is filled in
(inpainting), both in the crop's coordinates. Per frame the iris is pasted back shifted by the
gaze angle, the eyeball is moved rigidly with the head (an affine warp of a small patch) and shown
only inside the lid opening, whose shape comes from the deformed landmarks (so blinks and
squints hide it, and the lids clip the iris as real lids do).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face import topology as topo
from ..face.rig import FaceRig, iris_circle

EYEBALL_RADIUS = 0.45  # x eye width: how far the iris travels for a given gaze angle
MAX_GAZE_DEG = 35.0


@dataclass
class EyeModel:
    """One eye's patch in crop coordinates.

    box: (x0, y0, x1, y1) int patch bounds; sclera: (h, w, 3) float32 iris removed;
    iris: (h, w, 3) float32 photo pixels; iris_alpha: (h, w) float32 soft iris disc;
    contour: landmark loop of the lid opening; anchors: 3 landmark ids for the rigid warp,
    anchor_xy: (3, 2) their photo positions; travel_px: iris shift for a 90-degree gaze.
    """

    box: tuple[int, int, int, int]
    lid: np.ndarray
    lash: np.ndarray
    sclera: np.ndarray
    iris: np.ndarray
    iris_alpha: np.ndarray
    contour: list[int]
    anchors: list[int]
    anchor_xy: np.ndarray
    travel_px: float


def build_eye(rig: FaceRig, contour: list[int], iris_ids: list[int]) -> EyeModel:
    lm = rig.landmarks
    S = rig.size
    pts = lm[contour, :2]
    c, r = iris_circle(lm, iris_ids)
    width = float(np.ptp(pts[:, 0]))
    pad = int(np.ceil(max(r * 2.2, width * 0.25))) + 3
    x0 = max(0, int(np.floor(pts[:, 0].min())) - pad)
    x1 = min(S, int(np.ceil(pts[:, 0].max())) + pad)
    y0 = max(0, int(np.floor(pts[:, 1].min())) - pad)
    y1 = min(S, int(np.ceil(pts[:, 1].max())) + pad)
    patch = rig.image[y0:y1, x0:x1]
    h, w = patch.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xx + x0 - c[0], yy + y0 - c[1])
    hole = (d <= r + 1.0).astype(np.uint8) * 255
    sclera = cv2.inpaint(patch, hole, 3, cv2.INPAINT_TELEA).astype(np.float32)
    # full weight on the inpainted disc, soft edge only where sclera == photo, so that gaze 0
    # reproduces the photo exactly
    alpha = np.clip((r + 3.0 - d) / 1.5, 0.0, 1.0).astype(np.float32)
    anchors = [contour[0], contour[len(contour) // 2], contour[len(contour) // 4]]
    # the closed lid: the opening filled from the skin around it; lashes: the darkest colour
    # along the upper lid's edge
    opening = np.zeros((h, w), np.uint8)
    cv2.fillPoly(opening, [np.round((pts - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    opening = cv2.dilate(opening, np.ones((3, 3), np.uint8))
    lid = cv2.inpaint(patch, opening, 5, cv2.INPAINT_TELEA).astype(np.float32)
    upper = np.round(lm[contour[:len(contour) // 2 + 1], :2] - [x0, y0]).astype(int)
    ys, xs = np.clip(upper[:, 1], 0, h - 1), np.clip(upper[:, 0], 0, w - 1)
    lash = np.sort(patch[ys, xs].astype(np.float32), axis=0)[:3].mean(0)
    return EyeModel((x0, y0, x1, y1), lid, lash, sclera, patch.astype(np.float32), alpha, contour, anchors,
                    lm[anchors, :2].astype(np.float32), EYEBALL_RADIUS * width)


def build_eyes(rig: FaceRig) -> list[EyeModel]:
    return [build_eye(rig, topo.RIGHT_EYE, topo.RIGHT_IRIS), build_eye(rig, topo.LEFT_EYE, topo.LEFT_IRIS)]


def eyeball_patch(eye: EyeModel, gaze: np.ndarray) -> np.ndarray:
    """The eye patch (h, w, 3) float32 with the iris moved by gaze (yaw, pitch) degrees."""
    yaw, pitch = np.radians(np.clip(gaze, -MAX_GAZE_DEG, MAX_GAZE_DEG))
    dx, dy = eye.travel_px * np.sin(yaw), -eye.travel_px * np.sin(pitch)
    if abs(dx) < 1e-3 and abs(dy) < 1e-3:
        iris, alpha = eye.iris, eye.iris_alpha
    else:
        h, w = eye.iris_alpha.shape
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        iris = cv2.warpAffine(eye.iris, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(eye.iris_alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = alpha[..., None]
    return eye.sclera + a * (iris - eye.sclera)


def composite_eye(frame: np.ndarray, eye: EyeModel, gaze: np.ndarray, rigid_lm: np.ndarray,
                  deformed_lm: np.ndarray) -> None:
    """Draw the eyeball into `frame` (S, S, 3) uint8 in place.

    rigid_lm: (478, 2) landmarks moved by the head alone (where the eyeball goes);
    deformed_lm: (478, 2) landmarks moved by head and expression (where the lids are).
    """
    S = frame.shape[0]
    poly = deformed_lm[eye.contour]
    lo = np.floor(poly.min(0)).astype(int) - 2
    hi = np.ceil(poly.max(0)).astype(int) + 3
    lo = np.clip(lo, 0, S)
    hi = np.clip(hi, 0, S)
    if np.any(hi - lo < 2):
        return
    mask = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - lo) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    if not mask.any():
        return
    patch = eyeball_patch(eye, gaze)
    x0, y0 = eye.box[:2]
    src_pts = (eye.anchor_xy - np.float32([x0, y0])).astype(np.float32)
    m = cv2.getAffineTransform(src_pts, (rigid_lm[eye.anchors] - lo).astype(np.float32))
    size = (mask.shape[1], mask.shape[0])
    ball = cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    region = frame[lo[1]:hi[1], lo[0]:hi[0]]
    out = region.astype(np.float32)
    # where the lid has come down over the photo's opening: closed-lid skin and a lash line
    rigid_poly = rigid_lm[eye.contour] - lo
    lid_mask = np.zeros_like(mask)
    cv2.fillPoly(lid_mask, [np.round(rigid_poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    covered = cv2.subtract(lid_mask, mask)
    if covered.any():
        lid = cv2.warpAffine(eye.lid, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        c = covered.astype(np.float32)[..., None] / 255.0
        out += c * (lid - out)
    a = mask.astype(np.float32)[..., None] / 255.0
    out += a * (ball - out)
    half = len(eye.contour) // 2
    drop = float(np.mean(deformed_lm[eye.contour[1:half], 1] - rigid_lm[eye.contour[1:half], 1]))
    height = float(np.ptp(rigid_poly[:, 1]))
    if drop > 0.5 and height > 1:
        lash = np.zeros_like(mask)
        upper = np.round((poly[:half + 1] - lo) * 16).astype(np.int32)
        cv2.polylines(lash, [upper], False, 255, max(1, int(round(0.1 * height))), cv2.LINE_AA, shift=4)
        k = lash.astype(np.float32)[..., None] / 255.0 * min(1.0, drop / (0.6 * height)) * 0.6
        out += k * (eye.lash - out)
    region[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
