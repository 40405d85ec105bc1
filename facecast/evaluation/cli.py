"""`facecast eval lipsync`, `facecast eval real` and `facecast eval expression`: the command lines
of the evaluations (argument parsers, the commands, the printed tables). The work is done by
`lipsync` (render + re-track) and `metrics` for the first, by `real` (render a real clip's first
frame with its own audio, re-track both videos, compare) for the second, by `emotions` (each
emotion against neutral, re-tracked) for the third.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..audio.speech import Phoneme
from ..errors import FacecastError
from ..face.tracking import FaceTracker
from ..pipeline import Animator
from ..video import VideoWriter
from .lipsync import TEST_SENTENCES, evaluate_lipsync, tts_clip
from .metrics import TARGETS, LipSyncReport, combine_reports, target_text


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register `eval lipsync` on an argparse subparsers object; returns the `eval` parser.
    Dispatch: args.command == 'eval' -> `cmd_eval(args)`."""
    ev = subparsers.add_parser("eval", help="evaluate the product (lip sync of generated motion)")
    sub = ev.add_subparsers(dest="eval_command", required=True)
    p = sub.add_parser("lipsync", help="speech with known phoneme timing -> motion -> rendered and "
                                       "re-tracked face; lip-sync, head-motion and blink scores",
                       description="Score the motion generator's lip sync on eSpeak NG test sentences "
                                   "(or your own audio + phoneme labels), measured on the rendered frames.")
    p.add_argument("--image", default=None,
                   help="portrait to animate (default: grace_hopper.jpg from matplotlib's sample data)")
    p.add_argument("--face", type=int, default=0, help="which face when the picture has several: 0 = largest")
    p.add_argument("--languages", default="en,es,de",
                   help="comma-separated eSpeak voices of the built-in test sentences (default en,es,de)")
    p.add_argument("--audio", help="your own speech audio instead of the test sentences (needs --labels)")
    p.add_argument("--labels", help="phoneme labels of --audio: 'start end symbol' lines or an Audacity label track")
    p.add_argument("--fps", type=float, default=25.0, help="motion frame rate (default 25)")
    p.add_argument("--size", type=int, default=256, help="render size in pixels, 256-1024 (default 256; smaller is faster)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--save-video", metavar="DIR", help="also write each evaluated clip as DIR/<clip>.mp4 (with its audio)")
    p.add_argument("--check", action="store_true", help="exit with code 1 when an overall target is missed")
    p.set_defaults(func=cmd_eval)

    r = sub.add_parser("real", help="real talking videos -> each first frame rendered with the clip's own "
                                    "audio; mouth, head and blink motion compared with the real video",
                       description="Compare facecast with real speakers: each clip's first frame is the "
                                   "portrait, rendered with the clip's own audio; both videos are re-tracked "
                                   "with the face mesh and compared (facecast / real).")
    r.add_argument("videos", nargs="+", metavar="VIDEO",
                   help="talking-face videos with their own speech track (one person facing the camera)")
    r.add_argument("--size", type=int, default=512, help="render size in pixels, 256-1024 (default 512)")
    r.add_argument("--seed", type=int, default=0, help="seed of head motion, blinks and saccades (default 0)")
    r.add_argument("--still-baseline", action="store_true",
                   help="also render each clip with --motion-scale 0 and report default / still head motion")
    r.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    r.add_argument("--save-video", metavar="DIR", help="also keep each rendered clip as DIR/<clip>.mp4")
    r.add_argument("--check", action="store_true", help="exit with code 1 when a median target is missed")
    r.set_defaults(func=cmd_eval)

    x = sub.add_parser("expression", help="render each emotion at intensity 1 and report its re-tracked "
                                          "displacements against neutral (in inter-ocular distances)",
                       description="Render each emotion at intensity 1 on PHOTO (a closed-mouth portrait is "
                                   "best) and re-track it: brow height, inner-brow height, brow gap, eye "
                                   "opening, lower lid, corner lift, mouth width, upper-lip raise, each "
                                   "against a neutral render, in inter-ocular distances.")
    x.add_argument("image", nargs="?", default=None, metavar="PHOTO",
                   help="portrait (default: grace_hopper.jpg from matplotlib's sample data)")
    x.add_argument("--size", type=int, default=512, help="render size in pixels, 256-1024 (default 512)")
    x.add_argument("--mesh", action="store_true", help="read the renderer's deformed mesh instead of re-tracking")
    x.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    x.add_argument("--check", action="store_true", help="exit with code 1 when a target is missed")
    x.set_defaults(func=cmd_eval)
    return ev


