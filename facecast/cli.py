"""The `facecast` command line: a thin layer over the Python API.

    facecast render IMAGE AUDIO -o out.mp4 [controls] [--size N] [--fps F] [--save-motion M]
    facecast motion AUDIO -o motion.json|motion.csv [controls] [--fps F]
    facecast demo [-o demo.mp4]
    facecast eval lipsync [--languages en,es,de] [--audio A --labels L]
    facecast analyze IMAGE -o overlay.png [--json]
    facecast serve [IMAGE] [--host 127.0.0.1] [--port 8000]
    facecast animate IMAGE (--motion motion.json|.csv | --preset NAME) -o out.mp4 [--audio A]
    facecast verify VIDEO|IMAGE [--json]
    facecast capture VIDEO -o motion.json|motion.csv [--face N] [--max-gap S]
    facecast drive IMAGE VIDEO -o out.mp4 [--relative | --absolute] [--audio A] [--gaze Y,P] ...

User errors print one line `facecast: error: ...` and exit with code 2, bad arguments included
(`FacecastParser`); every numeric option is checked against its range in `OPTION_RANGES`.
Warnings (`FacecastWarning`) print one line `facecast: warning: ...`.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

from .errors import FacecastError, FacecastWarning
from .face.rig import MAX_SIZE, MIN_SIZE
from .motion.controls import CONTROL_RANGES, format_number, range_message
from .motion.presets import FPS_RANGE, SECONDS_RANGE

#: The range (lo, hi) of every numeric option of every command, by option name; for a pair
#: option (--gaze, --head-offset) it holds for each number. `build_parser` gives each such
#: option a type that checks it (`bounded`), and fails when an int, float or pair option has no
#: range here, so no number reaches a command unchecked. The controls' ranges are the ones
#: `Controls` checks (`CONTROL_RANGES`).
OPTION_RANGES: dict[str, tuple[float, float]] = {
    "--size": (MIN_SIZE, MAX_SIZE),
    "--face": (0, 99),
    "--driver-face": (0, 5),
    "--fps": FPS_RANGE,
    "--seconds": SECONDS_RANGE,
    "--port": (0, 65535),
    "--max-sessions": (1, 64),
    "--workers": (1, 64),
    "--max-gap": (0.0, 60.0),          # seconds a driver video may lose the face (capture.core.MAX_GAP_RANGE)
    **{"--" + name.replace("_", "-"): lo_hi for name, lo_hi in CONTROL_RANGES.items()},
}

# Negative values. argparse takes an argument that starts with '-' for an option unless the
# parser's `_negative_number_matcher` calls it a negative number, and its pattern knows only '-15'
# and '-.5': the README's `--gaze -15,0` (and `--seconds -1e3`) failed with "expected one
# argument". `FacecastParser` sets that attribute (read by argparse's `_parse_optional`, the same
# since Python 2.7) to a pattern that also takes exponents, inf/nan and comma-separated lists.
# argparse consults it only for arguments that are not a known option, and no facecast option
# looks like a number, so an option is never read as a value. Being per parser, it covers every
# subcommand (unlike rewriting argv, which would have to know which options take pairs).
_NUMBER = r"(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|infinity|nan)"
_NEGATIVE_NUMBERS = re.compile(rf"^-{_NUMBER}(?:,\s*[-+]?{_NUMBER})*$", re.IGNORECASE)


class FacecastParser(argparse.ArgumentParser):
    """argparse with the project's error format, for the main parser and (through
    `add_subparsers`, which makes subparsers of the parent's class) every subcommand: a bad
    argument prints one line `facecast: error: ...` and exits with code 2, no usage block."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBERS

    def error(self, message: str):
        # argparse words a bad value as "argument --fps: --fps must be ..."; keep "--fps must be ..."
        message = re.sub(r"^argument (?:\S+/)?(\S+): (?=\1 )", "", message)
        self.exit(2, f"facecast: error: {' '.join(message.split())}\n")


