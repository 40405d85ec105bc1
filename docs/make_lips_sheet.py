"""Render the README's lips contact sheet: photos that show their teeth or an open mouth, each next
to renders at rest, on /m/, on /a/ and smiling (blendshape weights are absolute, so each target is
the same whatever the photo shows); under each row, the mouths zoomed in (1.2 eye-corner distances wide).

    python docs/make_lips_sheet.py   ->   docs/lips_sheet.png

Photos: `skimage.data.astronaut()` (Eileen Collins, NASA, public domain) and two White House
photographs (public domain) from face_recognition 1.3.0's source archive on PyPI, fetched and
hash-checked by `tests/registry_files.py`.
"""
import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from facecast.face.rig import build_rig
from facecast.motion.types import MotionFrame
from facecast.rendering.renderer import Renderer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from registry_files import registry_file  # noqa: E402

SIDE = 384        # render size
TILE = 256        # face tile
CASES = [("rest", {}),
         ("/m/", {"jawOpen": 0.08, "mouthClose": 0.08, "mouthPressLeft": 0.35, "mouthPressRight": 0.35}),
         ("/a/", {"jawOpen": 0.5, "mouthLowerDownLeft": 0.1, "mouthLowerDownRight": 0.1}),
         ("smile", {"mouthSmileLeft": 0.75, "mouthSmileRight": 0.75, "cheekSquintLeft": 0.5,
                    "cheekSquintRight": 0.5, "eyeSquintLeft": 0.25, "eyeSquintRight": 0.25})]


def label(img, text):
    cv2.putText(img, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def rows_for(photo, name):
    rig = build_rig(photo, SIDE)
    r = Renderer(rig)
    frames = [(f"{name}: photo", rig.image)] + [(lab, r.render(MotionFrame(blendshapes=w))) for lab, w in CASES]
    c = rig.landmarks[[13, 14], :2].mean(0)
    half_w = 0.6 * rig.face_scale
    half_h = half_w * 0.5
    x0, y0 = int(c[0] - half_w), int(c[1] - half_h)
    x1, y1 = int(c[0] + half_w), int(c[1] + half_h)
    faces = [label(cv2.resize(f, (TILE, TILE), interpolation=cv2.INTER_AREA), lab) for lab, f in frames]
    mouths = [cv2.resize(f[y0:y1, x0:x1], (TILE, int(TILE * (y1 - y0) / (x1 - x0))), interpolation=cv2.INTER_CUBIC)
              for _, f in frames]
    return [np.concatenate(faces, 1), np.concatenate(mouths, 1)]


def main():
    photos = [(skimage.data.astronaut(), "teeth"), (str(registry_file("obama.jpg")), "teeth"),
              (str(registry_file("obama2.jpg")), "open mouth")]
    rows = []
    for p, name in photos:
        rows += rows_for(p, name)
    sheet = np.concatenate(rows, 0)
    out = Path(__file__).with_name("lips_sheet.png")
    cv2.imwrite(str(out), sheet[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(out)


if __name__ == "__main__":
    main()