def cmd_eval_expression(args) -> int:
    """`facecast eval expression`: the table (or JSON) of `emotions.measure_emotions`; 0, or 1
    with --check when one of `emotions.TARGETS` is missed."""
    from ..face.rig import build_rig
    from ..rendering.renderer import Renderer
    from .emotions import TARGETS as EXPR_TARGETS
    from .emotions import format_table as format_expr_table
    from .emotions import measure_emotions, missed
    image = args.image
    if image is None:
        import matplotlib.cbook
        image = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with FaceTracker(max_faces=1) as tracker:
        renderer = Renderer(build_rig(image, args.size, tracker=tracker))
        table = measure_emotions(renderer, None if args.mesh else tracker)
    bad = missed(table)
    if args.json:
        print(json.dumps({"reading": "mesh" if args.mesh else "retracked", "size": args.size, "emotions": table,
                          "targets": [list(t) for t in EXPR_TARGETS], "missed": bad, "passed": not bad}, indent=2))
    else:
        print(f"emotions at intensity 1 against neutral, {'deformed mesh' if args.mesh else 're-tracked'}, "
              f"in inter-ocular distances (+ = up, wider, together)")
        print(format_expr_table(table))
        print("PASS: all targets met" if not bad else "missed: " + "; ".join(bad))
    return 1 if (args.check and bad) else 0


def _clips_from_args(args) -> list[tuple[str, str, str, np.ndarray, int, list[Phoneme]]]:
    """(name, language, text, audio, sr, phonemes) per clip."""
    if args.audio or args.labels:
        if not (args.audio and args.labels):
            raise FacecastError("--audio and --labels go together: the evaluation needs the phoneme timing of the audio")
        from ..audio.io import load_audio
        from ..audio.speech import load_phoneme_labels
        audio = load_audio(args.audio, sample_rate=SAMPLE_RATE)
        ph = load_phoneme_labels(args.labels)
        return [(Path(args.audio).stem, "", "", audio, SAMPLE_RATE, ph)]
    langs = [s.strip() for s in (args.languages or "").split(",") if s.strip()]
    if not langs:
        raise FacecastError("--languages is empty; give eSpeak voices such as en,es,de")
    clips = []
    for lang in langs:
        base = lang.split("-")[0].lower()
        sentences = TEST_SENTENCES.get(base)
        if sentences is None:
            raise FacecastError(f"no test sentences for language {lang!r}; use one of "
                                f"{', '.join(TEST_SENTENCES)} or pass --audio and --labels")
        for k, text in enumerate(sentences, 1):
            audio, sr, ph = tts_clip(text, lang)
            clips.append((f"{lang}-{k}", lang, text, audio, sr, ph))
    return clips


def _fmt_rate(k: int, n: int, r: float) -> str:
    return f"{k}/{n} {r * 100:.0f}%" if n else "-"


def _mark(rep: LipSyncReport, name: str) -> str:
    return "*" if rep.checks()[name]["ok"] is False else " "


_COLUMNS = [("clip", 8), ("dur s", 6), ("bilabial closed", 15), ("open vowel open", 15),
            ("silence closed", 15), ("lag ms", 8), ("head dP", 8), ("blink/min", 9)]


