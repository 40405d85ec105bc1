"""The live page in a real browser: Debian's Chromium, headless, driven by Playwright, talking through a
fake microphone (a speech file). Frames must arrive at >= 20 fps, and the mouth must move while the
speech plays and rest in the silence. Set FACECAST_DOCS=1 to refresh docs/live_page.png."""
import os
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_SHOT = Path(__file__).resolve().parents[1] / "docs" / "live_page.png"


def _need_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:  # .ci/run installs both; a missing browser is a failure, never a silent skip
        pytest.fail("browser test needs " + " and ".join(missing))


@pytest.fixture(scope="module")
def page_server(live_server):
    return live_server


def test_live_page_in_chromium(page_server, tts_speech, tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    from facecast.audio.io import save_wav
    x, _ = tts_speech
    # the fake microphone plays this file in a loop: speech, 1.5 s of silence, speech again ...
    wav = tmp_path / "mic.wav"
    save_wav(wav, np.concatenate([x, np.zeros(int(1.5 * 16000), np.float32)]), 16000)
    speech_s = len(x) / 16000
    shot = DOCS_SHOT if os.environ.get("FACECAST_DOCS") else tmp_path / "live_page.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=ARGS + [f"--use-file-for-fake-audio-capture={wav}"])
        try:
            page = browser.new_page(viewport={"width": 1040, "height": 720})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_server.url + "/?probe=1")
            page.wait_for_function("window.facecastLive && window.facecastLive.portraits.length >= 2", timeout=20000)
            # a still head (motion scale 0): the mouth region then changes only with the mouth
            page.eval_on_selector("#motion", "e => { e.value = '0'; e.dispatchEvent(new Event('input')); }")
            page.click("#start")
            page.wait_for_function("window.facecastLive.firstPaintAt !== null", timeout=20000)
            shot_taken = False
            t_end = time.time() + speech_s + 1.5 + 1.0
            while time.time() < t_end:
                if not shot_taken and time.time() > t_end - speech_s - 1.0:
                    # the screenshot: while she talks, the mouth open
                    rms = page.evaluate("(() => { const l = window.facecastLive.log; return l.length ? l[l.length - 1].rms : 0 })()")
                    if rms > 0.12:
                        page.screenshot(path=str(shot))
                        shot_taken = True
                time.sleep(0.05)
            if not shot_taken:
                page.screenshot(path=str(shot))
            state = page.evaluate("""() => { const S = window.facecastLive;
                return {log: S.log, latency: S.startLatencyMs, server: S.serverStats, errors: S.errors,
                        shown: document.getElementById('st-latency').textContent,
                        fpsShown: document.getElementById('st-fps').textContent}; }""")
            page.click("#stop")

            # bad upload: the page shows the server's message, and the server keeps running
            page.set_input_files("#upload", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a face"}])
            page.wait_for_selector("#error:not([hidden])", timeout=10000)
            upload_error = page.text_content("#error")

            # an audio file instead of the microphone: played (delayed) and animated to its end
            clip = tmp_path / "clip.wav"
            save_wav(clip, x[:int(1.6 * 16000)], 16000)
            page.check("input[name=source][value=file]")
            page.set_input_files("#audiofile", str(clip))
            page.click("#start")
            page.wait_for_function("window.facecastLive.ended === true", timeout=20000)
            file_run = page.evaluate("() => ({n: window.facecastLive.log.length, monitor: document.getElementById('monitor').checked})")
        finally:
            browser.close()
    assert not errors and not state["errors"], (errors, state["errors"])
    assert "not an image" in upload_error
    assert file_run["monitor"] and file_run["n"] >= 30, file_run

    log = state["log"]
    painted = np.array([e["painted"] for e in log]) / 1000.0
    t = np.array([e["t"] for e in log])
    rms = np.array([e["rms"] for e in log])
    mouth = np.array([e["mouth"] for e in log], np.float64)
    fps = (len(painted) - 1) / (painted[-1] - painted[0])
    print(f"\npage: {len(log)} frames painted, {fps:.1f} fps, start latency {state['latency']:.0f} ms "
          f"(shown {state['shown']}), lag {np.median([e['lag_ms'] for e in log]):.0f} ms, server stats {state['server']}")
    assert fps >= 20
    assert state["latency"] is not None and state["latency"] < 400 and state["shown"].endswith("ms")
    # speech and silence from the audio the page sent; the rest pose from the deep-silence frames
    loud = rms > 0.03
    quiet_for = np.zeros(len(t))
    last_loud = -10.0
    for i in range(len(t)):
        if loud[i]:
            last_loud = t[i]
        quiet_for[i] = t[i] - last_loud
    nxt_loud = np.array([min([tt for tt, ll in zip(t[i:], loud[i:]) if ll] + [np.inf]) - t[i] for i in range(len(t))])
    silent = (quiet_for > 0.5) & (nxt_loud > 0.1)
    speaking = loud
    assert silent.sum() >= 8 and speaking.sum() >= 30, (silent.sum(), speaking.sum())
    rest = np.median(mouth[silent], axis=0)
    dist = np.abs(mouth - rest).mean(1)                         # grey levels from the rest mouth
    step = np.r_[0, np.abs(np.diff(mouth, axis=0)).mean(1)]   # frame-to-frame change
    print(f"mouth: speech {np.median(dist[speaking]):.2f} (p90 {np.percentile(dist[speaking], 90):.2f}) grey levels from rest, "
          f"silence {np.median(dist[silent]):.2f}; frame-to-frame speech {np.mean(step[speaking]):.2f}, silence {np.mean(step[silent]):.2f}")
    assert np.percentile(dist[speaking], 90) > 6
    assert np.median(dist[speaking]) > 4 * max(np.median(dist[silent]), 0.25)
    assert np.mean(step[silent]) < 0.5 and np.mean(step[speaking]) > 4 * max(np.mean(step[silent]), 0.1)
