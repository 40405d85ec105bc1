"""Renderer: rig + MotionFrame -> RGB frame, by a dense backward warp of the photo.

How a frame is made (all per-rig set-up is done once in `Renderer.__init__`):

1. Blendshape weights are absolute (0 = a neutral face with closed lips). The rig knows the
   photo's own expression (`face.expression`: its weights and the face at rest), and the mesh is
   deformed from the photo's expression to the target: offsets = rest - photo + basis(target)
   (`face/blendshapes.py`), so a smiling or open-mouthed photo can close its lips. The head pose
   (rotation about a pivot between the ears, translation, scale) moves the deformed mesh.
2. The motion of every point of a coarse grid (one node per `grid_step` pixels) follows from the
   mesh: inside the face by barycentric interpolation of the landmark offsets (a sparse matrix
   built once), outside it by the nearest face offset fading with distance; the head's rigid
   motion applies to a depth map of the head (face depth from the mesh, receding to the
   pivot's depth for hair and ears)
   with a weight that falls off smoothly into the neck and shoulders; the background stays put.
3. That forward motion field is inverted by fixed-point iteration on the grid, upsampled to a
   per-pixel source map, and the photo and its person mask are remapped with it.
4. Where the person has moved, the background is the inpainted one: at soft edges the photo's
   own mix of person and background is kept, with its background swapped; the eyeballs (`eyes.py`) and the
   mouth interior (`mouth.py`) are drawn inside the deformed lid and lip outlines. A warp that
   reads past the crop's edge finds the background past the sides and the top, and the body
   (mirrored) past the bottom: no replicated streaks, no mirrored double of the hair.
5. The band around the lips is inverted exactly instead (`lips.py`): lips that close over the
   photo's teeth stretch over them, with nothing of the opening left, and a seam is shaded.

The photo's own expression with no head motion takes a shortcut and returns the crop itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse as sp

from ..face import topology as topo
from ..face.headpose import euler_to_matrix
from ..face.rig import FaceRig
from ..motion.types import BLENDSHAPE_INDEX, MotionFrame, to_absolute
from .blendshapes import BlendshapeBasis
from .eyes import build_eyes, composite_eye
from .lips import BandMap, LipBand, uncross
from .mouth import build_mouth, composite_mouth

FIXED_POINT_ITERATIONS = 4
EXTRA_ITERATIONS = 6  # more, in the box where the expression moves the face by over 2 px,
EXTRA_FROM = 0.08     # x face scale: when it moves a point by more than this
FACE_FALLOFF = 0.55   # x face scale: how far outside the mesh expression motion fades out
HEAD_INNER, HEAD_OUTER = 1.15, 1.9
DEPTH_SMOOTH = 0.1   # x face scale: blur of the head's depth map  # head-ellipse radii where the rigid weight is 1 and 0
JAW_IDS = [BLENDSHAPE_INDEX[n] for n in ("jawOpen", "jawLeft", "jawRight", "jawForward")]


@dataclass
class FrameGeometry:
    """Where things are in one output frame: landmarks (478, 2) after head + expression,
    rigid_landmarks (478, 2) after head motion alone; teeth_upper / teeth_lower (3, 2): where the
    mouth interior's skull and jaw anchors go (moved on the plane of the teeth)."""

    landmarks: np.ndarray
    rigid_landmarks: np.ndarray
    teeth_upper: np.ndarray
    teeth_lower: np.ndarray


