"""Render the singing contact sheet: a real a-cappella recording (`vocadito_10.wav`, Vocadito,
CC BY 4.0, from basic-pitch 0.4.0's source archive on PyPI, fetched and hash-checked by
`tests/registry_files.py`) sung by three portraits, one row each, at moments picked from the clip:
a breath between phrases, and the widest held notes. Under the rows, the commanded jaw opening
over the clip with the sheet's moments marked.

    python docs/make_singing_sheet.py   ->   docs/singing_sheet.png
"""
import sys
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data

from facecast.audio.acoustics import HOP_S, analyze
from facecast.audio.io import load_audio
from facecast.motion.generator import generate_motion
from facecast.motion.types import BLENDSHAPE_INDEX as BI
from facecast.pipeline import Animator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from registry_files import registry_file  # noqa: E402

FPS = 25.0
SIDE = 384     # render size
TILE = 224     # face tile


def label(img, text):
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main(out=Path(__file__).with_name("singing_sheet.png")):
    song = load_audio(registry_file("vocadito_10.wav"))
    motion = generate_motion(song, fps=FPS)
    jaw = motion.blendshapes[:, BI["jawOpen"]]
    f = analyze(song)
    t = np.arange(len(motion)) / FPS
    loud = np.interp(t, (np.arange(len(f)) + 0.5) * HOP_S, f.loudness)
    breath = int(np.flatnonzero((loud < 0.05) & (t > 1.0))[0])
    widest = [int(i) for i in np.argsort(-jaw) if abs(i - breath) > 5]
    picks = [breath]
    for i in widest:
        if all(abs(i - j) > 25 for j in picks):
            picks.append(i)
        if len(picks) == 5:
            break
    picks.sort()
    photos = [str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
              skimage.data.astronaut(), str(registry_file("obama.jpg"))]
    rows = []
    for photo in photos:
        animator = Animator(photo, size=SIDE)
        tiles = []
        for i in picks:
            frame = animator.frame(motion[i])
            y0, x0 = SIDE // 2 - TILE // 2 + 30, SIDE // 2 - TILE // 2
            tile = np.ascontiguousarray(frame[y0:y0 + TILE, x0:x0 + TILE, ::-1])
            tiles.append(label(tile, f"{t[i]:.2f} s {'breath' if i == breath else 'note'}"))
        rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    strip = np.full((90, sheet.shape[1], 3), 255, np.uint8)
    xs = (t / t[-1] * (sheet.shape[1] - 1)).astype(int)
    ys = (85 - jaw / max(jaw.max(), 1e-6) * 75).astype(int)
    cv2.polylines(strip, [np.stack([xs, ys], 1).astype(np.int32)], False, (40, 40, 200), 2, cv2.LINE_AA)
    for i in picks:
        cv2.line(strip, (int(xs[i]), 0), (int(xs[i]), 89), (120, 120, 120), 1)
    cv2.putText(strip, "jawOpen over the clip", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(out), np.concatenate([sheet, strip], 0))
    print(out)


if __name__ == "__main__":
    main()
