"""Batch rendering (`facecast batch`, `facecast.batch`): many jobs from a CSV or JSONL manifest,
on a local process pool or on Ray, resumable through `OUTDIR/results.jsonl`.

Modules: `manifest` (reading and checking jobs), `engines` (where jobs run), `runner`
(skipping, recording, summary).
"""
