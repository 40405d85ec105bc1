"""Batch manifests: CSV or JSONL, one job per row, checked whole before anything runs.

A row names a portrait (`image`), speech (`audio`) or a motion file (`motion`, with optional
`audio` to mux), the output name (`output`, relative to the batch's output folder), and any
controls: the keys of `facecast.Controls` (emotion, gaze, head_distance, head_offset,
motion_scale, expression_scale, blink_rate, seed), or `controls` naming a controls file; plus the
render options `size`, `fps`, `face` and `full_frame`.

In CSV every value is text: numbers are read as numbers, pairs as `10,-5` (quoted) or `10 -5`,
and an empty cell means "not given". Relative input paths are relative to the manifest's folder.
Every problem is a `FacecastError` naming the row and the field: a missing file, an unknown
column or control, a bad value, a duplicate output name, an output outside the output folder.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FacecastError
from ..face.rig import MAX_SIZE, MIN_SIZE
from ..motion.controls import Controls, ControlTrack
from ..motion.presets import FPS_RANGE
from ..video import VIDEO_EXTS

CONTROL_KEYS = tuple(Controls.model_fields)
OPTION_KEYS = ("size", "fps", "face", "full_frame")
FILE_KEYS = ("image", "audio", "motion", "controls")
KNOWN_KEYS = ("output",) + FILE_KEYS + OPTION_KEYS + CONTROL_KEYS
PAIR_KEYS = ("gaze", "head_offset")


@dataclass(frozen=True)
class Job:
    """One row of a manifest, checked: absolute input paths, the output path inside the output
    folder, the controls as a JSON-ready dict (`ControlTrack.to_dict`), and render options."""

    row: int
    image: str
    output: str                       # absolute path
    name: str                         # the output name as the manifest gives it
    audio: str | None = None
    motion: str | None = None
    controls: dict = field(default_factory=dict)
    size: int = 512
    fps: float = 25.0
    face: int = 0
    full_frame: bool = False


def read_manifest(path: str | os.PathLike, outdir: str | os.PathLike) -> list[Job]:
    """All jobs of a CSV (`.csv`) or JSONL (any other extension) manifest, or FacecastError."""
    path = Path(path)
    if not path.is_file():
        raise FacecastError(f"manifest not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise FacecastError(f"cannot read manifest {path}: {e}") from None
    rows = _csv_rows(text) if path.suffix.lower() == ".csv" else _jsonl_rows(text)
    if not rows:
        raise FacecastError(f"manifest {path} has no jobs")
    base, out = path.resolve().parent, Path(outdir).resolve()
    jobs, seen = [], {}
    for n, row in rows:
        job = _job(n, row, base, out)
        key = os.path.normcase(job.output)
        if key in seen:
            raise FacecastError(f"row {n}, field output: {job.name!r} is also the output of row {seen[key]}")
        seen[key] = n
        jobs.append(job)
    return jobs


def _csv_rows(text: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(text.splitlines())
    unknown = [c for c in (reader.fieldnames or []) if c and c.strip() not in KNOWN_KEYS]
    if unknown:
        raise FacecastError(f"manifest column {unknown[0]!r} is unknown; known: {', '.join(KNOWN_KEYS)}")
    rows = []
    for n, r in enumerate(reader, start=2):  # row 1 is the header
        values = {k.strip(): v.strip() for k, v in r.items() if k and v is not None and v.strip() != ""}
        if values:
            rows.append((n, {k: _csv_value(n, k, v) for k, v in values.items()}))
    return rows


def _csv_value(n: int, key: str, v: str):
    """A CSV cell as the JSON value it stands for."""
    if key in FILE_KEYS + ("output", "emotion"):
        return v
    if key == "full_frame":
        if v.lower() in ("1", "true", "yes"):
            return True
        if v.lower() in ("0", "false", "no"):
            return False
        raise FacecastError(f"row {n}, field full_frame: use true or false, got {v!r}")
    try:
        if key in PAIR_KEYS:
            return [float(x) for x in v.replace(",", " ").split()]
        return float(v)
    except ValueError:
        raise FacecastError(f"row {n}, field {key}: {v!r} is not a number") from None


def _jsonl_rows(text: str) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise FacecastError(f"row {n}: not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise FacecastError(f"row {n}: a job is a JSON object")
        unknown = [k for k in d if k not in KNOWN_KEYS]
        if unknown:
            raise FacecastError(f"row {n}, field {unknown[0]}: unknown; known: {', '.join(KNOWN_KEYS)}")
        rows.append((n, d))
    return rows


def _job(n: int, row: dict, base: Path, outdir: Path) -> Job:
    def fail(key: str, why: str):
        raise FacecastError(f"row {n}, field {key}: {why}")

    def input_file(key: str) -> str | None:
        v = row.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or not v:
            fail(key, "a file path is needed")
        p = Path(v).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            fail(key, f"file not found: {v}")
        return str(p)

    image = input_file("image")
    if image is None:
        fail("image", "every job needs a portrait")
    audio, motion = input_file("audio"), input_file("motion")
    if audio is None and motion is None:
        fail("audio", "every job needs audio (or a motion file)")
    name = row.get("output")
    if not isinstance(name, str) or not name:
        fail("output", "every job needs an output name")
    out = (outdir / name).resolve()
    if out == outdir or outdir not in out.parents:
        fail("output", f"{name!r} is outside the output folder")
    ext = out.suffix.lower()
    if ext and ext not in VIDEO_EXTS:
        fail("output", f"unsupported type {ext!r}; use .mp4, .webm, .mov, .mkv or a folder name")
    for k in CONTROL_KEYS:  # one at a time, so an error names its field
        if k in row:
            try:
                Controls.from_dict({k: row[k]})
            except FacecastError as e:
                fail(k, str(e))
    base_controls = Controls.from_dict({k: row[k] for k in CONTROL_KEYS if k in row})
    controls_file = input_file("controls")
    try:
        track = ControlTrack.load(controls_file, base_controls) if controls_file else ControlTrack(base_controls)
    except FacecastError as e:
        fail("controls", str(e))
    opts = {}
    for key, lo, hi, kind in (("size", MIN_SIZE, MAX_SIZE, int), ("fps", *FPS_RANGE, float), ("face", 0, 99, int)):
        if key in row:
            v = row[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or \
                    (kind is int and float(v) != int(v)):
                fail(key, f"must be {'a whole number' if kind is int else 'a number'} between {lo:g} and {hi:g}, got {v!r}")
            opts[key] = kind(v)
    if "full_frame" in row:
        if not isinstance(row["full_frame"], bool):
            fail("full_frame", f"use true or false, got {row['full_frame']!r}")
        opts["full_frame"] = row["full_frame"]
    return Job(row=n, image=image, output=str(out), name=name, audio=audio, motion=motion,
               controls=track.to_dict(), **opts)
