"""Reading videos in: open any file PyAV reads, its first video track, its frame rate, and its
frames as RGB, one at a time, with one-line errors. (`video.py` writes videos; this reads them.)

Used by capture (`facecast capture` / `drive`), the real-video evaluation (`facecast eval real`)
and provenance checks (`facecast verify`).
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .errors import FacecastError
from .inputs import check_input_file
from .motion.controls import range_message
from .motion.presets import FPS_RANGE


def _reason(e: BaseException) -> str:
    return " ".join(str(e).split())


def open_video(path: str | os.PathLike):
    """An open PyAV container for an existing file (use it as a context manager)."""
    p = check_input_file(path, "video")
    try:
        return av.open(str(p), mode="r")
    except PermissionError as e:
        raise FacecastError(f"cannot read video {p}: permission denied; check its permissions") from e
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise FacecastError(f"cannot read video {p}: not a readable video (FFmpeg: {_reason(e)}); "
                            "use an mp4, mov, webm or mkv") from e


def video_stream(container, path: str | os.PathLike):
    """The container's first video track, or FacecastError."""
    if not container.streams.video:
        raise FacecastError(f"{path} has no video track")
    return container.streams.video[0]


def frame_rate(stream, path: str | os.PathLike) -> float:
    """A video track's frame rate, within the frame rates facecast takes (`FPS_RANGE`)."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if not (math.isfinite(fps) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise FacecastError(f"{path}: " + range_message("the video's frame rate", *FPS_RANGE, f"{fps:g}"))
    return fps


def video_rate(path: str | os.PathLike) -> float:
    """The frame rate of a video file's first video track."""
    with open_video(path) as c:
        return frame_rate(video_stream(c, path), path)


def iter_frames(path: str | os.PathLike, max_side: int | None = None,
                max_seconds: float | None = None) -> Iterator[np.ndarray]:
    """The first video track's frames as RGB (H, W, 3) uint8, decoded one at a time; scaled down
    so the longer side is at most `max_side`, and only the first `max_seconds` when given."""
    p = Path(path)
    with open_video(p) as c:
        s = video_stream(c, p)
        s.thread_type = "AUTO"
        limit = None if max_seconds is None else max(1, int(max_seconds * frame_rate(s, p)))
        n = 0
        try:
            for f in c.decode(s):
                if max_side is not None:
                    k = min(1.0, max_side / max(f.width, f.height))
                    if k < 1.0:
                        f = f.reformat(width=max(2, round(f.width * k)), height=max(2, round(f.height * k)),
                                       format="rgb24")
                yield f.to_ndarray(format="rgb24")
                n += 1
                if limit is not None and n >= limit:
                    return
        except av.FFmpegError as e:
            raise FacecastError(f"{p} could not be decoded (FFmpeg: {_reason(e)}); the file is damaged: "
                                "convert it again") from e


@dataclass
class VideoInfo:
    """A video file: path, frame rate, frame count (estimated from the container when it
    does not say), width, height, duration in seconds and whether it has an audio track."""

    path: Path
    fps: float
    frames: int
    width: int
    height: int
    duration_s: float
    has_audio: bool


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Check that `path` is a video PyAV can read with a usable frame rate; FacecastError if not."""
    p = check_input_file(path, "video")
    with open_video(p) as c:
        s = video_stream(c, p)
        fps = frame_rate(s, p)
        if s.duration is not None and s.time_base is not None:
            dur = float(s.duration * s.time_base)
        elif c.duration is not None:
            dur = c.duration / av.time_base
        else:
            dur = 0.0
        if c.format.name == "image2" or c.format.name.endswith("_pipe"):
            raise FacecastError(f"{p} is a still image, not a video; this needs footage of a face "
                                "(to animate a photo, use render or animate)")
        frames = int(s.frames) if s.frames else round(dur * fps)
        return VideoInfo(p, fps, max(frames, 1), s.codec_context.width, s.codec_context.height,
                         frames / fps if frames else dur, bool(c.streams.audio))
