"""Capture and drive on real clips: capture speed, blinks and lip closures per clip; then drive
Grace Hopper with each clip and re-track both videos (mouth-opening correlation, head-pose
standard deviation ratio, blink counts), as issue 14 measures them.

    python bench/bench_capture.py [CLIP ...]      # default: every .mp4 in ../shared/real
    taskset -c 0 python bench/bench_capture.py    # capture speed on one core

Clips are not part of the project; without any, the script says so and exits.
"""
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.cbook
import numpy as np

from facecast.capture import capture, events
from facecast.capture.core import iter_frames
from facecast.evaluation.retrack import eye_openness, measure
from facecast.face import topology as topo
from facecast.face.headpose import relative_pose
from facecast.face.tracking import FaceTracker
from facecast.pipeline import Animator

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real"


def blink_count(open_: np.ndarray) -> int:
    """Blinks in a per-frame eye-openness track: dips below 80 % of the clip's median (the face
    mesh reads a rendered full blink as a 25 % dip, a real one as 40-70 %)."""
    x = open_ / np.median(open_)
    n, armed = 0, True
    for v in x:
        if armed and v < 0.8:
            n, armed = n + 1, False
        elif v > 0.9:
            armed = True
    return n


def track(path: Path, rig=None):
    """Per frame: lip gap, mean eye openness, pose (relative to the first frame, or to the rig)."""
    gaps, eyes, poses = [], [], []
    ref = None
    with FaceTracker(max_faces=1, video=True) as tr:
        for f in iter_frames(path, 1024):
            if rig is not None:
                m = measure(tr, rig, f)
                if m is None:
                    continue
                lm, pose = m.landmarks, m.pose
            else:
                faces = tr.landmarks(f)
                if not faces:
                    continue
                lm = faces[0].landmarks
                ref = lm if ref is None else ref
                pose = relative_pose(ref, lm)[0]
            gaps.append(topo.lip_gap(lm))
            eyes.append(np.mean(eye_openness(lm)))
            poses.append(pose)
    return np.array(gaps), np.array(eyes), np.array(poses)


def main(clips):
    if not clips:
        print(f"no clips given and none in {REAL}; nothing to measure")
        return
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    anim = Animator(photo, size=512, watermark=False)
    for clip in clips:
        clip = Path(clip)
        t0 = time.perf_counter()
        motion, report = capture(clip)
        cap_s = time.perf_counter() - t0
        ev = events(motion)
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "drive.mp4"
            t0 = time.perf_counter()
            res = anim.drive(clip, out)
            drive_s = time.perf_counter() - t0
            g_gap, g_eye, g_pose = track(out, anim.rig)
        d_gap, d_eye, d_pose = track(clip)
        n = min(len(g_gap), len(d_gap))
        r = np.corrcoef(g_gap[:n], d_gap[:n])[0, 1]
        ratio = g_pose.std(0) / np.maximum(d_pose.std(0), 1e-6)
        print(f"{clip.name}: {len(motion)} frames, capture {len(motion) / cap_s:.1f} fps, "
              f"no face {report.interpolated}; captured blinks {ev['blinks']}, lip closures {ev['closures']}, "
              f"closed {100 * ev['closed_fraction']:.0f} % | drive {res.frames / drive_s:.1f} fps end to end; "
              f"mouth r {r:.2f}; pose std ratio (pitch, yaw, roll) {np.round(ratio, 2).tolist()}; "
              f"blinks re-tracked driver {blink_count(d_eye)} / driven {blink_count(g_eye)}")


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(str(p) for p in REAL.glob("*.mp4")))
