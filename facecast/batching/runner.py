"""Batch rendering, resumable: a manifest in, an output folder of videos and `results.jsonl` out.

`run_batch` checks the whole manifest first (`manifest.read_manifest`), skips jobs whose output
is already complete, runs the rest on an engine (`engines`), and appends one line per job to
`OUTDIR/results.jsonl` as it finishes (written and flushed at once, so an interrupted batch
loses nothing finished). Outputs are written atomically by the pipeline, so an interrupted job
leaves no partial file. `retry_failed` runs only the jobs whose last record is a failure.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import FacecastError
from .engines import JobResult, run_local, run_ray
from .manifest import Job, read_manifest

RESULTS_NAME = "results.jsonl"


@dataclass
class BatchSummary:
    """Counts of done, skipped and failed jobs; seconds of video made and wall seconds; the
    results of this run (skipped ones included) in the order they finished."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    video_s: float = 0.0
    wall_s: float = 0.0
    results: list[JobResult] = field(default_factory=list)

    @property
    def speed(self) -> float:
        """Seconds of video made per wall second (× real time)."""
        return self.video_s / self.wall_s if self.wall_s > 0 else 0.0


def output_complete(path: str | os.PathLike) -> bool:
    """Whether a job's output is there and whole: a video that opens with at least one frame,
    or a frame folder with frames. (Outputs appear only when complete, by an atomic rename, so
    this guards against other tools' files of the same name.)"""
    p = Path(path)
    if p.is_dir():
        return any(p.glob("frame_*.png"))
    if not p.is_file():
        return False
    import av
    try:
        with av.open(str(p)) as c:
            return bool(c.streams.video) and next(c.decode(video=0), None) is not None
    except (av.FFmpegError, OSError):
        return False


def previous_results(outdir: Path) -> dict[str, dict]:
    """The last record of each output name in `OUTDIR/results.jsonl` (unreadable lines ignored)."""
    last: dict[str, dict] = {}
    path = outdir / RESULTS_NAME
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
                last[rec["name"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return last


def run_batch(manifest: str | os.PathLike, outdir: str | os.PathLike, engine: str = "local",
              address: str | None = None, workers: int | None = None, retry_failed: bool = False,
              on_result: Callable[[JobResult, int, int], None] | None = None) -> BatchSummary:
    """Render every job of `manifest` into `outdir` (created if missing; its parent must exist).

    engine: 'local' (a process pool of `workers`, default one per core pair) or 'ray' (tasks on
    the cluster at `address`, or on a local one). on_result(result, finished, total) is called
    as each job ends, skipped ones included.
    """
    if engine not in ("local", "ray"):
        raise FacecastError(f"unknown engine {engine!r}; use 'local' or 'ray'")
    out = Path(outdir)
    if not out.parent.is_dir():
        raise FacecastError(f"folder {out.parent} does not exist")
    if out.exists() and not out.is_dir():
        raise FacecastError(f"{out} exists and is not a folder")
    jobs = read_manifest(manifest, out)
    out.mkdir(exist_ok=True)
    before = previous_results(out)
    if retry_failed:
        jobs = [j for j in jobs if before.get(j.name, {}).get("status") == "failed"]
    summary = BatchSummary()
    total = len(jobs)
    t0 = time.perf_counter()
    with open(out / RESULTS_NAME, "a", encoding="utf-8") as log:
        def record(r: JobResult) -> None:
            log.write(json.dumps({**asdict(r), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
            log.flush()
            os.fsync(log.fileno())
            summary.results.append(r)
            setattr(summary, r.status, getattr(summary, r.status) + 1)
            summary.video_s += r.video_s
            if on_result:
                on_result(r, len(summary.results), total)

        todo: list[Job] = []
        for j in jobs:
            if output_complete(j.output):
                record(JobResult(j.row, j.name, "skipped", "the output is already complete"))
            else:
                Path(j.output).parent.mkdir(parents=True, exist_ok=True)  # inside OUTDIR (checked)
                todo.append(j)
        if todo:
            results = run_ray(todo, address) if engine == "ray" else run_local(todo, workers)
            for r in results:
                record(r)
    summary.wall_s = time.perf_counter() - t0
    return summary
