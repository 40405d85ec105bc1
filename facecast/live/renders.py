"""HTTP renders (`POST /api/render`): a request's uploads checked and written to its own folder
(`prepare_render`), then rendered one at a time behind a bounded queue (`RenderQueue`), cancelled
when its client goes away (`run_render`); errors and warnings reach the client without server paths."""
import asyncio
import concurrent.futures
import json
import math
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FacecastError, FacecastWarning
from ..motion.controls import ControlTrack
from .access import ApiError, Limits
from .uploads import check_image_header, read_upload, safe_suffix, scrub_paths

RETRY_AFTER_S = 30                           # the Retry-After of a 503 "busy"
CANCEL_POLL_S = 0.2                          # how often a render checks that its client is still there


class RenderCancelled(Exception):
    """Raised inside a render (between frames) when its client has gone."""


@dataclass
class RenderJob:
    """One /api/render request: its uploads (in its own temp folder), settings and cancel flag, and
    the `FacecastWarning`s its render gave (texts for the client: no server paths)."""

    folder: Path
    image: Path
    audio: Path
    fps: float
    track: Any = None
    max_frames: int = 0              # a guard against audio that runs longer than its header said
    cancel: threading.Event = field(default_factory=threading.Event)
    warnings: list[str] = field(default_factory=list)

    @property
    def output(self) -> Path:
        return self.folder / "out.mp4"

    def public(self, text: str) -> str:
        return scrub_paths(text, {self.audio: "the audio upload", self.image: "the image upload",
                                  self.folder: "the upload"})

    def audio_duration(self) -> float:
        from ..audio.io import load_audio_info
        try:
            return load_audio_info(self.audio).duration_s
        except FacecastError as e:
            raise ApiError(400, self.public(str(e))) from None

    def check(self, frames: int = 0) -> None:
        """Between frames: stop when the client has gone, or the audio is longer than allowed."""
        if self.cancel.is_set():
            raise RenderCancelled()
        if frames > self.max_frames:
            raise ApiError(413, f"the audio is longer than allowed ({self.max_frames / self.fps:.0f} s at most)")

    def render(self, rig, progress):
        from ..pipeline import Animator
        texts: list[str] = []
        try:
            with thread_warnings(texts):
                return Animator(str(self.image), rig=rig).render(str(self.audio), self.output, fps=self.fps,
                                                                  controls=self.track, progress=progress)
        finally:
            for t in texts:
                t = self.public(t)
                if t not in self.warnings:          # the audio is read twice (analysis, mux): once each
                    self.warnings.append(t)


@contextmanager
def thread_warnings(into: list[str]):
    """Collect the texts of the `FacecastWarning`s that this thread issues meanwhile into `into`
    (every one, even a repeat); other threads' warnings, and other kinds, are shown as usual.

    It swaps the process-wide `warnings` hooks for the while, so two of these must not overlap in
    time on different threads: the server enters it only for the running render, one at a time."""
    me = threading.get_ident()
    with warnings.catch_warnings():
        warnings.simplefilter("always", FacecastWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if threading.get_ident() == me and issubclass(category, FacecastWarning):
                into.append(str(message))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield into


class RenderQueue:
    """The HTTP renders: one runs at a time (it uses every core), at most `max_waiting` wait behind
    it, and `admit` refuses the rest. A job whose `cancel` is set stops, waiting or running."""

    OUTCOMES = ("done", "failed", "cancelled", "refused")

    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self._slot = threading.Lock()          # held by the running render
        self._lock = threading.Lock()          # guards the counters below
        self._admitted = 0
        self._running = False
        self._progress = (0, 0)
        self._counts = dict.fromkeys(self.OUTCOMES, 0)

    def admit(self) -> bool:
        with self._lock:
            if self._admitted > self.max_waiting:
                self._counts["refused"] += 1
                return False
            self._admitted += 1
            return True

    def leave(self, outcome: str) -> None:
        with self._lock:
            self._admitted -= 1
            self._counts[outcome] += 1

    def run(self, job: RenderJob, build_rig):
        """On a worker thread: wait for the slot, build the rig (`build_rig(path)` -> Future), render."""
        while not self._slot.acquire(timeout=CANCEL_POLL_S):
            job.check()
        try:
            with self._lock:
                self._running, self._progress = True, (0, 0)
            job.check()
            rig = _result_unless_cancelled(build_rig(str(job.image)), job)

            def progress(done: int, total: int) -> None:
                self._progress = (done, total)
                job.check(done)
            return job.render(rig, progress)
        finally:
            with self._lock:
                self._running = False
            self._slot.release()

    def status(self) -> dict:
        with self._lock:
            return {"running": int(self._running), "waiting": self._admitted - int(self._running),
                    "max_waiting": self.max_waiting, "progress": list(self._progress) if self._running else None,
                    **self._counts}


def _result_unless_cancelled(future: concurrent.futures.Future, job: RenderJob):
    while True:
        try:
            return future.result(timeout=CANCEL_POLL_S)
        except concurrent.futures.TimeoutError:
            if job.cancel.is_set():
                future.cancel()
                raise RenderCancelled() from None


async def prepare_render(folder: Path, image, audio, controls: str | None, fps: float, limits: Limits) -> RenderJob:
    """Check a render request and write its uploads into `folder`; ApiError (400, 413) when it cannot run."""
    from starlette.concurrency import run_in_threadpool
    if not 1 <= fps <= 60:
        raise ApiError(400, "fps must be between 1 and 60")
    job = RenderJob(folder, folder / ("image" + safe_suffix(image.filename, ".jpg")),
                    folder / ("audio" + safe_suffix(audio.filename, ".wav")), fps, parse_control_track(controls))
    data = await read_upload(image, "image", limits.upload_bytes)
    check_image_header(data, limits.upload_pixels)
    job.image.write_bytes(data)
    job.audio.write_bytes(await read_upload(audio, "audio", limits.audio_bytes))
    duration = await run_in_threadpool(job.audio_duration)
    if duration > limits.audio_s:
        raise ApiError(413, f"the audio upload is {duration:.0f} s long; a render takes at most {limits.audio_s:g} s")
    job.max_frames = math.ceil((limits.audio_s + 1.0) * fps)
    return job


def parse_control_track(text: str | None) -> ControlTrack | None:
    """The `controls` form field (a controls file's JSON: `ControlTrack.from_dict`, which checks
    every value with `Controls.from_dict`, as the WebSocket does) -> a track; ApiError 400 if bad."""
    if not text:
        return None
    try:
        return ControlTrack.from_dict(json.loads(text))
    except json.JSONDecodeError as e:
        raise ApiError(400, f"controls is not valid JSON: {e}") from None
    except FacecastError as e:
        raise ApiError(400, str(e)) from None


async def run_render(request, renders: RenderQueue, job: RenderJob, build_rig):
    """Run `job` through `renders` on a worker thread, polling the client meanwhile: when it has
    disconnected, the job is cancelled (RenderCancelled). FacecastErrors come back as 400s."""
    from starlette.concurrency import run_in_threadpool
    task = asyncio.ensure_future(run_in_threadpool(renders.run, job, build_rig))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=CANCEL_POLL_S)
            if not task.done() and not job.cancel.is_set() and await request.is_disconnected():
                job.cancel.set()
        return task.result()
    except asyncio.CancelledError:
        job.cancel.set()
        raise
    except FacecastError as e:
        raise ApiError(400, job.public(str(e))) from None
