"""The watermark, measured: embedding cost per frame, invisibility (PSNR), detection in 2-second
windows after each attack on several portraits, and false positives on unmarked material.

    python bench/bench_watermark.py [--seconds 10] [--speed-only] [--json out.json]

Portraits: Grace Hopper (matplotlib), the astronaut (scikit-image), and the first frames of the
real clips in ../shared/real when that folder exists (a fresh clone has none: they are skipped).
Each portrait speaks `--seconds` of eSpeak NG speech, rendered through `Animator.render` to an
H.264 mp4 (CRF 20, as `facecast render` writes); every attack in `provenance.attacks.ATTACKS`
is applied to that file and the result is read in 2-second windows (a new one every second).
False positives: the real clips (every 2-second window and every single frame), unmarked renders
of each portrait, and photos shipped in scikit-image and matplotlib, each alone.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facecast.provenance.attacks import ATTACKS, read_frames, transcode  # noqa: E402
from facecast.provenance.watermark import Watermark, detect_residual, residual  # noqa: E402

REAL = ROOT.parent / "shared" / "real"
TEXT = ("The quick brown fox jumps over the lazy dog. Maybe Bob can map a big apple, "
        "and Peter Piper picked a peck of pickled peppers. We will meet again next summer by the sea.")


def embed_speed(sizes=(256, 512, 1024), n: int = 300) -> dict:
    import skimage.data
    out = {}
    for s in sizes:
        img = cv2.resize(skimage.data.astronaut(), (s, s))
        wm = Watermark()
        t = time.perf_counter()
        wm.apply(img)
        first = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(n):
            wm.apply(img)
        out[s] = {"ms_per_frame": 1e3 * (time.perf_counter() - t) / n, "first_frame_ms": 1e3 * first}
    return out


def windows(res: list[np.ndarray], fps: float, seconds: float = 2.0, step_s: float = 1.0):
    """Detections of the mean residual over each `seconds` window, one every `step_s`."""
    n, step = max(1, int(round(seconds * fps))), max(1, int(round(step_s * fps)))
    csum = np.cumsum(np.stack(res), axis=0)
    out = []
    for start in range(0, max(1, len(res) - n + 1), step):
        end = min(len(res), start + n)
        total = csum[end - 1] - (csum[start - 1] if start else 0)
        out.append(detect_residual(total / (end - start), end - start))
    return out


def portraits() -> list[tuple[str, object]]:
    import matplotlib.cbook
    import skimage.data
    out = [("hopper", matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
           ("astronaut", skimage.data.astronaut())]
    if REAL.is_dir():
        for clip in sorted(REAL.glob("*.mp4")):
            frames, _ = read_frames(clip)
            out.append((clip.stem, frames[0]))
    return out


def robustness(seconds: float, folder: Path, report: dict) -> None:
    from facecast.audio.io import save_wav
    from facecast.audio.speech import synthesize
    from facecast.errors import FacecastError
    from facecast.evaluation.retrack import psnr
    from facecast.pipeline import Animator
    audio, sr, _ = synthesize(TEXT, "en")
    audio = np.tile(audio, int(np.ceil(seconds * sr / len(audio))))[:int(seconds * sr)]
    wav = folder / "speech.wav"
    save_wav(wav, audio, sr)
    per_attack: dict[str, dict] = {k: {"windows": 0, "detected": 0, "payload": 0, "min_score": 1e9, "wrong_id": 0}
                                   for k in ATTACKS}
    unmarked_windows, unmarked_fp, psnrs = 0, 0, []
    for name, image in portraits():
        try:
            anim = Animator(image, size=512)
        except FacecastError as e:
            print(f"{name}: skipped ({e})")
            continue
        marked = folder / f"{name}.mp4"
        res = anim.render(wav, marked)
        # invisibility: the same motion frames with and without the mark
        from facecast.motion.presets import preset_motion
        plain = Animator(image, rig=anim.rig, watermark=False)
        for mf in list(preset_motion("talk", 1.0, 25))[::5]:
            psnrs.append(psnr(plain.frame(mf), anim.frame(mf)))
        for attack, kw in ATTACKS.items():
            path = marked if not kw else folder / f"{name}-{attack.replace(' ', '_').replace('%', '')}.mp4"
            if kw:
                transcode(marked, path, **kw)
            frames, fps = read_frames(path)
            dets = windows([residual(f) for f in frames], fps)
            a = per_attack[attack]
            a["windows"] += len(dets)
            a["detected"] += sum(d.found for d in dets)
            a["payload"] += sum(d.payload is not None and d.payload.video_id == res.video_id for d in dets)
            a["wrong_id"] += sum(d.payload is not None and d.payload.video_id != res.video_id for d in dets)
            a["min_score"] = min(a["min_score"], min(d.score for d in dets))
            print(f"{name:22s} {attack:16s} {sum(d.found for d in dets)}/{len(dets)} windows, "
                  f"scores {min(d.score for d in dets):.1f}-{max(d.score for d in dets):.1f}, "
                  f"payload read in {sum(d.payload is not None for d in dets)}", flush=True)
        # the same portrait, unmarked
        plain.render(wav, folder / f"{name}-plain.mp4")
        frames, fps = read_frames(folder / f"{name}-plain.mp4")
        dets = windows([residual(f) for f in frames], fps)
        unmarked_windows += len(dets)
        unmarked_fp += sum(d.found for d in dets)
    report["psnr_db"] = {"min": float(np.min(psnrs)), "mean": float(np.mean(psnrs))}
    report["attacks"] = per_attack
    report["unmarked_renders"] = {"windows": unmarked_windows, "false_positives": unmarked_fp}


def false_positives(report: dict) -> None:
    import matplotlib.cbook
    import skimage.data
    images = {n: getattr(skimage.data, n)() for n in ("astronaut", "camera", "coffee", "chelsea", "rocket",
                                                       "immunohistochemistry", "hubble_deep_field", "coins", "moon",
                                                       "page", "text", "grass", "gravel", "brick", "retina")}
    for n in ("grace_hopper.jpg",):
        images[n] = cv2.imread(matplotlib.cbook.get_sample_data(n, asfileobj=False))[:, :, ::-1]
    fp_images = [n for n, im in images.items() if detect_residual(residual(im)).found]
    scores = [detect_residual(residual(im)).score for im in images.values()]
    report["photos"] = {"n": len(images), "false_positives": fp_images, "max_score": float(max(scores))}
    print(f"photos: {len(fp_images)} false positives of {len(images)}, max score {max(scores):.1f}")
    if not REAL.is_dir():
        print("real clips: ../shared/real not found; skipped")
        return
    n_frames = n_windows = fp_frames = fp_windows = 0
    max_frame = max_window = 0.0
    for clip in sorted(REAL.glob("*.mp4")):
        frames, fps = read_frames(clip)
        res = [residual(f) for f in frames]
        for r in res:
            d = detect_residual(r)
            n_frames += 1
            fp_frames += d.found
            max_frame = max(max_frame, d.score)
        dets = windows(res, fps)
        n_windows += len(dets)
        fp_windows += sum(d.found for d in dets)
        max_window = max([max_window] + [d.score for d in dets])
        print(f"real clip {clip.name}: {len(frames)} frames, done", flush=True)
    report["real_clips"] = {"frames": n_frames, "false_positive_frames": fp_frames, "max_frame_score": max_frame,
                            "windows": n_windows, "false_positive_windows": fp_windows,
                            "max_window_score": max_window}
    print(f"real clips: {fp_frames}/{n_frames} frames and {fp_windows}/{n_windows} windows flagged; "
          f"max score {max_frame:.1f} (frame), {max_window:.1f} (window)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="speech per portrait (default 10)")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--skip-fp", action="store_true", help="skip the false-positive part")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    report: dict = {"embed": embed_speed()}
    for s, v in report["embed"].items():
        print(f"embed {s}x{s}: {v['ms_per_frame']:.3f} ms/frame (first frame of a size: {v['first_frame_ms']:.1f} ms)")
    if not args.speed_only:
        with tempfile.TemporaryDirectory() as d:
            robustness(args.seconds, Path(d), report)
        print(f"PSNR marked vs unmarked: min {report['psnr_db']['min']:.1f} dB")
        for k, a in report["attacks"].items():
            print(f"{k:16s} detected {a['detected']}/{a['windows']} ({100 * a['detected'] / max(a['windows'], 1):.1f}%), "
                  f"payload {a['payload']}/{a['windows']}, wrong ids {a['wrong_id']}, min score {a['min_score']:.1f}")
        print(f"unmarked renders: {report['unmarked_renders']['false_positives']}/"
              f"{report['unmarked_renders']['windows']} windows flagged")
        if not args.skip_fp:
            false_positives(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
