"""What an open mouth looks like inside (issue 10): a probe for `real.evaluate_real_clip`.

`interior_probe(frame, landmarks)` measures one frame, the same way on a real video and on a
render (both re-tracked by the face mesh), inside the inner-lip outline:

- `interior_lightness`: median CIE L* inside the opening / median L* of the cheeks;
- `teeth_share`: the fraction of the opening that is teeth-like: lightness at least 0.62 x the
  cheeks' and chroma at most 0.6 x the cheeks' (so it works on grayscale and colour alike);
- `edge_contrast`: how hard the lip edge is: the mean L* gradient across the inner-lip outline
  (per inter-ocular distance) / the cheeks' L*, read on the outline's lower half and upper half;
- `lower_lip_thickness`: the lower lip from its inner to its outer contour, along the face's
  down direction, in IODs (a cavity that eats the lower lip pulls the tracked inner contour down).

Returns None when the mouth is closed (no pixel inside the outline) or the face is too small.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..face import topology as topo

CHEEKS = (50, 280, 205, 425)
TEETH_L = 0.62
TEETH_C = 0.6
LOWER_PAIRS = np.array([(14, 17), (87, 84), (317, 314), (178, 181), (402, 405)])


def _iod(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[topo.LEFT_EYE_CORNERS[0], :2] - lm[topo.RIGHT_EYE_CORNERS[0], :2]))


def interior_probe(frame: np.ndarray, landmarks: np.ndarray) -> dict[str, float] | None:
    lm = np.asarray(landmarks, np.float64)[:, :2]
    iod = _iod(lm)
    if iod < 20:
        return None
    inner = lm[topo.LIPS_INNER]
    H, W = frame.shape[:2]
    pad = int(0.1 * iod) + 3
    x0, y0 = np.maximum(np.floor(lm[topo.LIPS_OUTER].min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(lm[topo.LIPS_OUTER].max(0)).astype(int) + pad, [W, H])
    if x1 - x0 < 5 or y1 - y0 < 5:
        return None
    patch = frame[y0:y1, x0:x1]
    lab = cv2.cvtColor(patch, cv2.COLOR_RGB2LAB).astype(np.float32)
    L = lab[..., 0] * (100.0 / 255.0)
    C = np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((inner - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    inside = mask > 0
    if inside.sum() < 6:
        return None
    # the cheeks, from the whole frame
    cl, cc = [], []
    r = max(2, int(0.04 * iod))
    for i in CHEEKS:
        x, y = np.round(lm[i]).astype(int)
        p = frame[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]
        if p.size:
            q = cv2.cvtColor(p, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
            cl.append(q[:, 0] * (100.0 / 255.0))
            cc.append(np.hypot(q[:, 1] - 128.0, q[:, 2] - 128.0))
    if not cl:
        return None
    cheek_l = max(1.0, float(np.median(np.concatenate(cl))))
    cheek_c = float(np.median(np.concatenate(cc)))
    Li, Ci = L[inside], C[inside]
    teeth = (Li >= TEETH_L * cheek_l) & (Ci <= TEETH_C * max(cheek_c, 4.0))
    # edge: L* gradient magnitude on the outline itself (per IOD), relative to the cheeks
    gx = cv2.Sobel(L, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(L, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    g = cv2.dilate(np.hypot(gx, gy), np.ones((3, 3), np.uint8))   # the outline may sit a pixel off the edge
    loop = np.concatenate([inner, inner[:1]])
    t = np.linspace(0, 1, 4)[:-1]
    pts = (loop[:-1, None, :] * (1 - t[None, :, None]) + loop[1:, None, :] * t[None, :, None]).reshape(-1, 2)
    px = np.clip(np.round(pts - [x0, y0]).astype(int), 0, [x1 - x0 - 1, y1 - y0 - 1])
    edge = float(np.mean(g[px[:, 1], px[:, 0]])) * iod / cheek_l
    # lower lip thickness along the face's down direction (perpendicular to the eye line)
    a = lm[topo.LEFT_EYE_CORNERS[0]] - lm[topo.RIGHT_EYE_CORNERS[0]]
    down = np.array([-a[1], a[0]]) / max(1e-6, float(np.hypot(*a)))
    thick = float(np.mean((lm[LOWER_PAIRS[:, 1]] - lm[LOWER_PAIRS[:, 0]]) @ down)) / iod
    return {"interior_lightness": float(np.median(Li)) / cheek_l,
            "teeth_share": float(teeth.mean()),
            "edge_contrast": edge,
            "lower_lip_thickness": thick}