def bounded(parse, lo: float, hi: float, name: str):
    """An argparse type: `parse` (int, float or `_pair`) the text, then check that each number
    is within [lo, hi]; the error names the option and the range."""
    pair = parse is _pair
    what = "a whole number" if parse is int else "two numbers like 10,-5, each" if pair else "a number"

    def convert(text: str):
        try:
            value = parse(text)
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(
                f"{name} must be {what} between {format_number(lo)} and {format_number(hi)}, got {text}") from None
        if not all(lo <= v <= hi for v in (value if pair else (value,))):
            raise argparse.ArgumentTypeError(range_message(f"{name}{' (each number)' if pair else ''}", lo, hi, text))
        return value

    return convert


def _apply_ranges(parser: argparse.ArgumentParser) -> None:
    """Give every numeric option of `parser` and its subcommands its `OPTION_RANGES` check."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                _apply_ranges(sub)
        elif action.type in (int, float, _pair):
            name = max(action.option_strings, key=len, default=action.dest)
            if name not in OPTION_RANGES:
                raise RuntimeError(f"{parser.prog} {name} takes a number but has no range in OPTION_RANGES")
            action.type = bounded(action.type, *OPTION_RANGES[name], name)


def _add_rig_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="portrait photo, painting or drawing (JPEG, PNG, WebP, TIFF, BMP)")
    p.add_argument("--size", type=int, default=512, help="output crop size in pixels, 256-1024 (default 512)")
    p.add_argument("--face", type=int, default=0, help="which face to use when there are several: 0 = largest")


DEMO_TEXT = ("Hello! I am Grace Hopper. Maybe you have heard of my work on compilers. "
             "Remember: a ship in port is safe, but that is not what ships are built for.")
#: Silence after the demo sentence: eSpeak's audio stops mid-vowel, and the face needs a few
#: frames after the last sound to close its mouth (see `speech.synthesize`).
DEMO_TRAILING_SILENCE_S = 0.5


def build_parser() -> argparse.ArgumentParser:
    ap = FacecastParser(prog="facecast", description="One portrait + motion or speech -> talking-face video, on a CPU.")
    sub = ap.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="find the face; draw landmarks, pose and masks")
    _add_rig_args(a)
    a.add_argument("-o", "--output", required=True, help="overlay image to write (.png/.jpg)")
    a.add_argument("--json", action="store_true", help="also print the rig's numbers as JSON")

    r = sub.add_parser("render", help="portrait + speech -> talking-face video (the main job)")
    _add_rig_args(r)
    r.add_argument("audio", help="speech: wav, mp3, flac, ogg, m4a/aac, or a video's audio track")
    r.add_argument("-o", "--output", required=True, help="output .mp4/.webm/.mov/.mkv, or a folder for PNG frames")
    r.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25; 30 and 60 work)")
    r.add_argument("--full-frame", action="store_true", help="paste the animated crop back into the whole photo")
    r.add_argument("--save-motion", help="also write the generated motion (.json or .csv)")
    _add_control_args(r)
    _add_provenance_args(r)
    _add_verbosity(r)

    d = sub.add_parser("demo", help="render the bundled sample: Grace Hopper speaking an eSpeak NG sentence")
    d.add_argument("-o", "--output", default="demo.mp4", help="output video (default demo.mp4)")
    d.add_argument("--text", default=DEMO_TEXT, help="what she says")
    d.add_argument("--voice", default="en", help="eSpeak NG voice, e.g. en, es, de, fr")
    d.add_argument("--size", type=int, default=512, help="output size (default 512)")
    _add_provenance_args(d)
    _add_verbosity(d)

    mo = sub.add_parser("motion", help="speech -> motion file (ARKit blendshapes + head pose) for other tools")
    mo.add_argument("audio", help="speech file")
    mo.add_argument("-o", "--output", required=True, help="motion file to write (.json or .csv)")
    mo.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25; Live Link Face uses 60)")
    _add_control_args(mo)
    _add_verbosity(mo)

    from .evaluation.cli import add_eval_parser
    from .live.serve import add_serve_parser
    add_eval_parser(sub)
    add_serve_parser(sub)

    m = sub.add_parser("animate", help="render a motion file or a preset onto the portrait")
    _add_rig_args(m)
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--motion", help="motion file (.json or .csv, see README)")
    src.add_argument("--preset", help="nod, shake, tilt, smile, talk, blink or gaze")
    m.add_argument("-o", "--output", required=True, help="output .mp4/.webm/.mov/.mkv, or a folder for PNG frames")
    m.add_argument("--audio", help="audio to mux into the video (trimmed or padded to the motion's length)")
    m.add_argument("--seconds", type=float, default=4.0, help="length of a preset clip (default 4)")
    m.add_argument("--fps", type=float, default=25.0, help="frame rate of a preset clip (default 25)")
    m.add_argument("--full-frame", action="store_true", help="paste the animated crop back into the whole photo")
    _add_provenance_args(m)
    _add_verbosity(m)

    v = sub.add_parser("verify", help="is this a facecast video? the invisible watermark, container tags, C2PA")
    v.add_argument("file", metavar="VIDEO|IMAGE", help="a video (mp4, webm, mov, mkv, ...) or an image (a frame)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")

    ca = sub.add_parser("capture", help="video of a face -> motion file (head pose, ARKit blendshapes, gaze, blinks)")
    ca.add_argument("video", help="video with a face (mp4, mov, webm, mkv, ...), read at its own frame rate")
    ca.add_argument("-o", "--output", required=True, help="motion file to write (.json or .csv)")
    ca.add_argument("--face", type=int, default=0, help="which face to follow when there are several: 0 = largest")
    ca.add_argument("--max-gap", type=float, default=2.0,
                    help="seconds without a face that are interpolated (default 2); longer is an error")
    ca.add_argument("--raw", action="store_true", help="no smoothing (the tracker's jitter stays)")
    _add_verbosity(ca)

    dr = sub.add_parser("drive", help="make the portrait perform a video (motion capture + render)")
    _add_rig_args(dr)
    dr.add_argument("video", help="driver video with a face; its audio track is muxed")
    dr.add_argument("-o", "--output", required=True, help="output .mp4/.webm/.mov/.mkv, or a folder for PNG frames")
    mode = dr.add_mutually_exclusive_group()
    mode.add_argument("--relative", dest="mode", action="store_const", const="relative",
                      help="apply the driver's changes from its first frame to the portrait's own expression (default)")
    mode.add_argument("--absolute", dest="mode", action="store_const", const="absolute",
                      help="copy the driver's blendshape weights as they are")
    dr.set_defaults(mode="relative")
    dr.add_argument("--audio", help="audio to mux instead of the driver's own track")
    dr.add_argument("--driver-face", type=int, default=0, help="which face of the video drives: 0 = largest")
    dr.add_argument("--max-gap", type=float, default=2.0,
                    help="seconds without a face in the driver that are interpolated (default 2)")
    dr.add_argument("--gaze", type=_pair, default=None, help="fix the eyes at YAW,PITCH degrees (default: the driver's)")
    dr.add_argument("--motion-scale", type=float, default=1.0, help="head-motion amount, 0-3 (1 = the driver's)")
    dr.add_argument("--expression-scale", type=float, default=1.0, help="expression amount, 0-2 (1 = the driver's)")
    dr.add_argument("--full-frame", action="store_true", help="paste the animated crop back into the whole photo")
    dr.add_argument("--save-motion", help="also write the portrait's motion (.json or .csv)")
    _add_provenance_args(dr)
    _add_verbosity(dr)

    b = sub.add_parser("batch", help="render many jobs from a CSV or JSONL manifest (local pool or Ray)")
    b.add_argument("manifest", help="CSV or JSONL: image, audio (or motion), output, controls per row (see README)")
    b.add_argument("-o", "--output", required=True, help="output folder (created if missing); holds results.jsonl")
    b.add_argument("--workers", type=int, help="local worker processes (default: one per core pair)")
    b.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run on Ray: the cluster at ADDRESS, or a local one when no address is given")
    b.add_argument("--retry-failed", action="store_true", help="run only the jobs that failed last time")
    _add_verbosity(b)
    _apply_ranges(ap)
    return ap


def _add_provenance_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("provenance (see README: Responsible use)")
    g.add_argument("--no-watermark", action="store_true",
                   help="leave out the invisible watermark that marks every frame as made by facecast "
                        "(for research on unmarked output; the container still says it is synthetic)")
    g.add_argument("--sign", nargs=2, metavar=("CERT", "KEY"),
                   help="add a C2PA manifest signed with this certificate chain and private key (PEM); "
                        "needs facecast[c2pa]; .mp4 and .mov")


def _provenance(args, out) -> dict:
    """Check --sign before rendering and print --no-watermark's notice; the Animator/render keywords."""
    sign = getattr(args, "sign", None)
    if sign:
        from .provenance.metadata import check_signing
        check_signing(*sign, out)
    if getattr(args, "no_watermark", False):
        print("facecast: notice: --no-watermark: the frames carry no watermark; label this video as "
              "synthetic yourself", file=sys.stderr)
    return {"sign": tuple(sign) if sign else None}