def format_table(reports: list[LipSyncReport], overall: LipSyncReport) -> str:
    """The plain-text table `facecast eval lipsync` prints (* marks a missed target)."""
    def line(cells: list[str], marks: list[str]) -> str:
        out = []
        for (title, w), c, m in zip(_COLUMNS, cells, marks):
            out.append(f"{c:<{w}}" if title == "clip" else f"{c:>{w}}{m}")
        return " ".join(out).rstrip()

    def num(v: float, fmt: str) -> str:
        return format(v, fmt) if math.isfinite(v) else "-"

    def row(r: LipSyncReport) -> str:
        cells = [r.name, f"{r.duration_s:.1f}",
                 _fmt_rate(r.bilabials_closed, r.bilabials, r.bilabial_closure_rate),
                 _fmt_rate(r.open_vowels_opened, r.open_vowels, r.open_vowel_rate),
                 _fmt_rate(r.silence_frames_closed, r.silence_frames, r.silence_closed_rate),
                 num(r.lag_ms, "+.0f"), num(r.head_dp, ".2f"), num(r.blink_rate_per_min, ".1f")]
        marks = ["", " "] + [_mark(r, k) for k in ("bilabial_closure_rate", "open_vowel_rate",
                                                    "silence_closed_rate", "lag_ms", "head_dp",
                                                    "blink_rate_per_min")]
        return line(cells, marks)

    blank = [" "] * len(_COLUMNS)
    head = line([t for t, _ in _COLUMNS], blank)
    rule = "-" * len(head)
    targets = line(["target", "", target_text("bilabial_closure_rate"), target_text("open_vowel_rate"),
                    target_text("silence_closed_rate"), target_text("lag_ms"), target_text("head_dp"),
                    target_text("blink_rate_per_min")], blank)
    return "\n".join([head, rule] + [row(r) for r in reports] + [rule, row(overall), targets])


def cmd_eval(args) -> int:
    """`facecast eval lipsync`: print the table (or JSON); 0, or 1 with --check when an overall
    target is missed. User errors raise FacecastError (the CLI prints them, exit code 2)."""
    command = getattr(args, "eval_command", "lipsync")
    if command == "real":
        return cmd_eval_real(args)
    if command == "expression":
        return cmd_eval_expression(args)
    if command != "lipsync":
        raise FacecastError(f"unknown evaluation {command!r}; use 'lipsync', 'real' or 'expression'")
    # --fps, --size and --face are range-checked by the parser (facecast.cli.OPTION_RANGES);
    # evaluate_lipsync checks fps again for API callers.
    image = args.image
    if image is None:
        import matplotlib.cbook
        image = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    from .real import evaluation_mark
    save_dir = _save_dir(args.save_video)
    clips = _clips_from_args(args)
    t_start = time.perf_counter()
    reports = []
    with FaceTracker(max_faces=1) as tracker:
        animator = Animator(image, size=args.size, face=getattr(args, "face", 0))
        animator.mark = evaluation_mark(animator)
        rig = animator.rig
        for n in rig.notices:
            print(f"facecast: {n}", file=sys.stderr)
        for name, lang, text, audio, sr, ph in clips:
            if save_dir is not None:
                with VideoWriter(save_dir / f"{name}.mp4", args.fps, animator.frame_size, audio_rate=sr) as vw:
                    vw.write_audio(audio)
                    rep = evaluate_lipsync(audio, sr, ph, animator, args.fps, tracker=tracker, on_frame=vw.write)
            else:
                rep = evaluate_lipsync(audio, sr, ph, animator, args.fps, tracker=tracker)
            rep.name, rep.language, rep.text = name, lang, text
            reports.append(rep)
    overall = combine_reports(reports)
    wall = time.perf_counter() - t_start
    if args.json:
        print(json.dumps({"image": str(image), "size": rig.size, "fps": args.fps, "targets": {
            k: target_text(k) for k in TARGETS}, "clips": [r.to_dict() for r in reports],
            "overall": overall.to_dict(), "passed": overall.passed, "seconds": round(wall, 3)}, indent=2))
    else:
        print(f"lip-sync evaluation: {Path(str(image)).name}, {rig.size} px, {args.fps:g} fps, "
              f"{len(reports)} clip(s), {overall.duration_s:.1f} s of audio")
        print(format_table(reports, overall))
        s = overall.seconds
        print(f"commanded (motion, not pixels): lag {overall.lag_ms_commanded:+.0f} ms, head dP "
              f"{overall.head_dp_commanded:.2f} deg/frame, {overall.blinks_commanded} blinks; "
              f"frames lost to the tracker: {overall.frames_lost}/{overall.frames}")
        print(f"time: {wall:.1f} s ({wall / max(overall.duration_s, 1e-9):.2f} s per s of audio; generate "
              f"{s.get('generate', 0):.1f}, render {s.get('render', 0):.1f}, track {s.get('track', 0):.1f})"
              + (f"; videos in {save_dir}" if save_dir else ""))
        print("PASS: all targets met" if overall.passed else
              "FAIL: targets missed: " + ", ".join(k for k, c in overall.checks().items() if c["ok"] is False))
    return 1 if (args.check and not overall.passed) else 0


