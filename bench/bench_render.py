"""Renderer benchmark: rig build time, per-stage milliseconds and frames per second at 256/512/1024.

Runs on one core (OpenCV threads = 1) unless --threads is given. Prints a table.
    python bench/bench_render.py [--frames 200] [--threads 1]
"""
import argparse
import os
import resource
import time

import cv2
import matplotlib.cbook

from facecast.face.rig import build_rig
from facecast.face.tracking import FaceTracker
from facecast.motion.presets import preset_motion
from facecast.rendering.renderer import Renderer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    motion = preset_motion("talk", args.frames / 25.0, 25.0)
    tracker = FaceTracker()
    build_rig(photo, 512, tracker=tracker)  # warm-up: graph start-up is paid once per process
    print(f"facecast renderer benchmark, opencv threads={args.threads}, {args.frames} frames of the 'talk' preset")
    print(f"{'size':>6} {'rig ms':>8} {'renderer ms':>12} {'geometry':>9} {'warp map':>9} {'frame':>8} {'fps':>7}")
    for size in (256, 512, 1024):
        t0 = time.perf_counter()
        rig = build_rig(photo, size, tracker=tracker)
        t1 = time.perf_counter()
        r = Renderer(rig)
        t2 = time.perf_counter()
        geo_t = map_t = 0.0
        for m in list(motion)[:50]:
            a = time.perf_counter()
            _, E = r.geometry(m)
            b = time.perf_counter()
            r.source_map(m, E)
            c = time.perf_counter()
            geo_t += b - a
            map_t += c - b
        frames = list(motion)
        a = time.perf_counter()
        for m in frames:
            r.render(m)
        total = time.perf_counter() - a
        print(f"{size:>6} {1000 * (t1 - t0):>8.1f} {1000 * (t2 - t1):>12.1f} {1000 * geo_t / 50:>9.2f} "
              f"{1000 * map_t / 50:>9.2f} {1000 * total / len(frames):>8.2f} {len(frames) / total:>7.1f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB; 'frame' is the whole render (warp map + remap + composite + eyes + mouth)")


if __name__ == "__main__":
    main()
