"""Writing frames out: H.264 mp4 (yuv420p, fast-start) with AAC audio, VP9 webm, or a PNG folder.

`VideoWriter` is a context manager that streams frames to the encoder (never holding a clip in
memory), writes into a temporary file beside the target and renames it into place only when the
clip is complete; an exception (or Ctrl-C) inside the `with` block leaves nothing behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .errors import FacecastError

VIDEO_EXTS = {".mp4": ("mp4", "libx264", "aac"), ".mov": ("mov", "libx264", "aac"),
              ".webm": ("webm", "libvpx-vp9", "libopus"), ".mkv": ("matroska", "libx264", "aac")}


def check_output_path(output: str | os.PathLike, inputs: list[str | os.PathLike] = ()) -> Path:
    """Validate an output path early: known extension (or folder), writable, not an input."""
    out = Path(output)
    ext = out.suffix.lower()
    if ext and ext not in VIDEO_EXTS:
        raise FacecastError(f"unsupported output type {ext!r}; use .mp4, .webm, .mov, .mkv or a folder name for PNG frames")
    for i in inputs:
        try:
            if i is not None and not isinstance(i, np.ndarray) and Path(i).exists() and out.exists() \
                    and out.resolve() == Path(i).resolve():
                raise FacecastError(f"refusing to overwrite the input file {i}")
        except TypeError:
            pass
    parent = out.parent if ext else out.parent
    if not parent.exists():
        raise FacecastError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise FacecastError(f"cannot write to {parent}: permission denied")
    if out.is_dir() and ext:
        raise FacecastError(f"{out} is a folder")
    return out


class VideoWriter:
    """Stream RGB frames (S, S, 3) uint8 to a video file or PNG folder; optionally mux audio.

    audio: mono float32 samples in [-1, 1] at `audio_rate` (muxed as AAC / Opus).
    """

    def __init__(self, output: str | os.PathLike, fps: float, size: int | tuple[int, int],
                 audio: np.ndarray | None = None, audio_rate: int = 16000, crf: int = 20,
                 preset: str = "veryfast", threads: int = 0):
        self.output = Path(output)
        self.fps = fps
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.audio = audio
        self.audio_rate = int(audio_rate)
        self.crf, self.preset, self.threads = crf, preset, threads
        self.frames_written = 0
        self._tmp: Path | None = None
        self._container = None

    # ---- context -----------------------------------------------------------------------------
    def __enter__(self):
        ext = self.output.suffix.lower()
        parent = self.output.parent
        try:
            if not ext:
                self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.", dir=parent))
            else:
                fd, name = tempfile.mkstemp(prefix=f".{self.output.stem}.", suffix=ext, dir=parent)
                os.close(fd)
                self._tmp = Path(name)
                self._open_container(ext)
        except OSError as e:
            self._cleanup()
            raise FacecastError(f"cannot write {self.output}: {e.strerror or e}") from None
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._abort()
            return False
        try:
            self._finish()
        except BaseException:
            self._abort()
            raise
        return False

    # ---- frames ------------------------------------------------------------------------------
    def _open_container(self, ext: str) -> None:
        import av
        fmt, vcodec, acodec = VIDEO_EXTS[ext]
        opts = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        self._container = av.open(str(self._tmp), mode="w", format=fmt, options=opts)
        rate = Fraction(self.fps).limit_denominator(1001)
        vs = self._container.add_stream(vcodec, rate=rate)
        vs.width, vs.height = self.size
        vs.pix_fmt = "yuv420p"
        vs.thread_count = self.threads
        if vcodec == "libx264":
            vs.options = {"crf": str(self.crf), "preset": self.preset}
        else:
            vs.options = {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
        self._vstream = vs
        self._astream = None
        if self.audio is not None and len(self.audio):
            arate = 48000 if acodec == "libopus" else self.audio_rate
            self._astream = self._container.add_stream(acodec, rate=arate)
            self._astream.layout = "mono"
            self._arate_out = arate

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB frame (H, W, 3) uint8."""
        if self._container is None:
            cv2.imwrite(str(self._tmp / f"frame_{self.frames_written:06d}.png"), frame[:, :, ::-1])
        else:
            import av
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for p in self._vstream.encode(vf):
                self._container.mux(p)
        self.frames_written += 1

    def _write_audio(self) -> None:
        import av
        x = self.audio.astype(np.float32)
        # the audio track lasts exactly as long as the video
        n_video = self.frames_written / self.fps
        n = int(round(n_video * self.audio_rate))
        x = np.pad(x[:n], (0, max(0, n - len(x))))
        if self._arate_out != self.audio_rate:
            from scipy.signal import resample_poly
            g = np.gcd(self._arate_out, self.audio_rate)
            x = resample_poly(x, self._arate_out // g, self.audio_rate // g).astype(np.float32)
        st = self._astream
        chunk = 1024 * 8
        for i in range(0, len(x), chunk):
            part = np.clip(x[i:i + chunk], -1, 1)[None, :]
            af = av.AudioFrame.from_ndarray(part, format="flt", layout="mono")
            af.sample_rate = self._arate_out
            af.pts = i
            for p in st.encode(af):
                self._container.mux(p)
        for p in st.encode(None):
            self._container.mux(p)

    def _finish(self) -> None:
        if self._container is not None:
            for p in self._vstream.encode(None):
                self._container.mux(p)
            if self._astream is not None:
                self._write_audio()
            self._container.close()
            self._container = None
        if self.frames_written == 0:
            raise FacecastError("no frames were produced")
        try:
            if self._tmp.is_dir():
                if self.output.exists():
                    shutil.rmtree(self.output) if self.output.is_dir() else self.output.unlink()
            os.replace(self._tmp, self.output)
        except OSError as e:
            raise FacecastError(f"cannot write {self.output}: {e.strerror or e}") from None
        self._tmp = None

    def _abort(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away anyway
                pass
            self._container = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None and self._tmp.exists():
            shutil.rmtree(self._tmp, ignore_errors=True) if self._tmp.is_dir() else self._tmp.unlink()
        self._tmp = None
