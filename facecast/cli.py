"""The `facecast` command line: a thin layer over the Python API.

    facecast analyze IMAGE -o overlay.png [--json]
    facecast animate IMAGE (--motion motion.json|.csv | --preset NAME) -o out.mp4 [--audio A]

User errors print one line `facecast: error: ...` and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import FacecastError


def _add_rig_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="portrait photo, painting or drawing (JPEG, PNG, WebP, TIFF, BMP)")
    p.add_argument("--size", type=int, default=512, help="output crop size in pixels, 256-1024 (default 512)")
    p.add_argument("--face", type=int, default=0, help="which face to use when there are several: 0 = largest")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="facecast", description="One portrait + motion or speech -> talking-face video, on a CPU.")
    sub = ap.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="find the face; draw landmarks, pose and masks")
    _add_rig_args(a)
    a.add_argument("-o", "--output", required=True, help="overlay image to write (.png/.jpg)")
    a.add_argument("--json", action="store_true", help="also print the rig's numbers as JSON")

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
    m.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        if args.command == "analyze":
            return cmd_analyze(args)
        if args.command == "animate":
            return cmd_animate(args)
    except FacecastError as e:
        print(f"facecast: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("facecast: interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


def _rig(args):
    from .rig import build_rig
    rig = build_rig(args.image, size=args.size, face_index=args.face)
    for n in rig.notices:
        print(f"facecast: {n}", file=sys.stderr)
    return rig


def cmd_analyze(args) -> int:
    from .overlay import draw_overlay
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise FacecastError("the overlay is written as .png or .jpg")
    if not out.parent.exists():
        raise FacecastError(f"output folder {out.parent} does not exist")
    rig = _rig(args)
    import cv2
    img = draw_overlay(rig)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    if not cv2.imwrite(str(tmp), img[:, :, ::-1]):
        tmp.unlink(missing_ok=True)
        raise FacecastError(f"cannot write {out}")
    tmp.replace(out)
    if args.json:
        print(json.dumps(rig.summary(), indent=2))
    return 0


def cmd_animate(args) -> int:
    from .motion import MotionSequence
    from .presets import preset_motion
    from .render import FullFramePaster, Renderer
    from .video import VideoWriter, check_output_path
    out = check_output_path(args.output, [args.image, args.motion, args.audio])
    motion = MotionSequence.load(args.motion) if args.motion else preset_motion(args.preset, args.seconds, args.fps)
    if len(motion) == 0:
        raise FacecastError("the motion has no frames")
    audio, rate = None, 16000
    if args.audio:
        from .audio import load_audio
        audio = load_audio(args.audio, sample_rate=rate)
    rig = _rig(args)
    renderer = Renderer(rig)
    paster = FullFramePaster(rig) if args.full_frame else None
    size = (paster.shape[1], paster.shape[0]) if paster else rig.size
    with VideoWriter(out, motion.fps, size, audio=audio, audio_rate=rate) as vw:
        for frame_motion in motion:
            frame = renderer.render(frame_motion)
            vw.write(paster.paste(frame) if paster else frame)
    if not args.quiet:
        print(f"facecast: wrote {out} ({len(motion)} frames, {motion.duration:.2f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
