"""Where batch jobs run: a local process pool (the default) or Ray tasks on a cluster.

Both engines run the same `Worker`, one per core pair (rendering and encoding take a core each),
and each worker keeps the `Animator` of the portraits it has seen, so a rig is built once per
portrait per worker. Jobs are handed out sorted by portrait, so neighbouring jobs share rigs.
An engine yields `JobResult`s as jobs finish, in any order.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import FacecastError
from .manifest import Job

KEEP_ANIMATORS = 4            # portraits a worker keeps ready (a 512 rig holds about 30 MB)


@dataclass(frozen=True)
class JobResult:
    """What became of one job: status 'done' or 'failed' (with the reason), frames written,
    seconds of video, wall seconds (rig build included) and the video's watermark id."""

    row: int
    name: str
    status: str
    reason: str = ""
    frames: int = 0
    video_s: float = 0.0
    wall_s: float = 0.0
    video_id: str | None = None       # the id in the output's watermark (`facecast verify` reads it)


class Worker:
    """Runs jobs one after another, keeping the last `KEEP_ANIMATORS` portraits' Animators."""

    def __init__(self):
        self._animators: OrderedDict = OrderedDict()

    def _animator(self, job: Job):
        from ..pipeline import Animator
        key = (job.image, job.size, job.face, job.full_frame)
        anim = self._animators.pop(key, None) or Animator(job.image, size=job.size, face=job.face,
                                                          full_frame=job.full_frame)
        self._animators[key] = anim
        while len(self._animators) > KEEP_ANIMATORS:
            self._animators.popitem(last=False)
        return anim

    def run(self, job: Job) -> JobResult:
        from ..motion.controls import ControlTrack
        from ..motion.types import MotionSequence
        t0 = time.perf_counter()
        try:
            anim = self._animator(job)
            if job.motion is not None:
                res = anim.animate(MotionSequence.load(job.motion), job.output, audio=job.audio)
            else:
                res = anim.render(job.audio, job.output, fps=job.fps, controls=ControlTrack.from_dict(job.controls))
        except FacecastError as e:
            return JobResult(job.row, job.name, "failed", str(e), wall_s=time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - one broken job must not end the batch
            return JobResult(job.row, job.name, "failed", f"internal error: {type(e).__name__}: {e}",
                             wall_s=time.perf_counter() - t0)
        return JobResult(job.row, job.name, "done", frames=res.frames, video_s=res.duration_s,
                         wall_s=time.perf_counter() - t0, video_id=res.video_id)


def default_workers() -> int:
    """One worker per core pair, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


# ---- local process pool -----------------------------------------------------------------------
_worker: Worker | None = None   # the one Worker of a pool process (set by its initializer)


def _start_worker() -> None:
    """In each pool process: a Worker, and SIGTERM unwinding like Ctrl-C, so a job stopped by
    the pool's shutdown removes its temporary file."""
    import signal
    global _worker
    _worker = Worker()

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _run_in_pool(job: Job) -> JobResult:
    return _worker.run(job)


def run_local(jobs: Iterable[Job], workers: int | None = None) -> Iterator[JobResult]:
    """Run jobs on `workers` processes (default: one per core pair). Processes are spawned, not
    forked, so a caller with threads (a server, a notebook) is safe."""
    import concurrent.futures as cf
    import multiprocessing
    jobs = sorted(jobs, key=lambda j: (j.image, j.size, j.face, j.full_frame, j.row))
    with cf.ProcessPoolExecutor(max_workers=workers or default_workers(), initializer=_start_worker,
                                mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_in_pool, j) for j in jobs]
        try:
            for f in cf.as_completed(futures):
                yield f.result()
        except BaseException:  # Ctrl-C, SIGTERM, or the caller stopped: stop the running jobs too
            for f in futures:
                f.cancel()
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            raise


# ---- Ray ----------------------------------------------------------------------------------------
def run_ray(jobs: Iterable[Job], address: str | None = None) -> Iterator[JobResult]:
    """Run jobs as Ray tasks on actors holding a `Worker`, two CPUs each: on the cluster at
    `address`, or on a local one started here when None. Paths must be visible to every node."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise FacecastError("--ray needs Ray: pip install 'facecast[ray]'") from None
    jobs = sorted(jobs, key=lambda j: (j.image, j.size, j.face, j.full_frame, j.row))
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except Exception as e:  # noqa: BLE001 - Ray's own errors, one line for the user
            raise FacecastError(f"cannot start or reach Ray{' at ' + address if address else ''}: {e}") from None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 2))
        actor = ray.remote(num_cpus=min(2, cpus))(Worker)
        pool = ActorPool([actor.remote() for _ in range(max(1, cpus // 2))])
        yield from pool.map_unordered(lambda a, j: a.run.remote(j), jobs)
    finally:
        if started:
            ray.shutdown()
