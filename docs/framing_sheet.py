"""Framing contact sheet (issue 11) and the streak numbers behind it.

    python docs/framing_sheet.py                 # writes docs/framing_sheet.png, prints numbers
    python docs/framing_sheet.py --numbers-only  # streak shares only (also runs on old trees)
    python docs/framing_sheet.py --save-rows old.npz   # (run on the old code) its rows, for --before
    python docs/framing_sheet.py --before old.npz      # the sheet with the old code's rows above

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
from facecast.face.image_io import load_image
from facecast.face.rig import build_rig
from facecast.face.tracking import FaceTracker
from facecast.motion.types import MotionFrame
from facecast.rendering.renderer import Renderer

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


def rows_of(rigs) -> dict[str, np.ndarray]:
    """The sheet's rows for one version of the code: frame 0 of the edge photos, and a -20/0/+20
    degree head turn of the astronaut with her hair's edge against the backdrop zoomed x2."""
    f0 = np.hstack([cv2.resize(label(rigs[k].image, k), (384, 384), interpolation=cv2.INTER_AREA)
                    for k in ("hopper_tight_chin", "astronaut_left_edge")])
    rig = rigs["astronaut"]
    r = Renderer(rig)
    lm = rig.landmarks
    w = float(lm[454, 0] - lm[234, 0])
    # the hair's outer edge on the left, against the backdrop (where a turn uncovers it)
    cy = int(lm[10, 1] + 0.3 * w)
    cx = int(np.argmax(rig.masks["person"][cy] > 128)) if "person" in rig.masks else int(lm[234, 0] - 0.3 * w)
    x, y = max(0, cx - 64), max(0, cy - 64)
    turn, hair = [], []
    for yaw in (-20, 0, 20):
        f = r.render(MotionFrame(blendshapes=rig.expression.weights, rotation=np.array([0, yaw, 0], np.float32)))
        turn.append(label(cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA), f"yaw {yaw:+d}"))
        hair.append(label(cv2.resize(f[y:y + 128, x:x + 128], (256, 256), interpolation=cv2.INTER_CUBIC),
                          f"hair edge x2, yaw {yaw:+d}"))
    # the face at the left edge turning: nothing smeared or mirrored in from the edge
    edge = []
    r = Renderer(rigs["astronaut_left_edge"])
    w0 = rigs["astronaut_left_edge"].expression.weights
    for yaw in (-20, 0, 20):
        f = r.render(MotionFrame(blendshapes=w0, rotation=np.array([0, yaw, 0], np.float32)))
        edge.append(label(cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA), f"left edge, yaw {yaw:+d}"))
    return {"frame0": f0, "edge_turn": np.hstack(edge), "turn": np.hstack(turn), "hair": np.hstack(hair)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--numbers-only", action="store_true")
    ap.add_argument("--save-rows", help="save this code's rows (.npz), to show as 'before' later")
    ap.add_argument("--before", help="rows saved by --save-rows from the old code")
    ap.add_argument("--out", default=str(Path(__file__).with_name("framing_sheet.png")))
    a = ap.parse_args()
    ph = photos()
    with FaceTracker() as t:
        rigs = {k: build_rig(v, 512, tracker=t) for k, v in ph.items()}
    for k, v in numbers(rigs).items():
        print(k, "crop_box", [round(c, 1) for c in rigs[k].crop_box], " band: (frame 0, photo's own)", v)
    if a.numbers_only and not a.save_rows:
        return
    rows = rows_of(rigs)
    if a.save_rows:
        np.savez_compressed(a.save_rows, **rows)
        return
    ins = np.hstack([cv2.resize(label(cv2.copyMakeBorder(ph[k], *pad(ph[k]), cv2.BORDER_CONSTANT, value=(40, 40, 40)),
                                      f"input {k}"), (384, 384), interpolation=cv2.INTER_AREA)
                     for k in ("hopper_tight_chin", "astronaut_left_edge")])
    out = [ins]
    old = dict(np.load(a.before)) if a.before else None
    for key in ("frame0", "edge_turn", "turn", "hair"):
        if old is not None:
            out.append(banner("BEFORE: replicated borders, background kept the hair's fringe" if key == "frame0" else "BEFORE"))
            out.append(old[key])
        out.append(banner("AFTER: crop shifted/tightened, fill past the edge, soft matte" if key == "frame0" else "AFTER"))
        out.append(rows[key])
    sheet = np.vstack(out)
    cv2.imwrite(a.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print("wrote", a.out, sheet.shape)


def banner(text, width=768):
    b = np.full((28, width, 3), 255, np.uint8)
    cv2.putText(b, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return b


def pad(img):
    h, w = img.shape[:2]
    s = max(h, w)
    return (s - h) // 2, s - h - (s - h) // 2, (s - w) // 2, s - w - (s - w) // 2


if __name__ == "__main__":
    main()
