"""Topology of the MediaPipe 478-point face mesh: named landmark loops and the triangle list.

Indices follow MediaPipe's canonical face mesh (468 surface points + 10 iris points).
"Left"/"right" are the subject's own sides (the subject's left eye appears on the image's right).
"""
from __future__ import annotations

import functools
import itertools

import numpy as np

NUM_LANDMARKS = 478

# Closed loops, ordered around the contour.
LIPS_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
LIPS_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
LIPS_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_INNER_LOWER = [308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78]
LIPS_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_OUTER_LOWER = [291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61]
MOUTH_CORNERS = (61, 291)          # outer corners: subject's right, subject's left
UPPER_LIP_MID, LOWER_LIP_MID = 13, 14  # inner-lip midpoints
# facing points of the upper and lower inner lip, middle first: the lip gap is their mean distance
LIP_GAP_PAIRS = np.array([(13, 14), (82, 87), (312, 317), (81, 178), (311, 402)])

RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
RIGHT_EYE_UPPER = [246, 161, 160, 159, 158, 157, 173]
RIGHT_EYE_LOWER = [155, 154, 153, 145, 144, 163, 7]
LEFT_EYE_UPPER = [466, 388, 387, 386, 385, 384, 398]
LEFT_EYE_LOWER = [382, 381, 380, 374, 373, 390, 249]
RIGHT_EYE_CORNERS = (33, 133)      # outer, inner
LEFT_EYE_CORNERS = (263, 362)
RIGHT_EYE_LIDS = (159, 145)        # upper-lid middle, lower-lid middle
LEFT_EYE_LIDS = (386, 374)
RIGHT_IRIS = [468, 469, 470, 471, 472]  # centre first, then the ring
LEFT_IRIS = [473, 474, 475, 476, 477]

RIGHT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
LEFT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
RIGHT_BROW_INNER, LEFT_BROW_INNER = [107, 55, 66, 65], [336, 285, 296, 295]
RIGHT_BROW_OUTER, LEFT_BROW_OUTER = [70, 46, 63, 53], [300, 276, 293, 283]

FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
FOREHEAD_TOP, CHIN = 10, 152
NOSE_TIP = 1
# Points that stay put when the face changes expression: used to measure head pose.
RIGID_POINTS = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 33, 133, 263, 362,
                127, 356, 234, 454, 162, 389, 21, 251, 54, 284, 103, 332, 109, 338, 67, 297, 116, 345,
                123, 352, 50, 280, 36, 266]
# Symmetric pairs (subject's right, subject's left) used for the photo's head frame.
SYMMETRIC_PAIRS = [(33, 263), (133, 362), (234, 454), (127, 356), (70, 300), (116, 345), (98, 327),
                   (93, 323), (132, 361), (58, 288)]


@functools.lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """Triangles of the 468-point surface mesh, (M, 3) int32, from MediaPipe's edge list.

    MediaPipe publishes the tesselation as edges; a triangle is a 3-clique of that graph.
    The mouth and eye openings are holes in this mesh (see `hole_triangles`).
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION
    adj: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = set()
    for a, nbrs in adj.items():
        for b, c in itertools.combinations(sorted(nbrs), 2):
            if c in adj[b]:
                tris.add(tuple(sorted((a, b, c))))
    return np.array(sorted(tris), np.int32)


def fan_triangles(loop: list[int]) -> np.ndarray:
    """Triangulate a closed loop by zipping its two halves (a strip), (len-2, 3) int32.

    Works for the lip and eye openings, whose loops run along the upper edge and back
    along the lower edge.
    """
    n = len(loop)
    tris = []
    # loop[0] is one corner, loop[n // 2] the other
    upper = loop[: n // 2 + 1]
    lower = [loop[0]] + loop[n // 2:][::-1]
    a = b = 0
    while a < len(upper) - 1 or b < len(lower) - 1:
        if a < len(upper) - 1 and (b >= len(lower) - 1 or a <= b):
            tris.append((upper[a], upper[a + 1], lower[b]))
            a += 1
        else:
            tris.append((upper[a], lower[b], lower[b + 1]))
            b += 1
    return np.array([t for t in tris if len(set(t)) == 3], np.int32)


def hole_triangles() -> np.ndarray:
    """Triangles that close the mouth and both eye openings, (K, 3) int32."""
    return np.concatenate([fan_triangles(LIPS_INNER), fan_triangles(RIGHT_EYE), fan_triangles(LEFT_EYE)])


def lip_gap_px(lm: np.ndarray) -> float:
    """The inner-lip gap: mean distance between facing inner-lip points, (478, 2+) landmarks ->
    pixels. The one lip-gap measure of facecast: the renderer, re-tracking and evaluation use it."""
    return float(np.mean(np.linalg.norm(lm[LIP_GAP_PAIRS[:, 0], :2] - lm[LIP_GAP_PAIRS[:, 1], :2], axis=1)))


def lip_gap(lm: np.ndarray) -> float:
    """`lip_gap_px` in units of the outer eye-corner distance (scale-free), (478, 2+) -> float."""
    return lip_gap_px(lm) / float(np.linalg.norm(lm[LEFT_EYE_CORNERS[0], :2] - lm[RIGHT_EYE_CORNERS[0], :2]))
