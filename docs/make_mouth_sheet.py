"""Render the mouth-interior contact sheet (issue 10): the mouth zoomed in at four openings on a
closed-mouth photo (Grace Hopper, matplotlib's sample data), a teeth-showing photo (Eileen
Collins, `skimage.data.astronaut()`), a grayscale photo (Grace Hopper in gray), a sepia photo and a
painting (Grace Hopper through OpenCV's edge-preserving `stylization`, a painted look).

    python docs/make_mouth_sheet.py   ->   docs/mouth_sheet.png
"""
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data

from facecast.face.rig import build_rig
from facecast.face.tracking import FaceTracker
from facecast.motion.types import MotionFrame
from facecast.rendering.renderer import Renderer

SIDE = 512        # render size
TILE = 240        # mouth tile width
OPENINGS = [("closed", {}),
            ("ajar", {"jawOpen": 0.15}),
            ("/e/", {"jawOpen": 0.3, "mouthStretchLeft": 0.2, "mouthStretchRight": 0.2}),
            ("/a/ wide", {"jawOpen": 0.65, "mouthLowerDownLeft": 0.2, "mouthLowerDownRight": 0.2}),
            ("/o/", {"jawOpen": 0.45, "mouthFunnel": 0.5, "mouthPucker": 0.3})]


def label(img, text):
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def photos():
    grace = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))[:, :, ::-1]
    gray = cv2.cvtColor(cv2.cvtColor(grace, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    sepia = np.clip(gray.astype(np.float32) * np.float32([1.07, 0.9, 0.68]), 0, 255).astype(np.uint8)
    painting = cv2.stylization(grace[:, :, ::-1].copy(), sigma_s=40, sigma_r=0.35)[:, :, ::-1]
    return [("Grace Hopper (closed)", grace), ("astronaut (teeth)", skimage.data.astronaut()),
            ("grayscale", gray), ("sepia", sepia), ("painting (stylized)", painting)]


def row(photo, name, tracker):
    rig = build_rig(photo, SIDE, tracker=tracker)
    r = Renderer(rig)
    c = rig.landmarks[[13, 14], :2].mean(0) + [0, 0.08 * rig.face_scale]
    half_w = 0.5 * rig.face_scale
    half_h = half_w * 0.6
    x0, y0, x1, y1 = int(c[0] - half_w), int(c[1] - half_h), int(c[0] + half_w), int(c[1] + half_h)
    tiles = []
    for lab, w in OPENINGS:
        f = r.render(MotionFrame(blendshapes=w))
        m = cv2.resize(f[y0:y1, x0:x1], (TILE, int(TILE * (y1 - y0) / (x1 - x0))), interpolation=cv2.INTER_NEAREST)
        tiles.append(label(m, f"{name}: {lab}" if not tiles else lab))
    return np.concatenate(tiles, 1)


def main():
    with FaceTracker(max_faces=1) as tracker:
        sheet = np.concatenate([row(p, n, tracker) for n, p in photos()], 0)
    out = Path(__file__).with_name("mouth_sheet.png")
    cv2.imwrite(str(out), sheet[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(out)


if __name__ == "__main__":
    main()
