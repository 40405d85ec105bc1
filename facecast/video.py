"""Writing frames out: H.264 mp4 (yuv420p, fast-start) with AAC audio, VP9 webm, or a PNG folder.

`VideoWriter` is a context manager that streams frames to the encoder (never holding a clip in
memory), writes into a temporary file beside the target and renames it into place only when the
clip is complete (`facecast.outputs`); an exception (or Ctrl-C) inside the `with` block leaves
nothing behind, and a PNG-frame folder never replaces a folder holding anything but frames.
Encoding runs on a background thread fed by a short bounded queue, so rendering (the caller's
thread) and encoding use two cores.
"""
from __future__ import annotations

import os
import queue
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import FacecastError
from .outputs import PendingFile, PendingFrameFolder, check_frame_folder

QUEUE_FRAMES = 8

VIDEO_EXTS = {".mp4": ("mp4", "libx264", "aac"), ".mov": ("mov", "libx264", "aac"),
              ".webm": ("webm", "libvpx-vp9", "libopus"), ".mkv": ("matroska", "libx264", "aac")}


def check_output_path(output: str | os.PathLike, inputs: list[str | os.PathLike] = ()) -> Path:
    """Validate an output path early: known extension (or folder), writable, not an input."""
    out = Path(output)
    ext = out.suffix.lower()
    if ext and ext not in VIDEO_EXTS:
        raise FacecastError(f"unsupported output type {ext!r}; use .mp4, .webm, .mov, .mkv or a folder name for PNG frames")
    for i in inputs:
        if isinstance(i, (str, os.PathLike)) and out.exists() and Path(i).exists() \
                and out.resolve() == Path(i).resolve():
            raise FacecastError(f"refusing to overwrite the input file {i}")
    parent = out.parent
    if not parent.exists():
        raise FacecastError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise FacecastError(f"cannot write to {parent}: permission denied")
    if out.is_dir() and ext:
        raise FacecastError(f"{out} is a folder")
    if not ext:
        check_frame_folder(out)
    return out


