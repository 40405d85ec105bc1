"""Lip-sync evaluation benchmark: seconds of wall time per second of audio evaluated, by stage
(generate, render, re-track), at render sizes 256 and 512, on the English test sentences.

    python bench/bench_eval.py [--sizes 256,512] [--languages en]
"""
import argparse
import time

import matplotlib.cbook

from facecast.evaluation.lipsync import TEST_SENTENCES, evaluate_lipsync, tts_clip
from facecast.evaluation.metrics import combine_reports
from facecast.face.rig import build_rig
from facecast.face.tracking import FaceTracker
from facecast.pipeline import Animator


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--languages", default="en")
    args = ap.parse_args()
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    clips = [tts_clip(text, lang) for lang in args.languages.split(",") for text in TEST_SENTENCES[lang]]
    print(f"{'size':>5} {'audio s':>8} {'wall s':>7} {'s per s':>8} {'generate':>9} {'render':>7} {'track':>7}")
    with FaceTracker(max_faces=1) as tracker:
        for size in (int(s) for s in args.sizes.split(",")):
            animator = Animator(photo, rig=build_rig(photo, size, tracker=tracker))
            t0 = time.perf_counter()
            reps = [evaluate_lipsync(a, sr, ph, animator, 25.0, tracker=tracker) for a, sr, ph in clips]
            wall = time.perf_counter() - t0
            o = combine_reports(reps)
            s, d = o.seconds, o.duration_s
            print(f"{size:>5} {d:8.1f} {wall:7.2f} {wall / d:8.3f} {s['generate'] / d:9.3f} {s['render'] / d:7.3f} "
                  f"{s['track'] / d:7.3f}")


if __name__ == "__main__":
    main()
