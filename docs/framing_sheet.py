"""Framing contact sheet (issue 11) and the streak numbers behind it.

    python docs/framing_sheet.py                 # writes docs/framing_sheet.png, prints numbers
    python docs/framing_sheet.py --numbers-only  # streak shares only (also runs on old trees)
    python docs/framing_sheet.py --before old.png  # add a saved "before" strip (the old code's)

Photos: a tight headshot with the chin at the bottom edge (matplotlib's grace_hopper.jpg, cut),
the astronaut with the face touching the left edge (skimage, cut), and the whole astronaut photo
(hair against a plain background) for a +-20 degree head turn.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from facecast.face.image_io import load_image  # noqa: E402
from facecast.face.rig import build_rig  # noqa: E402
from facecast.face.tracking import FaceTracker  # noqa: E402
from facecast.motion.types import MotionFrame  # noqa: E402
from facecast.rendering.renderer import Renderer  # noqa: E402

BANDS = ("top", "bottom", "left", "right")


def photos() -> dict[str, np.ndarray]:
    hop = load_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    ast = skimage.data.astronaut()
    return {"hopper_tight_chin": np.ascontiguousarray(hop[30:336, 95:425]),
            "astronaut_left_edge": np.ascontiguousarray(ast[:, 185:]),
            "hopper": hop, "astronaut": ast}


def streak(img, band, frac=0.2, region=None):
    """Share of pixels that look like copied rows/columns (see facecast.face.framing.streak_share)."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if band in ("left", "right"):
        g = g.T
        region = None if region is None else region.T
    across = np.abs(np.diff(g, axis=0))[:, :-1]
    along = np.abs(np.diff(g, axis=1))[:-1, :]
    s = (across <= 1.0) & (along >= 4.0)
    if region is not None:
        m = region[:-1, :-1]
        return float(s[m].mean())
    n = max(1, round(frac * g.shape[0]))
    return float((s[:n] if band in ("top", "left") else s[-n:]).mean())


def photo_mask(rig) -> np.ndarray:
    x0, y0, side = rig.crop_box
    S = rig.size
    h, w = rig.photo.shape[:2]
    u = x0 + np.arange(S) * side / S
    v = y0 + np.arange(S) * side / S
    return ((v >= 0) & (v <= h - 1))[:, None] & ((u >= 0) & (u <= w - 1))[None, :]


def band_mask(S, band, frac=0.2):
    n = max(1, round(frac * S))
    m = np.zeros((S, S), bool)
    {"top": m[:n], "bottom": m[-n:], "left": m[:, :n], "right": m[:, -n:]}[band][...] = True
    return m


def numbers(rigs) -> dict:
    out = {}
    for name, rig in rigs.items():
        f0 = rig.image
        inside = photo_mask(rig)
        own = {}
        for b in BANDS:  # the photo's own value: its pixels in the same band (or all of them)
            m = inside & band_mask(f0.shape[0], b)
            own[b] = streak(f0, b, region=m if m.sum() >= 0.25 * band_mask(f0.shape[0], b).sum() else inside)
        out[name] = {b: (round(streak(f0, b), 4), round(own[b], 4)) for b in BANDS}
    return out


def label(img, text):
    img = img.copy()
    cv2.putText(img, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--numbers-only", action="store_true")
    ap.add_argument("--save-strip", help="save the frame-0 strip of these photos (for a later 'before')")
    ap.add_argument("--before", help="a strip saved by --save-strip from the old code")
    ap.add_argument("--out", default=str(Path(__file__).with_name("framing_sheet.png")))
    a = ap.parse_args()
    ph = photos()
    with FaceTracker() as t:
        rigs = {k: build_rig(v, 512, tracker=t) for k, v in ph.items()}
    for k, v in numbers(rigs).items():
        print(k, "crop_box", [round(c, 1) for c in rigs[k].crop_box], " band: (frame 0, photo's own)", v)
    strip = np.hstack([cv2.resize(label(rigs[k].image, k), (384, 384), interpolation=cv2.INTER_AREA)
                       for k in ("hopper_tight_chin", "astronaut_left_edge")])
    if a.save_strip:
        cv2.imwrite(a.save_strip, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    if a.numbers_only:
        return
    rows = []
    if a.before:
        rows.append(label(cv2.cvtColor(cv2.imread(a.before), cv2.COLOR_BGR2RGB), "BEFORE (replicated borders)"))
    rows.append(label(strip, "AFTER"))
    # the input photos, as they are
    ins = np.hstack([cv2.resize(label(cv2.copyMakeBorder(ph[k], *pad(ph[k]), cv2.BORDER_CONSTANT, value=(40, 40, 40)),
                                      "input"), (384, 384), interpolation=cv2.INTER_AREA)
                     for k in ("hopper_tight_chin", "astronaut_left_edge")])
    rows.insert(0, ins)
    W = max(r.shape[1] for r in rows)
    rows = [cv2.copyMakeBorder(r, 0, 0, 0, W - r.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255)) for r in rows]
    # head turn on the astronaut: -20, 0, +20 degrees yaw, and zoomed hair edges
    r = Renderer(rigs["astronaut"])
    turn = []
    for yaw in (-20, 0, 20):
        f = r.render(MotionFrame(rotation=np.array([0, yaw, 0], np.float32)))
        turn.append(label(cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA), f"yaw {yaw:+d}"))
        lm = rigs["astronaut"].landmarks
        x, y = int(lm[234, 0]) - 70, int(lm[10, 1]) - 60
        x, y = max(0, x), max(0, y)
        z = cv2.resize(f[y:y + 128, x:x + 128], (256, 256), interpolation=cv2.INTER_NEAREST)
        turn.append(label(z, "hair x2"))
    trow = np.hstack(turn)
    W = max(W, trow.shape[1])
    rows = [cv2.copyMakeBorder(x, 0, 0, 0, W - x.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
            for x in rows + [trow]]
    sheet = np.vstack(rows)
    cv2.imwrite(a.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print("wrote", a.out, sheet.shape)


def pad(img):
    h, w = img.shape[:2]
    s = max(h, w)
    return (s - h) // 2, s - h - (s - h) // 2, (s - w) // 2, s - w - (s - w) // 2


if __name__ == "__main__":
    main()