def _add_verbosity(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", help="print nothing but warnings and errors")
    g.add_argument("--verbose", action="store_true", help="print timings and the rig's numbers")


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 10,-5, got {text!r}") from None
    return a, b


def _add_control_args(p: argparse.ArgumentParser) -> None:
    c = p.add_argument_group("controls (whole clip; --controls FILE for keyframed tracks)")
    c.add_argument("--emotion", default="neutral", help="neutral, happy, sad, angry, surprised, disgusted, fearful, contempt, "
                   "with intensity: happy:0.7; blends: happy:0.5+surprised:0.3")
    c.add_argument("--gaze", type=_pair, default=(0.0, 0.0), help="where the eyes rest: YAW,PITCH degrees (0,0 = camera)")
    c.add_argument("--head-distance", type=float, default=1.0, help="head size factor, 0.5-2 (1 = as photographed)")
    c.add_argument("--head-offset", type=_pair, default=(0.0, 0.0), help="head position offset X,Y in crop widths")
    c.add_argument("--motion-scale", type=float, default=1.0, help="head-motion amount, 0-3 (0 = still head)")
    c.add_argument("--still", action="store_true", help="same as --motion-scale 0")
    c.add_argument("--expression-scale", type=float, default=1.0, help="mouth and expression amount, 0-2")
    c.add_argument("--blink-rate", type=float, default=17.0, help="blinks per minute (default 17)")
    c.add_argument("--seed", type=int, default=0, help="random seed of head motion, blinks, saccades")
    c.add_argument("--controls", help="controls JSON file with keyframes (see README)")


def _controls(args):
    from .motion.controls import Controls, ControlTrack
    base = Controls(emotion=args.emotion, gaze=args.gaze, head_distance=args.head_distance,
                    head_offset=args.head_offset, motion_scale=0.0 if args.still else args.motion_scale,
                    expression_scale=args.expression_scale, blink_rate=args.blink_rate, seed=args.seed)
    return ControlTrack.load(args.controls, base) if args.controls else base


class Progress:
    """A one-line progress bar with ETA on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, unit: str = "fps"):
        self.enabled = enabled and sys.stderr.isatty()
        self.unit = unit
        self.t0 = None
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        import time
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = now
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-6)
        eta = (total - done) / max(rate, 1e-6)
        bar = "#" * int(30 * done / total)
        sys.stderr.write(f"\r[{bar:<30}] {100 * done / total:5.1f}%  {rate:5.1f} {self.unit}  ETA {int(eta) // 60}:{int(eta) % 60:02d} ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a `kill`, a container stop) unwinds like Ctrl-C, so partial outputs are removed."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    _interrupt_on_sigterm()
    try:
        with _warnings_as_lines():
            return COMMANDS[args.command](args)
    except FacecastError as e:
        print(f"facecast: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("facecast: interrupted; nothing was written", file=sys.stderr)
        return 130


@contextmanager
def _warnings_as_lines():
    """Print each FacecastWarning as one line `facecast: warning: ...` (other warnings as usual)."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, FacecastWarning):
                print(f"facecast: warning: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _notices(notices) -> None:
    """Print each notice as one `facecast: ...` line on stderr."""
    for n in notices:
        print(f"facecast: {n}", file=sys.stderr)


def _wrote(args, what: str) -> None:
    """The closing `facecast: wrote ...` line, unless --quiet."""
    if not args.quiet:
        print(f"facecast: wrote {what}", file=sys.stderr)


def _rig(args):
    from .face.rig import build_rig
    from .face.tracking import FaceTracker
    # --verbose keeps MediaPipe's native log lines, which are dropped otherwise (see tracking)
    verbose = getattr(args, "verbose", False)
    with (FaceTracker(native_logs=True) if verbose else nullcontext()) as tracker:
        rig = build_rig(args.image, size=args.size, face_index=args.face, tracker=tracker)
    _notices(rig.notices)
    return rig


def cmd_analyze(args) -> int:
    from .face.overlay import draw_overlay
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise FacecastError("the overlay is written as .png or .jpg")
    if not out.parent.exists():
        raise FacecastError(f"output folder {out.parent} does not exist")
    rig = _rig(args)
    import cv2

    from .outputs import PendingFile
    img = draw_overlay(rig)
    with PendingFile(out) as f:
        if not cv2.imwrite(str(f.path), img[:, :, ::-1]):
            raise FacecastError(f"cannot write {out}")
    if args.json:
        print(json.dumps(rig.summary(), indent=2))
    return 0


def cmd_animate(args) -> int:
    from .audio.io import load_audio_info
    from .motion.presets import preset_motion
    from .motion.types import MotionSequence
    from .pipeline import Animator
    from .video import check_output_path
    out = check_output_path(args.output, [args.image, args.motion, args.audio])
    motion = MotionSequence.load(args.motion) if args.motion else preset_motion(args.preset, args.seconds, args.fps)
    if len(motion) == 0:
        raise FacecastError("the motion has no frames")
    if args.audio:
        load_audio_info(args.audio)  # fail early on bad audio, before building the rig
    writer_kw = _provenance(args, out)
    anim = Animator(args.image, rig=_rig(args), full_frame=args.full_frame, watermark=not args.no_watermark)
    res = anim.animate(motion, out, audio=args.audio, progress=Progress(not args.quiet), **writer_kw)
    _wrote(args, f"{res.output} ({res.frames} frames, {res.duration_s:.2f} s)")
    return 0


def cmd_render(args) -> int:
    import time

    from .audio.io import load_audio_info
    from .pipeline import Animator
    from .video import check_output_path
    t0 = time.perf_counter()
    out = check_output_path(args.output, [args.image, args.audio])
    controls = _controls(args)
    load_audio_info(args.audio)  # fail early on bad audio, before building the rig
    writer_kw = _provenance(args, out)
    rig = _rig(args)
    anim = Animator(args.image, rig=rig, full_frame=args.full_frame, watermark=not args.no_watermark)
    if args.verbose:
        print(f"facecast: rig {json.dumps(rig.summary())}", file=sys.stderr)
    res = anim.render(args.audio, out, fps=args.fps, controls=controls, save_motion=args.save_motion,
                      progress=Progress(not args.quiet), **writer_kw)
    if not args.quiet:
        total = time.perf_counter() - t0
        print(f"facecast: wrote {res.output} ({res.frames} frames, {res.duration_s:.2f} s of video, "
              f"{res.frames / max(res.wall_s, 1e-9):.1f} fps; {total:.1f} s in all)", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    import tempfile

    import matplotlib.cbook

    from .audio.io import save_wav
    from .audio.speech import synthesize
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    audio, sr, _ = synthesize(args.text, args.voice, trailing_silence_s=DEMO_TRAILING_SILENCE_S)
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "demo.wav"
        save_wav(wav, audio, sr)
        ns = build_parser().parse_args(["render", photo, str(wav), "-o", args.output, "--size", str(args.size)]
                                       + (["--quiet"] if args.quiet else []) + (["--verbose"] if args.verbose else [])
                                       + (["--no-watermark"] if args.no_watermark else [])
                                       + (["--sign", *args.sign] if args.sign else []))
        return cmd_render(ns)


def cmd_motion(args) -> int:
    from .audio.io import load_audio
    from .motion.generator import generate_motion
    from .outputs import check_motion_path
    check_motion_path(args.output)
    controls = _controls(args)
    motion = generate_motion(load_audio(args.audio, 16000), 16000, args.fps, controls)
    motion.save(args.output)
    _wrote(args, f"{args.output} ({len(motion)} frames at {args.fps:g} fps)")
    return 0


def cmd_capture(args) -> int:
    from .capture.core import capture
    motion, report = capture(args.video, args.output, face=args.face, max_gap_s=args.max_gap, smooth=not args.raw)
    _notices(report.notices())
    _wrote(args, f"{args.output} ({len(motion)} frames at {motion.fps:g} fps; captured at {report.fps:.1f} fps)")
    return 0


def cmd_drive(args) -> int:
    from .audio.io import load_audio_info
    from .capture.retarget import Retargeter
    from .footage import video_info
    from .pipeline import Animator
    from .video import check_output_path
    out = check_output_path(args.output, [args.image, args.video, args.audio])
    info = video_info(args.video)  # fail early on a bad driver or audio, before building the rig
    if args.audio:
        load_audio_info(args.audio)
    elif not info.has_audio:
        raise FacecastError(f"{args.video} has no audio track; pass --audio A to give the video a sound track")
    Retargeter(None, args.mode, args.motion_scale, args.expression_scale, args.gaze)  # range checks
    writer_kw = _provenance(args, out)
    anim = Animator(args.image, rig=_rig(args), full_frame=args.full_frame, watermark=not args.no_watermark)
    reports: list = []
    res = anim.drive(args.video, out, mode=args.mode, audio=args.audio, face=args.driver_face,
                     motion_scale=args.motion_scale, expression_scale=args.expression_scale, gaze=args.gaze,
                     max_gap_s=args.max_gap, progress=Progress(not args.quiet), report=reports,
                     save_motion=args.save_motion, **writer_kw)
    _notices(reports[0].notices() if reports else [])
    _wrote(args, f"{res.output} ({res.frames} frames, {res.duration_s:.2f} s, "
                 f"{res.frames / max(res.wall_s, 1e-9):.1f} fps)")
    return 0


def cmd_verify(args) -> int:
    """Exit 0 when the watermark is found, 1 when not; a file it cannot read is a user error (2)."""
    from .provenance.verify import summary, verify
    report = verify(args.file)
    print(json.dumps(report, indent=2) if args.json else summary(report))
    return 0 if report["found"] else 1


def cmd_eval(args) -> int:
    from .evaluation.cli import cmd_eval as run
    return run(args)


def cmd_serve(args) -> int:
    from .live.serve import cmd_serve as run
    return run(args)


def cmd_batch(args) -> int:
    """Exit 0 when every job is done or skipped, 1 when any failed (recorded in results.jsonl)."""
    from .batching.runner import run_batch
    bar = Progress(not args.quiet, unit="jobs/s")

    def on_result(r, finished: int, total: int) -> None:
        if not args.quiet:
            if bar.enabled:
                sys.stderr.write("\r\033[K")
            what = {"done": f"{r.video_s:.1f} s of video in {r.wall_s:.1f} s", "skipped": r.reason,
                    "failed": r.reason}[r.status]
            print(f"facecast: {r.status} row {r.row} {r.name}: {what}", file=sys.stderr)
        bar(finished, total)

    s = run_batch(args.manifest, args.output, engine="local" if args.ray is None else "ray",
                  address=args.ray or None, workers=args.workers, retry_failed=args.retry_failed,
                  on_result=on_result)
    if not args.quiet:
        print(f"facecast: batch: {s.done} done, {s.skipped} skipped, {s.failed} failed; "
              f"{s.video_s / 60:.1f} min of video in {s.wall_s / 60:.1f} min ({s.speed:.2f}x real time)",
              file=sys.stderr)
    return 1 if s.failed else 0


COMMANDS = {"analyze": cmd_analyze, "animate": cmd_animate, "render": cmd_render, "motion": cmd_motion,
            "demo": cmd_demo, "eval": cmd_eval, "serve": cmd_serve, "batch": cmd_batch, "verify": cmd_verify,
            "capture": cmd_capture, "drive": cmd_drive}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