def _save_dir(path: str | None) -> Path | None:
    if not path:
        return None
    save_dir = Path(path)
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FacecastError(f"cannot create {save_dir}: {e.strerror or e}") from None
    return save_dir


# ---- facecast eval real ---------------------------------------------------------------------------
def _num(v, fmt: str) -> str:
    return format(v, fmt) if v is not None and math.isfinite(v) else "-"


#: (title, width, cells(report) -> text, target names whose miss marks the cell)
_REAL_COLUMNS = [
    ("clip", 22, lambda r: r.name, ()),
    ("s", 5, lambda r: _num(r.duration_s, ".1f"), ()),
    ("r lag0", 6, lambda r: _num(r.corr_lag0, ".2f"), ()),
    ("r best", 6, lambda r: _num(r.corr_best, ".2f"), ("corr_best",)),
    ("lag ms", 6, lambda r: _num(r.best_lag_ms, "+.0f"), ("best_lag_ms",)),
    ("closed real/fc", 14, lambda r: f"{_num(r.closed_real * 100, '.0f')}%/{_num(r.closed_facecast * 100, '.0f')}%",
     ("closed_ratio",)),
    ("voiced closed", 13,
     lambda r: f"{_num(r.closed_voiced_real * 100, '.0f')}%/{_num(r.closed_voiced_facecast * 100, '.0f')}%", ()),
    ("speed x", 7, lambda r: _num(r.opening_speed_ratio, ".2f"), ("opening_speed_ratio",)),
    ("head std deg", 13, lambda r: f"{_num(r.head_std_real, '.2f')}/{_num(r.head_std_facecast, '.2f')}", ()),
    ("x", 5, lambda r: _num(r.head_std_ratio, ".2f"), ("head_std_ratio",)),
    ("head deg/fr", 11, lambda r: f"{_num(r.head_motion_real, '.2f')}/{_num(r.head_motion_facecast, '.2f')}", ()),
    ("x", 5, lambda r: _num(r.head_motion_ratio, ".2f"), ("head_motion_ratio",)),
    ("/still", 6, lambda r: _num(r.still_ratio, ".2f"), ("still_ratio",)),
    ("blink/min", 9, lambda r: f"{_num(r.blink_rate_real, '.0f')}/{_num(r.blink_rate_facecast, '.0f')}",
     ("blink_rate_facecast",)),
    ("mouth IOD", 11, lambda r: f"{_num(r.mouth_shape, '.3f')}/{_num(r.mouth_shape_still, '.3f')}", ()),
    ("interior", 8, lambda r: _num((r.interior.get("interior_lightness") or {}).get("ratio"), ".2f"), ()),
]


