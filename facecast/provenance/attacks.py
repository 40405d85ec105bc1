"""The changes a video goes through after facecast, that the watermark must survive: H.264
re-encoding at CRF 30, downscaling, cropping 10 % off a side, a frame-rate change. Used by the
robustness benchmark (`bench/bench_watermark.py`) and the tests; each reads a video and writes a
new H.264 mp4 the way a re-upload would (libx264, yuv420p)."""
from __future__ import annotations

import os
from fractions import Fraction

import cv2
import numpy as np

#: name -> keyword arguments of `transcode`
ATTACKS: dict[str, dict] = {
    "as rendered": {},
    "H.264 CRF 30": {"crf": 30},
    "downscale 50%": {"scale": 0.5},
    "crop 10% left": {"crop": (0, 0, 0.1, 0)},
    "crop 10% right": {"crop": (0, 0, 0, 0.1)},
    "crop 10% top": {"crop": (0.1, 0, 0, 0)},
    "crop 10% bottom": {"crop": (0, 0.1, 0, 0)},
    "25 -> 30 fps": {"fps": 30},
}


def read_frames(path: str | os.PathLike) -> tuple[list[np.ndarray], float]:
    """All frames of a video as RGB uint8, and its frame rate."""
    import av
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 25)
        return [f.to_ndarray(format="rgb24") for f in c.decode(s)], fps


def write_frames(path: str | os.PathLike, frames: list[np.ndarray], fps: float, crf: int = 23) -> None:
    import av
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def transform(frames: list[np.ndarray], fps: float, scale: float | None = None,
              crop: tuple[float, float, float, float] | None = None, new_fps: float | None = None):
    """Crop (top, bottom, left, right fractions), rescale, and resample in time (nearest earlier
    frame, as a player or an upload service does); even sizes for yuv420p."""
    out = []
    for f in frames:
        if crop is not None:
            h, w = f.shape[:2]
            t, b, l, r = crop
            f = f[int(round(t * h)):h - int(round(b * h)), int(round(l * w)):w - int(round(r * w))]
        if scale is not None:
            f = cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = f.shape[:2]
        out.append(np.ascontiguousarray(f[:h // 2 * 2, :w // 2 * 2]))
    if new_fps is not None and new_fps != fps:
        n = int(len(out) * new_fps / fps)
        out = [out[min(len(out) - 1, int(i * fps / new_fps))] for i in range(n)]
        fps = new_fps
    return out, fps


def transcode(src: str | os.PathLike, dst: str | os.PathLike, crf: int = 23, scale: float | None = None,
              crop: tuple[float, float, float, float] | None = None, fps: float | None = None) -> None:
    """Read `src`, change it, and write `dst` as H.264 at `crf` (23 is libx264's default)."""
    frames, rate = read_frames(src)
    frames, rate = transform(frames, rate, scale, crop, fps)
    write_frames(dst, frames, rate, crf)