class Renderer:
    """Renders frames of one rig. Create once per rig; `render(motion)` is cheap (a few ms at 512²)."""

    def __init__(self, rig: FaceRig, grid_step: int | None = None):
        self.rig = rig
        S = rig.size
        self.step = grid_step or max(2, S // 256)
        self.G = int(np.ceil(S / self.step))
        self.basis = BlendshapeBasis.from_rig(rig)
        self.eyes = build_eyes(rig)
        self.mouth = build_mouth(rig)
        self.photo_gap = topo.lip_gap_px(rig.landmarks)
        self.lips = LipBand.from_rig(rig)
        # the photo's own expression: its weights, and the offsets that take the photo to rest
        expr = rig.expression
        self.photo_weights = expr.weights.astype(np.float32)
        self._photo_deform = self.basis.deform(self.photo_weights)
        self._closure = (expr.rest_landmarks - rig.landmarks + self._photo_deform).astype(np.float32)
        # how far each shape opens the lips (mean over the facing pairs, px per unit weight): the
        # direct closure of what the model leaves open fades out as the target opens like the photo
        pairs = topo.LIP_GAP_PAIRS
        down = rig.rotation[:, 1].astype(np.float32)
        self._gap_rate = ((self.basis.deltas[:, pairs[:, 1]] - self.basis.deltas[:, pairs[:, 0]]) @ down).mean(1)
        self._photo_open = float(self._gap_rate @ self.photo_weights)
        photo_jaw = np.zeros_like(self.photo_weights)
        photo_jaw[JAW_IDS] = self.photo_weights[JAW_IDS]
        self._photo_jaw_deform = self.basis.deform(photo_jaw)
        # the lip band is inverted exactly only where the photo has an opening to close
        self._band = float(self.lips.photo_gap.max()) > 1.0
        self._extra_from = EXTRA_FROM * rig.face_scale
        self._teeth_depth = float(rig.landmarks[topo.LIPS_INNER, 2].mean())
        self._build_grid()
        self._rgba = np.dstack([rig.image, rig.masks["person"]])
        self._bg = rig.background
        self._pad_sources()

    # ---- set-up ------------------------------------------------------------------------------
    def _pad_sources(self) -> None:
        """Sources padded by `pad` px for warps that read past the crop's edge: past the sides and
        the top there is no person (the background shows, mirrored, with alpha 0: no replicated
        streaks, no mirrored double of hair); past the bottom the body goes on (mirrored)."""
        S = self.rig.size
        P = self.pad = max(8, S // 8)
        bg = cv2.copyMakeBorder(self._bg, P, P, P, P, cv2.BORDER_REFLECT_101)
        rgba = np.dstack([bg, np.zeros(bg.shape[:2], np.uint8)])
        body = cv2.copyMakeBorder(self._rgba, 0, P, 0, 0, cv2.BORDER_REFLECT_101)
        rgba[P:, P:P + S] = body
        self._rgba_pad, self._bg_pad = rgba, bg

    def _grid_xy(self) -> np.ndarray:
        g = (np.arange(self.G, dtype=np.float32) + 0.5) * self.step - 0.5
        gx, gy = np.meshgrid(g, g)
        return np.stack([gx.ravel(), gy.ravel()], 1)

    def _build_grid(self) -> None:
        rig, G = self.rig, self.G
        lm = rig.landmarks
        P = self._grid_xy()                          # (G², 2) pixel positions of the nodes
        tris = np.concatenate([topo.mesh_triangles(), topo.hole_triangles()])
        rows, cols, vals = [], [], []
        inside = np.zeros(G * G, bool)
        gpos = (lm[:, :2] + 0.5) / self.step - 0.5   # landmarks in grid units
        for t in tris:
            a, b, c = gpos[t]
            x0, y0 = np.floor(np.minimum(np.minimum(a, b), c)).astype(int)
            x1, y1 = np.ceil(np.maximum(np.maximum(a, b), c)).astype(int)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, G - 1), min(y1, G - 1)
            if x1 < x0 or y1 < y0:
                continue
            xx, yy = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
            xx, yy = xx.ravel(), yy.ravel()
            det = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
            if abs(det) < 1e-9:
                continue
            l1 = ((b[1] - c[1]) * (xx - c[0]) + (c[0] - b[0]) * (yy - c[1])) / det
            l2 = ((c[1] - a[1]) * (xx - c[0]) + (a[0] - c[0]) * (yy - c[1])) / det
            l3 = 1 - l1 - l2
            ok = (l1 >= -1e-4) & (l2 >= -1e-4) & (l3 >= -1e-4)
            idx = yy[ok] * G + xx[ok]
            new = ~inside[idx]
            idx = idx[new]
            inside[idx] = True
            for k, lam in enumerate((l1, l2, l3)):
                rows.append(idx)
                cols.append(np.full(len(idx), t[k]))
                vals.append(lam[ok][new])
        B = sp.csr_matrix((np.concatenate(vals).astype(np.float32),
                           (np.concatenate(rows), np.concatenate(cols))), shape=(G * G, topo.NUM_LANDMARKS))
        # outside the mesh: copy the nearest inside node, fading out with distance
        outside = (~inside).reshape(G, G).astype(np.uint8)
        dist, labels = cv2.distanceTransformWithLabels(outside, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
        zero_idx = np.flatnonzero(outside.ravel() == 0)      # labels number the zero pixels in raster order
        nearest = zero_idx[labels.ravel() - 1]
        reach = FACE_FALLOFF * rig.face_scale / self.step
        fade = _smoothstep(1.0 - dist.ravel() / reach).astype(np.float32)
        B_near = B[nearest]
        self.B = sp.diags(fade) @ B_near                      # expression offsets -> node offsets
        self.B = self.B.tocsr()
        self.B.eliminate_zeros()
        # depth: the mesh's inside; outside it, the nearest face depth receding smoothly
        # towards the depth of the pivot (hair and ears turn about the head's centre)
        z_face = B_near @ lm[:, 2]
        cz = float(rig.head_center[2])
        recede = _smoothstep(dist.ravel() / (0.6 * rig.face_scale / self.step))
        depth = (z_face + recede * np.maximum(cz - z_face, 0.0)).astype(np.float32).reshape(G, G)
        # smoothed around the face's edge, so that turning the head folds no thin strips over each
        # other; the face keeps its own relief (the nose's parallax is what shows a turn)
        smooth = cv2.GaussianBlur(depth, (0, 0), DEPTH_SMOOTH * rig.face_scale / self.step).ravel()
        inner = _smoothstep((fade - 0.9) / 0.1) * (dist.ravel() == 0)
        inner = cv2.GaussianBlur(inner.reshape(G, G).astype(np.float32), (0, 0), 0.05 * rig.face_scale / self.step).ravel()
        self.depth = (inner * depth.ravel() + (1 - inner) * smooth).astype(np.float32)
        # rigid weight: 1 on the head, falling off over an ellipse around it, faster downwards
        # (the neck bends, the shoulders stay)
        ears = lm[[234, 454]]
        cx = float(ears[:, 0].mean())
        cy = float((lm[10, 1] + lm[152, 1]) / 2 - 0.1 * rig.face_scale)
        ra = 0.5 * float(np.linalg.norm(ears[0, :2] - ears[1, :2])) * 1.1
        rb = 0.5 * float(lm[152, 1] - lm[10, 1]) * 1.3
        u = (P[:, 0] - cx) / ra
        v = (P[:, 1] - cy) / rb
        v = np.where(v > 0, v * 1.5, v)
        rho = np.sqrt(u * u + v * v)
        self.head_w = _smoothstep((HEAD_OUTER - rho) / (HEAD_OUTER - HEAD_INNER)).astype(np.float32)
        self.head_w = np.maximum(self.head_w, fade)
        self.node_x = np.ascontiguousarray(P[:, 0])
        self.node_y = np.ascontiguousarray(P[:, 1])
        self.node_grid = P.reshape(G, G, 2).copy()

    # ---- per frame ---------------------------------------------------------------------------
    def head_transform(self, m: MotionFrame) -> tuple[np.ndarray, np.ndarray]:
        """(A (3, 3), b (3,)) with p' = A @ p + b for the head's rigid motion, crop pixels."""
        R = euler_to_matrix(*m.rotation)
        A = (float(m.scale) * R).astype(np.float32)
        c = self.rig.head_center.astype(np.float32)
        t = np.array([m.translation[0] * self.rig.size, m.translation[1] * self.rig.size, 0.0], np.float32)
        return A, c + t - A @ c

    def expression_offsets(self, weights: np.ndarray) -> np.ndarray:
        """(478, 3) float32 landmark offsets from the photo to absolute blendshape `weights` (52,):
        the photo's own weights give exactly zero."""
        w = np.asarray(weights, np.float32)
        if np.array_equal(w, self.photo_weights):
            return np.zeros_like(self._closure)
        E = self.basis.deform(w) - self._photo_deform
        # the part of the closure the blendshapes cannot make: full at closed lips, none when the
        # target opens the lips as far as the photo does
        if self._photo_open > 1e-3:
            c = float(np.clip(1.0 - float(self._gap_rate @ w) / self._photo_open, 0.0, 1.0))
        else:
            c = 1.0
        if c > 0.0:
            E = E + c * self._closure
        return E

    def geometry(self, m: MotionFrame) -> tuple[FrameGeometry, np.ndarray]:
        """Frame landmarks and the (478, 3) expression offsets for a motion frame."""
        lm = self.rig.landmarks
        weights = m.blendshapes if m.expression == "absolute" else to_absolute(m.blendshapes, self.photo_weights)
        E = self.expression_offsets(weights)
        A, b = self.head_transform(m)
        jaw_w = np.zeros_like(weights)
        jaw_w[JAW_IDS] = weights[JAW_IDS]
        Ej = self.basis.deform(jaw_w) - self._photo_jaw_deform
        # the teeth sit on a plane at the lips' depth: their anchors move as points of that plane
        up, lo = self.mouth.upper_anchors, self.mouth.lower_anchors
        flat = lm[up + lo].copy()
        flat[:, 2] = self._teeth_depth
        flat[3:] += Ej[lo]
        teeth = (flat @ A.T + b)[:, :2]
        rigid = (lm @ A.T + b)[:, :2]
        deformed = ((lm + E) @ A.T + b)[:, :2]
        if E.any():
            deformed = uncross(deformed, (A @ self.rig.rotation[:, 1])[:2])
        geo = FrameGeometry(deformed, rigid, teeth[:3], teeth[3:])
        return geo, E

    def source_map(self, m: MotionFrame, E: np.ndarray) -> np.ndarray | None:
        """Per-pixel source coordinates (S, S, 2) float32 for the warp, or None for no motion."""
        A, b = self.head_transform(m)
        nx, ny, nz = self.node_x, self.node_y, self.depth
        if E.any():
            qx, qy, qz = nx + self.B @ E[:, 0], ny + self.B @ E[:, 1], nz + self.B @ E[:, 2]
        else:
            qx, qy, qz = nx, ny, nz
        w = self.head_w
        # forward displacement of every node: expression, then the head's rigid motion (weighted)
        dx = qx - nx + w * (A[0, 0] * qx + A[0, 1] * qy + A[0, 2] * qz + (b[0] - qx))
        dy = qy - ny + w * (A[1, 0] * qx + A[1, 1] * qy + A[1, 2] * qz + (b[1] - qy))
        if max(float(np.abs(dx).max()), float(np.abs(dy).max())) < 1e-3:
            return None
        G = self.G
        disp = cv2.merge([dx.reshape(G, G), dy.reshape(G, G)])
        # invert by fixed-point iteration: X = Y - d(X)
        Y = self.node_grid
        X = Y - disp
        inv = 1.0 / self.step
        for _ in range(FIXED_POINT_ITERATIONS - 1):
            g = X * inv + (0.5 * inv - 0.5)
            d = cv2.remap(disp, g, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            X = Y - d
        if self._band and float(np.abs(E[:, :2]).max(initial=0.0)) > self._extra_from:
            # large expression changes (a wide-open photo closing its mouth: 20-30 px at 512²)
            # converge slowly; iterate more where the expression moves things
            ex = np.hypot(qx - nx, qy - ny).reshape(G, G)
            rows, cols = np.nonzero(ex > 2.0)
            if len(rows):
                pad = int(np.ceil(float(ex.max()) * inv)) + 2
                r0, r1 = max(0, rows.min() - pad), min(G, rows.max() + pad + 1)
                c0, c1 = max(0, cols.min() - pad), min(G, cols.max() + pad + 1)
                Xs, Ys = X[r0:r1, c0:c1], Y[r0:r1, c0:c1]
                for _ in range(EXTRA_ITERATIONS):
                    g = Xs * inv + (0.5 * inv - 0.5)
                    Xs = Ys - cv2.remap(disp, g, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                X[r0:r1, c0:c1] = Xs
        S = self.rig.size
        return cv2.resize(X, (S, S), interpolation=cv2.INTER_LINEAR)

    def warp(self, m: MotionFrame) -> tuple[FrameGeometry, np.ndarray | None, BandMap | None]:
        """The frame's geometry, its per-pixel source map (S, S, 2) with the lip band inverted
        exactly (None: no motion, the frame is the crop), and the lip band (None: no expression
        change)."""
        geo, E = self.geometry(m)
        smap = self.source_map(m, E)
        band = None
        if smap is not None and self._band and E.any():
            band = BandMap(self.lips, geo.landmarks, geo.rigid_landmarks, self.rig.size)
            band.apply(smap)
        return geo, smap, band

    def render(self, m: MotionFrame) -> np.ndarray:
        """The frame (S, S, 3) uint8 RGB for one motion frame."""
        geo, smap, band = self.warp(m)
        if smap is None:
            frame = self.rig.image.copy()
        else:
            # photo and person mask warped together (one RGBA remap), and the background too
            # (sources padded by `pad`: see `_pad_sources`)
            sm = cv2.add(smap, (float(self.pad), float(self.pad), 0.0, 0.0), dst=smap)
            warped = cv2.remap(self._rgba_pad, sm, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            bg_then = cv2.remap(self._bg_pad, sm, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            # the photo is a mix a * person + (1 - a) * background at soft edges (hair): swap the
            # background that came along with the warp for the one that is there now, so edges
            # keep their own blend (no pale rim) and a still pixel stays the photo's
            keep = cv2.subtract(255, warped[..., 3])
            swap = cv2.multiply(cv2.subtract(self._bg, bg_then, dtype=cv2.CV_16S), cv2.merge([keep, keep, keep]),
                                scale=1.0 / 255.0, dtype=cv2.CV_16S)
            frame = cv2.add(warped[..., :3], swap, dtype=cv2.CV_8U)
        for eye in self.eyes:
            composite_eye(frame, eye, m.gaze, geo.rigid_landmarks, geo.landmarks)
        composite_mouth(frame, self.mouth, geo.landmarks, geo.teeth_upper, geo.teeth_lower, self.photo_gap)
        if band is not None:
            band.shade(frame)
        return frame


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def render_frame(rig: FaceRig, motion: MotionFrame) -> np.ndarray:
    """One-off render of a single frame (builds a Renderer; keep one for many frames)."""
    return Renderer(rig).render(motion)


class FullFramePaster:
    """Pastes animated crops back into the whole photo (`--full-frame`), feathered at the seam.

    The photo is scaled so the face keeps the crop's resolution, capped at `max_side` pixels,
    with even dimensions for H.264.
    """

    def __init__(self, rig: FaceRig, max_side: int = 1920):
        x0, y0, side = rig.crop_box
        h, w = rig.photo.shape[:2]
        s = min(rig.size / side, max_side / max(h, w))
        W, H = max(2, int(w * s) // 2 * 2), max(2, int(h * s) // 2 * 2)
        self.photo = cv2.resize(rig.photo, (W, H), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        self.shape = (H, W)
        # crop pixel -> full-frame pixel: crop pixel u shows photo pixel x = x0 + u * side / size
        # (`FaceRig.crop_box`), and resizing maps photo pixel x to (x + 0.5) * W / w - 0.5
        sx, sy = W / w, H / h
        k = side / rig.size
        self.matrix = np.float32([[sx * k, 0, sx * (x0 + 0.5) - 0.5], [0, sy * k, sy * (y0 + 0.5) - 0.5]])
        # feathered only on the sides that lie inside the photo: where the crop reaches (or, with
        # its fill, runs past) the photo's edge, the animated crop goes right up to that edge
        feather = max(2.0, 0.03 * rig.size)
        i = np.arange(rig.size)
        far = np.full(rig.size, np.inf)
        lo, hi = i / feather, (rig.size - 1 - i) / feather   # exactly 0 on a feathered side's last pixel
        rx = np.minimum(far if x0 <= 0.5 else lo, far if x0 + side >= w - 0.5 else hi)
        ry = np.minimum(far if y0 <= 0.5 else lo, far if y0 + side >= h - 0.5 else hi)
        edge = np.clip(np.minimum(ry[:, None], rx[None, :]), 0, 1).astype(np.float32)
        # replicated past the crop: 0 beyond feathered sides; 1 in the sub-pixel sliver between an
        # open side and the photo's edge (no darkened first row)
        self.mask = cv2.warpAffine(edge, self.matrix, (W, H), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)[..., None]

    def paste(self, frame: np.ndarray) -> np.ndarray:
        """The full picture (H, W, 3) uint8 with `frame` (S, S, 3) pasted in."""
        H, W = self.shape
        big = cv2.warpAffine(frame, self.matrix, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = self.photo + self.mask * (big.astype(np.float32) - self.photo)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
