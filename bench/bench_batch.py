"""Batch benchmark: throughput of `facecast batch` with 1 and 2 local workers and on local Ray,
as × real time, and the per-job overhead. Prints a table.

    python bench/bench_batch.py [--jobs 6] [--seconds 5] [--size 512] [--no-ray]

Each engine renders the same manifest: `--jobs` jobs of `--seconds` of eSpeak speech on two
portraits (Grace Hopper, Eileen Collins). The per-job overhead is measured on the same number
of 0.2-second jobs: their wall time per job, less the video they make at the long jobs' speed
(process start, rig builds, opening files; mostly amortised by the workers' rig cache).
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data

import facecast
from facecast.audio.io import SAMPLE_RATE, resample, save_wav
from facecast.audio.speech import synthesize

TEXT = ("The quick brown fox jumps over the lazy dog, and maybe Bob can map a big apple. "
        "Remember: a ship in port is safe, but that is not what ships are built for.")


def make_inputs(d: Path, jobs: int, seconds: float, size: int) -> tuple[Path, Path]:
    cv2.imwrite(str(d / "hopper.jpg"), cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    cv2.imwrite(str(d / "astronaut.png"), skimage.data.astronaut()[:, :, ::-1])
    audio, sr, _ = synthesize(TEXT, "en")
    x = resample(audio, sr, SAMPLE_RATE)
    n = int(seconds * SAMPLE_RATE)
    save_wav(d / "long.wav", np.resize(x, n), SAMPLE_RATE)
    save_wav(d / "tiny.wav", x[:int(0.2 * SAMPLE_RATE)], SAMPLE_RATE)
    manifests = []
    for kind in ("long", "tiny"):
        rows = [{"image": ["hopper.jpg", "astronaut.png"][i % 2], "audio": f"{kind}.wav", "output": f"{kind}{i}.mp4",
                 "size": size, "seed": i} for i in range(jobs)]
        m = d / f"{kind}.jsonl"
        m.write_text("".join(json.dumps(r) + "\n" for r in rows))
        manifests.append(m)
    return manifests[0], manifests[1]


def run(manifest: Path, out: Path, engine: str, workers: int | None) -> tuple[facecast.BatchSummary, float]:
    t0 = time.perf_counter()
    s = facecast.batch(manifest, out, engine=engine, workers=workers)
    assert s.failed == 0, [r.reason for r in s.results if r.status == "failed"]
    return s, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    engines = [("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", None)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        long_m, tiny_m = make_inputs(d, args.jobs, args.seconds, args.size)
        for engine, workers in engines:
            if engine == "ray":
                import ray
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                s, wall = run(long_m, d / f"out-{engine}{workers}", engine, workers)
                t, twall = run(tiny_m, d / f"tiny-{engine}{workers}", engine, workers)
            finally:
                if engine == "ray":
                    ray.shutdown()
            speed = s.video_s / wall
            overhead = (twall - t.video_s / speed) / args.jobs
            rows.append((engine, workers or "1 actor / 2 CPUs", args.jobs, s.video_s, wall, speed, overhead * 1e3))
    print(f"facecast batch benchmark: {args.jobs} jobs x {args.seconds:g} s of speech, {args.size} px, "
          f"2 portraits, H.264 + AAC")
    print(f"{'engine':>7} {'workers':>18} {'jobs':>5} {'video s':>8} {'wall s':>7} {'x real time':>12} "
          f"{'overhead ms/job':>16}")
    for e, w, n, v, wall, sp, oh in rows:
        print(f"{e:>7} {str(w):>18} {n:>5} {v:8.1f} {wall:7.1f} {sp:12.2f} {oh:16.0f}")


if __name__ == "__main__":
    main()
