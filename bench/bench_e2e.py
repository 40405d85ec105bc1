"""End-to-end benchmark: portrait + speech -> H.264 mp4, at 256, 512 and 1024.

Prints, per size: end-to-end fps including encoding and muxing, the real-time factor, per-stage
milliseconds per frame (rig, audio analysis, motion, render, encode), the latency to the first
encoded frame, and the process's peak RSS. Also prints the motion generator's own speed.

    python bench/bench_e2e.py [--seconds 20] [--sizes 256,512,1024]
    python bench/bench_e2e.py --hour      # one hour of speech at 512: memory, speed, A/V sync
"""
import argparse
import resource
import tempfile
import time
from pathlib import Path

import av
import matplotlib.cbook
import numpy as np
from scipy.signal import resample_poly

from facecast.audio.acoustics import analyze
from facecast.audio.io import save_wav
from facecast.audio.speech import synthesize
from facecast.face.rig import build_rig
from facecast.motion.generator import MotionGenerator, generate_motion
from facecast.pipeline import Animator
from facecast.video import VideoWriter

TEXT = ("Hello, my name is Grace. Computers are easy to use, but people must be patient. "
        "Maybe tomorrow we can map a better path, because the bugs are everywhere.")


def speech(seconds: float) -> np.ndarray:
    a, sr, _ = synthesize(TEXT, "en")
    x = resample_poly(a, 16000, sr).astype(np.float32)
    unit = np.concatenate([x, np.zeros(8000, np.float32)])
    return np.resize(unit, int(seconds * 16000))


def rss_mb() -> float:
    """Peak resident memory of this process, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_size(photo, x, wav: Path, size: int, out_dir: Path) -> dict:
    fps = 25.0
    t0 = time.perf_counter()
    rig = build_rig(photo, size)
    t_rig = time.perf_counter() - t0
    anim = Animator(photo, rig=rig)
    # stages, timed one by one on the same clip
    a = time.perf_counter()
    analyze(x, 16000)
    t_analysis = time.perf_counter() - a
    a = time.perf_counter()
    motion = generate_motion(x, 16000, fps)
    t_gen = time.perf_counter() - a - t_analysis          # motion on top of the analysis
    n = len(motion)
    frames = []
    a = time.perf_counter()
    for i in range(0, n, max(1, n // 100)):
        frames.append(anim.frame(motion[i]))
    t_render = (time.perf_counter() - a) / len(frames)
    a = time.perf_counter()
    with VideoWriter(out_dir / f"enc{size}.mp4", fps, size) as vw:
        for i in range(n):
            vw.write(frames[i % len(frames)])
    t_enc = (time.perf_counter() - a) / n
    # the real thing, end to end from the wav file (first-frame latency via the progress hook)
    first = []
    start = time.perf_counter()
    res = anim.render(wav, out_dir / f"e2e{size}.mp4", fps=fps,
                      progress=lambda d, t: first.append(time.perf_counter() - start) if d == 1 else None)
    wall = time.perf_counter() - start
    return {"size": size, "fps": res.frames / wall, "rtf": (res.frames / fps) / wall, "rig": t_rig * 1e3,
            "analysis": t_analysis / n * 1e3, "motion": t_gen / n * 1e3, "render": t_render * 1e3,
            "encode": t_enc * 1e3, "first": first[0] * 1e3, "rss": rss_mb()}


def hour(photo, out_dir: Path) -> None:
    import soundfile
    unit = speech(60)
    wav = out_dir / "hour.wav"
    with soundfile.SoundFile(str(wav), "w", 16000, 1, "PCM_16") as f:  # written a minute at a time
        for _ in range(60):
            f.write(unit)
    del unit
    anim = Animator(photo, size=512)
    start = time.perf_counter()
    res = anim.render(wav, out_dir / "hour.mp4", fps=25)
    wall = time.perf_counter() - start
    with av.open(str(out_dir / "hour.mp4")) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        v_end = float(v.duration * v.time_base)
        a_end = float(a.duration * a.time_base)
    print(f"one hour of speech at 512x512: {res.frames} frames in {wall / 60:.1f} min ({res.frames / wall:.1f} fps), "
          f"peak RSS {rss_mb():.0f} MB, video ends at {v_end:.3f} s, audio at {a_end:.3f} s "
          f"(difference {abs(v_end - a_end) * 1000:.1f} ms; one frame = 40 ms)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--hour", action="store_true")
    args = ap.parse_args()
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with tempfile.TemporaryDirectory() as d:
        out_dir = Path(d)
        if args.hour:
            hour(photo, out_dir)
            return
        x = speech(args.seconds)
        wav = out_dir / "speech.wav"
        save_wav(wav, x, 16000)
        # motion generator speed alone (audio analysis included)
        a = time.perf_counter()
        g = MotionGenerator(25.0)
        n = len(g.push(x)) + len(g.flush())
        gen_fps = n / (time.perf_counter() - a)
        print(f"facecast end-to-end benchmark: {args.seconds:.0f} s of TTS speech, Grace Hopper portrait, 25 fps, "
              f"H.264 (veryfast, crf 20) + AAC")
        print(f"motion generator (analysis + motion): {gen_fps:.0f} frames/s")
        print(f"{'size':>5} {'e2e fps':>8} {'x realtime':>10} {'rig ms':>7} {'analysis':>9} {'motion':>7} "
              f"{'render':>7} {'encode':>7} {'1st frame ms':>12} {'peak RSS MB':>11}")
        print(f"{'':>5} {'':>8} {'':>10} {'':>7} {'ms/frame':>9} {'ms/fr':>7} {'ms/fr':>7} {'ms/fr':>7}")
        for size in (int(s) for s in args.sizes.split(",")):
            r = bench_size(photo, x, wav, size, out_dir)
            print(f"{r['size']:>5} {r['fps']:>8.1f} {r['rtf']:>10.2f} {r['rig']:>7.0f} {r['analysis']:>9.2f} "
                  f"{r['motion']:>7.2f} {r['render']:>7.2f} {r['encode']:>7.2f} {r['first']:>12.0f} {r['rss']:>11.0f}")


if __name__ == "__main__":
    main()