class VideoWriter:
    """Stream RGB frames (H, W, 3) uint8 to a video file or PNG folder, with optional audio.

    audio_rate: sample rate of the mono float32 audio given to `write_audio` (None: no audio
    track). Audio is streamed too; at the end it is trimmed or padded to the video's length, so
    the two stay in sync to the sample. A PNG folder gets no audio.
    metadata: container tags (`provenance.metadata.container_tags`: the video says it is synthetic);
    mp4/mov keep any key (`use_metadata_tags`). sign: (certificate, key) PEM paths: the finished file
    gets a signed C2PA manifest (`provenance.metadata.sign_file`; mp4/mov), before it is renamed
    into place; sign_payload: the watermark payload the manifest names.
    """

    def __init__(self, output: str | os.PathLike, fps: float, size: int | tuple[int, int],
                 audio_rate: int | None = None, crf: int = 20, preset: str = "veryfast", threads: int = 0,
                 metadata: dict[str, str] | None = None, sign: tuple[str, str] | None = None, sign_payload=None):
        self.output = Path(output)
        self.metadata = dict(metadata or {})
        self.sign, self.sign_payload = sign, sign_payload
        self.fps = fps
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.audio_rate = int(audio_rate) if audio_rate else None
        self.crf, self.preset, self.threads = crf, preset, threads
        self.frames_written = 0
        self.audio_written = 0
        self._pending = np.zeros(0, np.float32)
        self._out: PendingFile | PendingFrameFolder | None = None
        self._container = None
        self._astream = None
        self._queue: queue.Queue | None = None
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None

    # ---- context -----------------------------------------------------------------------------
    def __enter__(self):
        ext = self.output.suffix.lower()
        if not ext:
            self._out = PendingFrameFolder(self.output)
            return self
        self._out = PendingFile(self.output)
        try:
            self._open_container(ext)
        except BaseException as e:
            self._out.discard()
            if isinstance(e, OSError):
                raise FacecastError(f"cannot write {self.output}: {e.strerror or e}") from None
            raise
        self._queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._worker = threading.Thread(target=self._work, name="facecast-encoder", daemon=True)
        self._worker.start()
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
        opts = {"movflags": "+faststart+use_metadata_tags"} if fmt in ("mp4", "mov") else {}
        self._container = av.open(str(self._out.path), mode="w", format=fmt, options=opts)
        self._container.metadata.update(self.metadata)
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
        if self.audio_rate:
            if acodec == "libopus" and self.audio_rate not in (8000, 12000, 16000, 24000, 48000):
                raise FacecastError("webm audio needs a sample rate of 48000 (Opus)")
            self._astream = self._container.add_stream(acodec, rate=self.audio_rate)
            self._astream.layout = "mono"

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB frame (H, W, 3) uint8."""
        if self._container is None:
            self._out.write(frame[:, :, ::-1])
        else:
            self._put(("v", np.ascontiguousarray(frame)))
        self.frames_written += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """Append mono float32 audio at `audio_rate` (ignored for a PNG folder or no audio)."""
        if self._astream is None:
            return
        self._put(("a", np.asarray(samples, np.float32).reshape(-1)))

    # ---- the encoder thread -------------------------------------------------------------------
    def _put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _work(self) -> None:
        import av
        try:
            while (item := self._queue.get()) is not None:
                kind, data = item
                if kind == "v":
                    for p in self._vstream.encode(av.VideoFrame.from_ndarray(data, format="rgb24")):
                        self._container.mux(p)
                else:
                    self._take_audio(data)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            self._error = e
            while self._queue.get() is not None:  # drain so the caller never blocks
                pass

    def _stop_worker(self) -> None:
        if self._worker is not None:
            if self._error is None:
                self._queue.put(None)
            else:
                try:
                    self._queue.put_nowait(None)
                except queue.Full:
                    pass
            self._worker.join()
            self._worker = None

    def _take_audio(self, x: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, x])
        # hold back a frame's worth: the end is trimmed to the video's length when it is known
        keep = int(self.audio_rate / self.fps) + 1
        if len(self._pending) > 4 * keep + 8192:
            self._encode_audio(self._pending[:-keep])
            self._pending = self._pending[-keep:]

    def _encode_audio(self, x: np.ndarray) -> None:
        import av
        chunk = 8192
        for i in range(0, len(x), chunk):
            part = np.clip(x[i:i + chunk], -1, 1)[None, :]
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format="flt", layout="mono")
            af.sample_rate = self.audio_rate
            af.pts = self.audio_written
            self.audio_written += part.shape[1]
            for p in self._astream.encode(af):
                self._container.mux(p)

    def _finish_audio(self) -> None:
        target = int(round(self.frames_written / self.fps * self.audio_rate))
        rest = max(0, target - self.audio_written)
        tail = np.pad(self._pending[:rest], (0, max(0, rest - len(self._pending))))
        self._pending = np.zeros(0, np.float32)
        if len(tail):
            self._encode_audio(tail)
        for p in self._astream.encode(None):
            self._container.mux(p)

    def _finish(self) -> None:
        self._stop_worker()
        if self._error is not None:
            raise self._error
        if self._container is not None:
            for p in self._vstream.encode(None):
                self._container.mux(p)
            if self._astream is not None:
                self._finish_audio()
            self._container.close()
            self._container = None
        if self.frames_written == 0:
            raise FacecastError("no frames were produced")
        if self.sign and isinstance(self._out, PendingFile):
            self._sign()
        self._out.commit()
        self._out = None

    def _sign(self) -> None:
        """Replace the finished temporary file by a copy with a signed C2PA manifest."""
        from .provenance.metadata import sign_file
        signed = PendingFile(self.output)
        try:
            sign_file(self._out.path, signed.path, *self.sign, payload=self.sign_payload)
            os.replace(signed.path, self._out.path)
        finally:
            signed.discard()

    def _abort(self) -> None:
        if self._worker is not None:
            self._error = self._error or RuntimeError("aborted")
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._stop_worker()
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away anyway
                pass
            self._container = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._out is not None:
            self._out.discard()
        self._out = None
