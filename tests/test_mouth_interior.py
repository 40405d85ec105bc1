"""The mouth interior (issue 10): lips stay lips, a feathered edge, the image's own palette, two
distinct rows of teeth, and the interior probe that `facecast eval real` can use."""
import cv2
import matplotlib.cbook
import numpy as np
import pytest

from facecast.evaluation.interior import interior_probe
from facecast.face import topology as topo
from facecast.face.rig import build_rig
from facecast.motion.types import MotionFrame
from facecast.rendering.mouth import composite_mouth, opening_alpha, smooth_loop
from facecast.rendering.renderer import Renderer

SIZE = 384
WIDE = {"jawOpen": 0.65, "mouthLowerDownLeft": 0.2, "mouthLowerDownRight": 0.2}


def _grace():
    img = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))[:, :, ::-1]
    return np.ascontiguousarray(img)


@pytest.fixture(scope="module")
def grace(tracker):
    return Renderer(build_rig(_grace(), SIZE, tracker=tracker))


@pytest.fixture(scope="module")
def gray(tracker):
    g = cv2.cvtColor(cv2.cvtColor(_grace(), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return Renderer(build_rig(g, SIZE, tracker=tracker))


def _with_without(r: Renderer, weights):
    """The frame with the mouth interior drawn, the same frame without it, and its geometry."""
    m = MotionFrame(blendshapes=weights)
    geo, smap, _band = r.warp(m)
    if smap is None:
        warped = r.rig.image.copy()
    else:
        warped = np.ascontiguousarray(cv2.remap(r.rig.image, smap, None, cv2.INTER_LINEAR,
                                                borderMode=cv2.BORDER_REPLICATE))
    drawn = warped.copy()
    composite_mouth(drawn, r.mouth, geo.landmarks, geo.teeth_upper, geo.teeth_lower, r.photo_gap)
    return drawn, warped, geo


def _inside(geo, shape, grow=0):
    mask = np.zeros(shape[:2], np.uint8)
    poly = smooth_loop(geo.landmarks[topo.LIPS_INNER])
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    if grow > 0:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    elif grow < 0:
        mask = cv2.erode(mask, np.ones((-2 * grow + 1, -2 * grow + 1), np.uint8))
    return mask > 0


def test_closed_mouth_draws_nothing(grace):
    drawn, warped, _geo = _with_without(grace, {"jawOpen": 0.0})
    assert np.array_equal(drawn, warped)


def test_opening_is_bounded_by_the_inner_lip_outline(grace):
    drawn, warped, geo = _with_without(grace, WIDE)
    changed = np.abs(drawn.astype(int) - warped.astype(int)).max(2) > 2
    assert changed.sum() > 200
    # the lips are never painted over: nothing changes beyond a pixel outside the outline
    assert not np.any(changed & ~_inside(geo, drawn.shape, grow=1))


@pytest.mark.parametrize("size", [256, 512, 1024])
def test_edge_is_feathered(size):
    """The opening fades in over 1-2 px or more inside its outline (no stair-step), and reaches
    at most about a pixel beyond it, at every size."""
    k = size / 512
    poly = np.array([[40, 60], [120, 48], [200, 60], [180, 100], [120, 112], [60, 100]], np.float32) * k
    shape = (int(160 * k), int(240 * k))
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    a = opening_alpha(mask, size)
    inside = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform((mask <= 127).astype(np.uint8), cv2.DIST_L2, 5)
    assert a[outside > (2.5 if size > 512 else 1.5)].max() == 0.0     # bounded by the outline
    assert a[inside > 4.0].min() > 0.95                                # solid inside
    # the ramp: per column through the middle, pixels drawn only partly
    x = shape[1] // 2
    col = a[:, x]
    partial = np.sum((col > 0.05) & (col < 0.95))
    assert partial >= 2 * (2 if size >= 512 else 1)        # 1-2 px or more on each of the two edges


def test_grayscale_photo_gets_a_gray_interior(gray):
    drawn, _warped, geo = _with_without(gray, WIDE)
    inside = _inside(geo, drawn.shape, grow=-2)
    px = drawn[inside].astype(np.int32)
    assert len(px) > 100
    assert int((px.max(1) - px.min(1)).max()) <= 3


def test_interior_lightness_and_two_rows_of_teeth(grace):
    drawn, _warped, geo = _with_without(grace, WIDE)
    vals = interior_probe(drawn, np.c_[geo.landmarks, np.zeros(len(geo.landmarks))])
    assert vals is not None
    assert 0.25 < vals["interior_lightness"] < 0.9
    assert vals["teeth_share"] > 0.05
    # teeth both in the upper and the lower part of the opening (two rows, the lower on the jaw)
    inside = _inside(geo, drawn.shape, grow=-1)
    ys = np.nonzero(inside)[0]
    top, bottom = np.percentile(ys, 25), np.percentile(ys, 75)
    lab = cv2.cvtColor(drawn, cv2.COLOR_RGB2LAB).astype(np.float32)
    bright = (lab[..., 0] > 0.6 * lab[..., 0][inside].max()) & inside
    rows = np.nonzero(bright)[0]
    assert (rows < top).sum() > 20 and (rows > bottom).sum() > 5


def test_lower_lip_keeps_its_thickness(grace):
    r = grace
    lm0 = r.geometry(MotionFrame(blendshapes={}))[0].landmarks
    lm1 = r.geometry(MotionFrame(blendshapes=WIDE))[0].landmarks
    pairs = np.array([(14, 17), (87, 84), (317, 314)])

    def thick(lm):
        return float(np.mean(lm[pairs[:, 1], 1] - lm[pairs[:, 0], 1]))
    assert thick(lm1) >= 0.9 * thick(lm0)


def test_probe_on_a_drawn_mouth(grace):
    # closed: no pixel inside the outline -> None
    lm = np.c_[grace.rig.landmarks[:, :2], np.zeros(478)]
    assert interior_probe(grace.rig.image, lm) is None or \
        interior_probe(grace.rig.image, lm)["teeth_share"] < 0.5
    drawn, _w, geo = _with_without(grace, WIDE)
    v = interior_probe(drawn, np.c_[geo.landmarks, np.zeros(478)])
    assert set(v) == {"interior_lightness", "teeth_share", "edge_contrast", "lower_lip_thickness"}
    assert all(np.isfinite(list(v.values())))
    assert v["lower_lip_thickness"] > 0


def test_sepia_photo_gets_a_sepia_interior(tracker):
    g = cv2.cvtColor(cv2.cvtColor(_grace(), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB).astype(np.float32)
    sepia = np.clip(g * np.float32([1.07, 0.9, 0.68]), 0, 255).astype(np.uint8)
    r = Renderer(build_rig(sepia, SIZE, tracker=tracker))
    drawn, _warped, geo = _with_without(r, WIDE)
    px = drawn[_inside(geo, drawn.shape, grow=-2)].astype(np.float32) + 1
    # every interior colour is (nearly) a shade of the photo's own sepia: R > G > B in its ratios
    ratio = px / px[:, 1:2]
    assert np.all(ratio[:, 0] >= 1.0) and np.all(ratio[:, 2] <= 1.0)
    assert abs(float(np.median(ratio[:, 0])) - 1.07 / 0.9) < 0.15
    assert abs(float(np.median(ratio[:, 2])) - 0.68 / 0.9) < 0.15
