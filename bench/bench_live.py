"""Live mode benchmark: start latency and sustained frame rate at 512 px over the WebSocket.

    python bench/bench_live.py [--runs 20] [--seconds 3] [--sessions 1] [--browser]

Starts the server in-process on 127.0.0.1 (a free port), then for each run opens a WebSocket
session, sends eSpeak NG speech (16 kHz float32, 20 ms chunks) at real-time pace and measures:

- start latency: first audio chunk sent -> first frame received and JPEG-decoded;
- sustained fps: frames received per second over the speech (the stop burst excluded);
- lag: frame received - when the audio it shows was sent (constant = no growing backlog);
- dropped: frames the server skipped or could not send in time.

--browser also runs the page in headless Chromium (/usr/bin/chromium, Playwright) with the speech as
a fake microphone and reports the page's own numbers: first audio chunk sent -> first frame painted
on the canvas, and painted fps.
"""
import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facecast.live.app import create_app  # noqa: E402
from facecast.live.client import run_client  # noqa: E402
from facecast.live.serve import ServerThread  # noqa: E402


def speech(seconds: float) -> np.ndarray:
    from scipy.signal import resample_poly

    from facecast.audio.speech import synthesize
    audio, sr, _ = synthesize("Hello, my name is Peter Piper. Maybe Bob can map a big apple. "
                              "Where were you when the lights went out?", "en")
    x = resample_poly(audio, 16000, sr).astype(np.float32) if sr != 16000 else audio.astype(np.float32)
    reps = int(np.ceil(seconds * 16000 / len(x)))
    return np.tile(x, reps)[:int(seconds * 16000)]


def pct(v, q):
    return float(np.percentile(np.asarray(v, float), q))


def ws_runs(srv, x, runs: int, sessions: int, image: str, rate: float = 25.0) -> dict:
    lat, fps, lag50, lag95, dropped, frames = [], [], [], [], 0, 0
    dur = len(x) / 16000
    for r in range(runs):
        results = [None] * sessions

        def go(k):
            results[k] = run_client(srv.ws_url, x, image_id=image if k % 2 == 0 else "astronaut", fps=rate)
        threads = [threading.Thread(target=go, args=(k,)) for k in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for run in results:
            body = [t for t, h, _ in run.frames if h["t"] < dur - 0.2]
            f = (len(body) - 1) / (body[-1] - body[0])
            lags = run.lags_ms()
            ended = run.of_type("ended")[-1]
            d = ended["frames"] - len(run.frames)
            lat.append(run.start_latency_ms)
            fps.append(f)
            lag50.append(pct(lags, 50))
            lag95.append(pct(lags, 95))
            dropped += d
            frames += ended["frames"]
            print(f"  run {r + 1:2d}: start {run.start_latency_ms:6.1f} ms  {f:5.2f} fps  lag p50 {pct(lags, 50):5.1f} ms "
                  f"p95 {pct(lags, 95):5.1f} ms  dropped {d}/{ended['frames']}", flush=True)
        time.sleep(0.2)
    return {"lat": lat, "fps": fps, "lag50": lag50, "lag95": lag95, "dropped": dropped, "frames": frames}


def browser_runs(srv, x, runs: int, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    from facecast.audio.io import save_wav
    wav = Path(tempfile.mkdtemp(prefix="facecast-bench-")) / "mic.wav"
    save_wav(wav, x, 16000)
    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    lat, fps = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_page()
        page.goto(srv.url + "/")
        page.wait_for_function("window.facecastLive && window.facecastLive.portraits.length > 0", timeout=30000)
        for r in range(runs):
            page.click("#start")
            page.wait_for_function("window.facecastLive.firstPaintAt !== null", timeout=30000)
            time.sleep(seconds)
            res = page.evaluate("""() => { const l = window.facecastLive.log;
                const p = l.filter(e => e.painted - l[0].painted > 500).map(e => e.painted);
                return {lat: window.facecastLive.startLatencyMs,
                        fps: p.length > 1 ? (p.length - 1) / ((p[p.length - 1] - p[0]) / 1000) : 0}; }""")
            page.click("#stop")
            lat.append(res["lat"])
            fps.append(res["fps"])
            print(f"  page run {r + 1:2d}: first audio sent -> first frame painted {res['lat']:6.1f} ms  {res['fps']:5.2f} fps", flush=True)
            time.sleep(0.3)
        browser.close()
    return {"lat": lat, "fps": fps}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0, help="speech per run")
    ap.add_argument("--sessions", type=int, default=1, help="sessions at once")
    ap.add_argument("--image", default="hopper")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fps", type=float, default=25.0, help="frame rate of the WebSocket runs (10-30)")
    ap.add_argument("--browser", action="store_true", help="also measure the page in headless Chromium")
    args = ap.parse_args()
    import os
    x = speech(args.seconds)
    app = create_app(size=args.size)
    with ServerThread(app) as srv:
        app.state.live.wait_warm()
        print(f"facecast live benchmark: {args.size} px, {args.fps:g} fps, {args.runs} runs x {args.seconds:g} s of speech, "
              f"{args.sessions} session(s) at once, {os.cpu_count()} CPU cores")
        ws = ws_runs(srv, x, args.runs, args.sessions, args.image, args.fps)
        br = browser_runs(srv, x, args.runs, args.seconds) if args.browser else None
    print()
    print("| measure | p50 | p95 | max / min |")
    print("|---|---:|---:|---:|")
    print(f"| start latency over the WebSocket (first audio sent -> first frame decoded), ms | "
          f"{pct(ws['lat'], 50):.0f} | {pct(ws['lat'], 95):.0f} | {max(ws['lat']):.0f} |")
    print(f"| sustained fps per session | {pct(ws['fps'], 50):.2f} | {pct(ws['fps'], 5):.2f} (p5) | {min(ws['fps']):.2f} |")
    print(f"| lag (frame received - its audio sent), ms | {statistics.median(ws['lag50']):.0f} | "
          f"{statistics.median(ws['lag95']):.0f} | {max(ws['lag95']):.0f} |")
    if br:
        print(f"| page: first audio sent -> first frame painted, ms | {pct(br['lat'], 50):.0f} | {pct(br['lat'], 95):.0f} | "
              f"{max(br['lat']):.0f} |")
        print(f"| page: painted fps | {pct(br['fps'], 50):.2f} | {pct(br['fps'], 5):.2f} (p5) | {min(br['fps']):.2f} |")
    print(f"\ndropped frames: {ws['dropped']} of {ws['frames']} ({100 * ws['dropped'] / max(ws['frames'], 1):.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
