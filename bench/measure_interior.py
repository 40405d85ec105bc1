"""Mouth interior against real video (issue 10): per clip, the interior measures of open-mouth
frames for the real clip and for facecast's render of its first frame, and the ratio.

    python bench/measure_interior.py [clip ...]      (default: every clip in ../shared/real)

Development only: the clips are not shipped; without them this prints a message and exits 0.
"""
import math
import sys
from pathlib import Path

import facecast.pipeline  # noqa: F401  (the renderer is imported up front)
from facecast.evaluation.interior import interior_probe
from facecast.evaluation.real import INTERIOR_MEASURES, evaluate_real_clip


def main(argv):
    clips = [Path(a) for a in argv] or sorted(Path(__file__).resolve().parents[1].joinpath("../shared/real").glob("*.mp4"))
    if not clips:
        print("no clips (../shared/real is absent): nothing measured")
        return 0
    print("clip".ljust(26) + "".join(f"{k:>26}" for k in INTERIOR_MEASURES))
    for c in clips:
        rep = evaluate_real_clip(c, size=512, probe=interior_probe)
        cells = []
        for k in INTERIOR_MEASURES:
            d = rep.interior[k]
            f = lambda v: "-" if v is None or math.isnan(v) else f"{v:.3f}"  # noqa: E731
            cells.append(f"{f(d['real'])}/{f(d['facecast'])} x{f(d['ratio'])}".rjust(26))
        print(c.stem[:25].ljust(26) + "".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
