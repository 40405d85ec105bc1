"""Render docs/emotion_sheet.png: every emotion at intensity 1 on three photos (Grace Hopper, with
glasses; Eileen Collins, `skimage.data.astronaut()`, who smiles in her photo; and, in grayscale, a
broadly smiling White House photograph from face_recognition 1.3.0's source archive on PyPI,
fetched and hash-checked by `tests/registry_files.py`; left out when it cannot be had), labelled, with a
neutral tile first.

    python docs/make_emotion_sheet.py  ->  docs/emotion_sheet.png
"""
import sys
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data

from facecast.evaluation.emotions import emotion_weights
from facecast.face.rig import build_rig
from facecast.motion.controls import EMOTIONS
from facecast.motion.types import MotionFrame
from facecast.rendering.renderer import Renderer


def main(size: int = 384, crop: float = 0.0):
    photos = [matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), skimage.data.astronaut()]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    try:
        from registry_files import registry_file
        gray = cv2.cvtColor(cv2.imread(str(registry_file("obama.jpg"))), cv2.COLOR_BGR2GRAY)
        photos.append(np.repeat(gray[:, :, None], 3, 2))
    except Exception as e:  # noqa: BLE001 - the sheet is still useful without it
        print(f"grayscale row left out: {e}")
    rows = []
    for p in photos:
        r = Renderer(build_rig(p, size))
        tiles = []
        for e in EMOTIONS:
            f = np.ascontiguousarray(r.render(MotionFrame(blendshapes=emotion_weights(e, 1.0))))
            cv2.putText(f, e, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 4, cv2.LINE_AA)
            cv2.putText(f, e, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
            tiles.append(f)
        rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    sheet = cv2.resize(sheet, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
    out = Path(__file__).with_name("emotion_sheet.png")
    cv2.imwrite(str(out), sheet[:, :, ::-1])
    print(out)


if __name__ == "__main__":
    main()
