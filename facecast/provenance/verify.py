"""`facecast verify VIDEO|IMAGE`: is this a facecast video? The watermark in the pixels (the part
that survives re-encoding, scaling, cropping and frame-rate changes), the container's tags, and the
C2PA manifest if one is there.

A video is read frame by frame (at most `MAX_SECONDS`): the whole clip's average gives the verdict
and the payload, and each `WINDOW_S` window is also read alone (how much of the clip carries the
mark; a marked stretch inside a longer unmarked video is found by its windows). An image is one frame. The same function serves the CLI and `POST /api/verify`.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import FacecastError
from ..footage import iter_frames, video_rate
from ..inputs import check_input_file
from .metadata import read_manifest, read_tags
from .watermark import Detection, Detector, detect_residual

WINDOW_S = 2.0
MAX_SECONDS = 120.0        # a longer video is read for its first two minutes
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}


def _read_video(path: Path, on_frame) -> None:
    """Decode `path`'s first video track (at most MAX_SECONDS), calling on_frame(rgb) per frame."""
    n = 0
    for rgb in iter_frames(path, max_seconds=MAX_SECONDS):
        on_frame(rgb)
        n += 1
    if n == 0:
        raise FacecastError(f"{path} has no frames")


def _is_image(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_EXTS:
        return True
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError):
        return False


def verify(path: str | os.PathLike) -> dict:
    """Check one video or image. Returns a JSON-ready dict:
    {"file", "kind": "video"|"image", "found", "watermark": {found, confidence, score, payload,
    scale, frames, windows: {"read", "found"}}, "metadata": {...} (the container's tags, {} when
    none), "c2pa": {"present", "valid", ...}}. FacecastError when it is not a readable file."""
    p = check_input_file(path, "file")
    if _is_image(p):
        from ..face.image_io import load_image
        det = Detector()
        det.add(load_image(p))
        result = det.result()
        windows = {"read": 1, "found": int(result.found)}
        kind = "image"
    else:
        whole = Detector()
        window = max(1, int(round(WINDOW_S * video_rate(p))))    # frames per window
        residuals: list[np.ndarray] = []
        window_results: list[Detection] = []

        def on_frame(rgb: np.ndarray) -> None:
            whole.add(rgb)
            residuals.append(whole.last)
            if len(residuals) == window:
                window_results.append(detect_residual(np.mean(residuals, axis=0), window))
                residuals.clear()

        _read_video(p, on_frame)
        if len(residuals) >= window // 2 or not window_results:     # a last window of at least 1 s
            window_results.append(detect_residual(np.mean(residuals, axis=0), len(residuals)))
        result = whole.result()
        if not result.found and any(d.found for d in window_results):
            # a marked stretch inside a longer unmarked video: the best window speaks for it
            result = max((d for d in window_results if d.found), key=lambda d: d.score)
            result.frames = whole.frames
        if result.found and result.payload is None:
            # the payload of the windows that could read it, when the whole clip's average could not
            ids = Counter(d.payload for d in window_results if d.payload is not None)
            if ids:
                result.payload = ids.most_common(1)[0][0]
        windows = {"read": len(window_results), "found": sum(d.found for d in window_results)}
        kind = "video"
    mark = result.to_dict()
    mark["windows"] = windows
    return {"file": p.name, "kind": kind, "found": result.found, "watermark": mark,
            "metadata": read_tags(p) if kind == "video" else {}, "c2pa": read_manifest(p)}


def summary(report: dict) -> str:
    """The report in a few lines of text (the CLI's output without --json)."""
    w = report["watermark"]
    lines = []
    if w["found"]:
        pl = w["payload"]
        what = (f"id {pl['video_id']}, facecast {pl['facecast_version']}, mark format {pl['format_version']}"
                if pl else "payload unreadable")
        lines.append(f"{report['file']}: facecast watermark FOUND (confidence {w['confidence']:.6f}, "
                     f"score {w['score']:.1f}; {what})")
    else:
        lines.append(f"{report['file']}: no facecast watermark found (score {w['score']:.1f})")
    if report["kind"] == "video":
        lines.append(f"  frames read: {w['frames']}; {WINDOW_S:g}-second windows with the mark: "
                     f"{w['windows']['found']} of {w['windows']['read']}"
                     + (f"; scale {w['scale']:.2f} of the rendered size" if w["scale"] else ""))
    md = report["metadata"]
    if md:
        lines.append(f"  container: says synthetic={md.get('synthetic')}, made by {md.get('generator')} "
                     f"{md.get('version')}" + (f", watermark id {md['video_id']}" if md.get("video_id") else ""))
    elif report["kind"] == "video":
        lines.append("  container: no facecast tags")
    c = report["c2pa"]
    if c.get("present") is None:
        lines.append(f"  C2PA: {c.get('error')}")
    elif not c.get("present"):
        lines.append("  C2PA: no manifest")
    else:
        state = "valid" if c.get("valid") else f"INVALID ({'; '.join(c.get('issues') or [])})"
        trust = "" if c.get("trusted") else ", signed by a certificate not on a trust list"
        lines.append(f"  C2PA: manifest {state}{trust}; generator {c.get('claim_generator')}")
    return "\n".join(lines)