def format_real_table(reports, median) -> str:
    """The plain-text table `facecast eval real` prints: one row per clip, the median, the targets
    (* marks a missed target; pairs are real/facecast; x = facecast / real)."""
    from .real import target_text

    def line(cells: list[str], marks: list[str]) -> str:
        out = []
        for (title, w, _, _), c, m in zip(_REAL_COLUMNS, cells, marks):
            out.append(f"{c:<{w}}" if title == "clip" else f"{c:>{w}}{m}")
        return " ".join(out).rstrip()

    def row(r) -> str:
        checks = r.checks()
        marks = ["*" if any(checks[n]["ok"] is False for n in names) else " " for *_, names in _REAL_COLUMNS]
        return line([cell(r) for _, _, cell, _ in _REAL_COLUMNS], marks)

    blank = [" "] * len(_REAL_COLUMNS)
    head = line([t for t, *_ in _REAL_COLUMNS], blank)
    rule = "-" * len(head)
    tgt = {n: target_text(n) for n in ("corr_best", "best_lag_ms", "opening_speed_ratio", "head_std_ratio",
                                       "head_motion_ratio", "still_ratio", "blink_rate_facecast")}
    targets = line(["target", "", "", tgt["corr_best"], "+-40", "fc >= 0.6x", "", tgt["opening_speed_ratio"], "",
                    tgt["head_std_ratio"], "", tgt["head_motion_ratio"], tgt["still_ratio"],
                    "fc " + tgt["blink_rate_facecast"], "", ""], blank)
    return "\n".join([head, rule] + [row(r) for r in reports] + [rule, row(median), targets])


def cmd_eval_real(args) -> int:
    """`facecast eval real`: print the table (or JSON); 0, or 1 with --check when a target is
    missed by the median over the clips. User errors raise FacecastError (exit code 2)."""
    from ..motion.controls import Controls
    from .real import TARGETS as REAL_TARGETS
    from .real import check_real_clip, evaluate_real_clip, median_report
    from .real import target_text as real_target_text
    for video in args.videos:    # every clip is checked before any is rendered
        check_real_clip(video)
    save_dir = _save_dir(args.save_video)
    controls = Controls(seed=args.seed)
    t_start = time.perf_counter()
    reports = []

    def notice(n: str) -> None:
        print(f"facecast: {n}", file=sys.stderr)

    with FaceTracker(max_faces=1) as tracker:
        for video in args.videos:
            reports.append(evaluate_real_clip(video, size=args.size, tracker=tracker, controls=controls,
                                              still_baseline=args.still_baseline, save_dir=save_dir,
                                              on_notice=notice))
    median = median_report(reports)
    wall = time.perf_counter() - t_start
    if args.json:
        print(json.dumps({"size": args.size, "seed": args.seed, "targets": {
            k: real_target_text(k) for k in REAL_TARGETS}, "clips": [r.to_dict() for r in reports],
            "median": median.to_dict(), "passed": median.passed, "seconds": round(wall, 3)}, indent=2))
    else:
        print(f"evaluation against real video: {len(reports)} clip(s), {median.duration_s:.1f} s, "
              f"rendered at {args.size} px (pairs are real/facecast; x = facecast / real)")
        print(format_real_table(reports, median))
        lost_r = sum(r.frames_lost_real for r in reports)
        lost_f = sum(r.frames_lost_facecast for r in reports)
        print(f"frames lost to the tracker: real {lost_r}, facecast {lost_f} of {median.frames}; "
              f"time {wall:.1f} s" + (f"; videos in {save_dir}" if save_dir else ""))
        print("PASS: all median targets met" if median.passed else
              "FAIL: median targets missed: " + ", ".join(k for k, c in median.checks().items() if c["ok"] is False))
    return 1 if (args.check and not median.passed) else 0
