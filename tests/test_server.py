"""Live mode server (`facecast serve`): WebSocket sessions measured over the socket, two sessions at
once, a dropped client, malformed messages, bad uploads, the HTTP render API and the command."""
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import cv2
import numpy as np
import pytest

from websockets.sync.client import connect

from facecast.server import parse_frame, run_client


@pytest.fixture(scope="module")
def server(live_server):
    return live_server


def _wait(cond, timeout=3.0):
    t = time.time() + timeout
    while time.time() < t:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _post(url, fields=None, files=None):
    """multipart/form-data POST -> (status, headers, body bytes)."""
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, value in (fields or {}).items():
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, ctype) in (files or {}).items():
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                   f'Content-Type: {ctype}\r\n\r\n'.encode())
        body.write(data)
        body.write(b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(url, data=body.getvalue(), method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers.get("content-type"), r.read()


def _wav_bytes(x, rate=16000):
    import soundfile as sf
    b = io.BytesIO()
    sf.write(b, x, rate, format="WAV", subtype="PCM_16")
    return b.getvalue()


def test_live_latency_fps_and_no_backlog(server, tts_speech):
    """Real-time pace: start latency (first audio chunk sent -> first frame decoded), sustained fps
    at 512 px, no dropped frames and a lag that does not grow."""
    x, _ = tts_speech
    run = run_client(server.ws_url, x)
    ended = run.of_type("ended")[0]
    frames = run.frames
    n_expected = int(round(len(x) / 16000 * 25))
    assert ended["frames"] == n_expected
    assert len(frames) >= n_expected - 1                       # nothing dropped on an idle machine
    idx = [h["index"] for _, h, _ in frames]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert all(abs(h["t"] - h["index"] / 25) < 1e-9 for _, h, _ in frames)
    img = cv2.imdecode(np.frombuffer(frames[len(frames) // 2][2], np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (512, 512, 3)
    # sustained frame rate over the speech (the last frames come in a burst at stop)
    body = [r for r, h, _ in frames if h["t"] < len(x) / 16000 - 0.2]
    fps = (len(body) - 1) / (body[-1] - body[0])
    lags = run.lags_ms()
    first, last = np.median(lags[5:30]), np.median(lags[-30:-5])
    print(f"\nlive: start latency {run.start_latency_ms:.0f} ms, {fps:.2f} fps, lag {np.median(lags):.0f} ms "
          f"(first second {first:.0f}, last {last:.0f}, max {lags.max():.0f}), stats {run.of_type('stats')[-1]}")
    assert fps >= 24.5
    assert last - first < 40 and lags.max() < 300                # no growing backlog
    latencies = [run.start_latency_ms]
    for _ in range(2):                                           # start latency: median of three starts
        latencies.append(run_client(server.ws_url, x[:16000]).start_latency_ms)
    print(f"start latencies ms: {[round(v) for v in latencies]}")
    assert np.median(latencies) <= 150
    assert _wait(lambda: server.live.status()["sessions"] == 0)


def test_two_sessions_at_once_and_dropped_client(server, tts_speech):
    x, _ = tts_speech
    x = x[:int(2.4 * 16000)]
    runs = {}

    def go(name, image, controls):
        runs[name] = run_client(server.ws_url, x, image_id=image, controls=controls)
    threads = [threading.Thread(target=go, args=("a", "hopper", {"emotion": "happy:0.8"})),
               threading.Thread(target=go, args=("b", "astronaut", {"motion_scale": 0}))]
    seen = []
    for t in threads:
        t.start()
    _wait(lambda: seen.append(server.live.status()["sessions"]) or seen[-1] == 2, timeout=10)
    for t in threads:
        t.join(timeout=60)
    assert max(seen) == 2
    a, b = runs["a"], runs["b"]
    for r in (a, b):
        body = [t for t, h, _ in r.frames if h["t"] < 2.2]
        fps = (len(body) - 1) / (body[-1] - body[0])
        print(f"\nsession: {len(r.frames)} frames, {fps:.1f} fps, start latency {r.start_latency_ms:.0f} ms")
        assert fps >= 20 and r.of_type("ended")
    # isolated: each its own portrait, clock and frame numbering
    fa = cv2.imdecode(np.frombuffer(a.frames[10][2], np.uint8), cv2.IMREAD_COLOR)
    fb = cv2.imdecode(np.frombuffer(b.frames[10][2], np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(fa.astype(int) - fb.astype(int)).mean() > 20
    assert a.frames[0][1]["index"] == 0 and b.frames[0][1]["index"] == 0

    # a client that vanishes mid-stream (no close handshake) is cleaned up at once
    try:
        with connect(server.ws_url, max_size=None) as ws:
            json.loads(ws.recv(timeout=10))
            ws.send(json.dumps({"type": "start", "image_id": "hopper"}))
            while json.loads(ws.recv(timeout=10))["type"] != "ready":
                pass
            for i in range(0, 16000, 320):
                ws.send(x[i:i + 320].tobytes())
            while not isinstance(ws.recv(timeout=10), bytes):      # frames are coming
                pass
            assert server.live.status()["sessions"] == 1 and server.live.status()["workers"] == 1
            t0 = time.time()
            ws.socket.shutdown(socket.SHUT_RDWR)                     # gone, without a close handshake
            ws.socket.close()
            assert _wait(lambda: server.live.status()["sessions"] == 0 and server.live.status()["workers"] == 0, 2.0)
            print(f"dropped client cleaned up in {1e3 * (time.time() - t0):.0f} ms")
    except (websockets.exceptions.ConnectionClosed, OSError):
        pass
    # and the server goes on
    assert len(run_client(server.ws_url, x[:8000]).frames) >= 10


def test_malformed_messages_get_errors(server, tts_speech):
    x, _ = tts_speech
    with connect(server.ws_url, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"

        def expect_error(msg, contains):
            ws.send(msg)
            while True:
                d = ws.recv(timeout=10)
                if isinstance(d, str) and json.loads(d)["type"] == "error":
                    assert contains in json.loads(d)["message"], json.loads(d)["message"]
                    return
        expect_error("not json", "JSON")
        expect_error("[1, 2]", "type")
        expect_error(json.dumps({"type": "dance"}), "unknown message type")
        expect_error(b"\x00\x00\x80\x3f", "start")                       # audio before start
        expect_error(json.dumps({"type": "controls", "controls": {}}), "start")
        expect_error(json.dumps({"type": "start", "image_id": "nobody"}), "no portrait")
        expect_error(json.dumps({"type": "start", "image_id": 7}), "image_id")
        expect_error(json.dumps({"type": "start", "fps": 500}), "fps")
        expect_error(json.dumps({"type": "start", "audio_format": "mp3"}), "audio_format")
        expect_error(json.dumps({"type": "start", "controls": "happy"}), "object")
        expect_error(json.dumps({"type": "start", "controls": {"mood": 1}}), "unknown control")
        expect_error(json.dumps({"type": "start", "controls": {"motion_scale": 99}}), "motion-scale")
        expect_error(json.dumps({"type": "start", "controls": {"emotion": "bored"}}), "unknown emotion")
        expect_error(json.dumps({"type": "start", "controls": {"gaze": [1, "x"]}}), "finite number")
        ws.send(json.dumps({"type": "start", "image_id": "hopper", "controls": {"motion_scale": 0, "blink_rate": 0}}))
        while not (isinstance(d := ws.recv(timeout=10), str) and json.loads(d)["type"] == "ready"):
            pass
        expect_error(b"\x00\x01\x02", "4-byte samples")
        expect_error(json.dumps({"type": "controls", "controls": {"gaze": [90, 0]}}), "gaze")
        # the session goes on: silence, then a smile while talking
        silence = np.zeros(320, np.float32).tobytes()
        frames = []
        for k in range(100):                                   # 2 s of audio at twice real time
            ws.send(silence)
            time.sleep(0.01)
            if k == 40:
                ws.send(json.dumps({"type": "controls", "controls": {"emotion": "happy:1"}}))
        ws.send(json.dumps({"type": "stop"}))
        while True:
            d = ws.recv(timeout=10)
            if isinstance(d, bytes):
                frames.append(parse_frame(d))
            elif json.loads(d)["type"] == "ended":
                break
        assert len(frames) >= 40
        imgs = {h["index"]: cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_GRAYSCALE).astype(int) for h, j in frames}
        early = [imgs[i] for i in sorted(imgs) if 3 <= i < 8]
        late = [imgs[i] for i in sorted(imgs) if i >= 35]
        assert np.abs(early[0] - early[-1]).mean() < 0.5              # still face in silence
        assert np.abs(late[-1] - early[-1]).mean() > 0.5              # the smile arrived mid-stream
    assert _wait(lambda: server.live.status()["sessions"] == 0)


def test_bad_uploads_and_portrait_upload(server, hopper_path, tmp_path):
    url = server.url + "/api/portrait"
    st, _, body = _post(url, files={"image": ("notes.txt", b"hello, not an image", "text/plain")})
    assert st == 400 and "not an image" in json.loads(body)["error"]
    st, _, body = _post(url, files={"image": ("empty.jpg", b"", "image/jpeg")})
    assert st == 400 and "empty" in json.loads(body)["error"]
    sky = np.zeros((300, 400, 3), np.uint8)
    sky[:] = (90, 150, 220)
    ok, png = cv2.imencode(".png", sky)
    st, _, body = _post(url, files={"image": ("sky.png", png.tobytes(), "image/png")})
    assert st == 400 and "no face" in json.loads(body)["error"]
    st, _, body = _post(url, files={"image": ("huge.jpg", b"\xff" * (16 * 1024 * 1024), "image/jpeg")})
    assert st == 413 and "too large" in json.loads(body)["error"]
    st, _, body = _post(url)                                    # no file at all
    assert st in (400, 422)
    with open(hopper_path, "rb") as f:
        st, _, body = _post(url, files={"image": ("hopper.jpg", f.read(), "image/jpeg")})
    assert st == 200
    info = json.loads(body)
    assert info["ready"] and info["image_id"] in [p["image_id"] for p in json.loads(_get(server.url + "/api/portraits")[2])]
    st, ctype, jpg = _get(server.url + info["thumbnail"])
    assert ctype == "image/jpeg" and cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR).shape == (512, 512, 3)
    run = run_client(server.ws_url, np.zeros(8000, np.float32), image_id=info["image_id"], realtime=False)
    assert len(run.frames) >= 5


def test_render_api_and_openapi(server, hopper_path, tts_speech, tmp_path):
    import av
    x, _ = tts_speech
    wav = _wav_bytes(x[:int(1.2 * 16000)])
    with open(hopper_path, "rb") as f:
        img = f.read()
    st, headers, body = _post(server.url + "/api/render", fields={"controls": json.dumps({"emotion": "happy:0.5"})},
                              files={"image": ("hopper.jpg", img, "image/jpeg"), "audio": ("s.wav", wav, "audio/wav")})
    assert st == 200 and headers["content-type"] == "video/mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(body)
    with av.open(str(out)) as c:
        assert c.streams.video[0].width == 512 and len(c.streams.audio) == 1
        n = sum(1 for _ in c.decode(video=0))
    assert n == 30
    st, _, body = _post(server.url + "/api/render", files={"image": ("hopper.jpg", img, "image/jpeg"),
                                                           "audio": ("s.wav", b"RIFF junk", "audio/wav")})
    assert st == 400 and "error" in json.loads(body)
    st, _, body = _post(server.url + "/api/render", fields={"controls": "{bad"},
                        files={"image": ("hopper.jpg", img, "image/jpeg"), "audio": ("s.wav", wav, "audio/wav")})
    assert st == 400 and "JSON" in json.loads(body)["error"]
    schema = json.loads(_get(server.url + "/openapi.json")[2])
    assert {"/api/render", "/api/portrait", "/api/portraits"} <= set(schema["paths"])
    assert "video/mp4" in json.dumps(schema["paths"]["/api/render"])
    assert _get(server.url + "/docs")[0] == 200
    st, ctype, page = _get(server.url + "/")
    assert st == 200 and b"facecast" in page and ctype.startswith("text/html")
    assert _get(server.url + "/static/app.js")[0] == 200


def test_serve_command(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    r = subprocess.run([sys.executable, "-m", "facecast", "serve", str(bad), "--port", "0"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and r.stderr.startswith("facecast: error:")
    p = subprocess.Popen([sys.executable, "-m", "facecast", "serve", "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        assert line.startswith("facecast: serving on http://127.0.0.1:"), line
        url = line.split()[3]
        assert _get(url)[0] == 200
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_int16_audio_and_restart(server, tts_speech):
    """s16le audio works the same; a second start on the same socket begins a new clip."""
    x, _ = tts_speech
    pcm = (np.clip(x[:8000], -1, 1) * 32767).astype("<i2")
    with connect(server.ws_url, max_size=None) as ws:
        json.loads(ws.recv(timeout=10))
        for clip in range(2):
            ws.send(json.dumps({"type": "start", "image_id": "astronaut", "audio_format": "s16le"}))
            while not (isinstance(d := ws.recv(timeout=10), str) and json.loads(d)["type"] == "ready"):
                pass
            for i in range(0, len(pcm), 640):
                ws.send(pcm[i:i + 640].tobytes())
                time.sleep(0.02)                                 # twice real time
            ws.send(json.dumps({"type": "stop"}))
            frames = []
            while not (isinstance(d := ws.recv(timeout=10), str) and json.loads(d)["type"] == "ended"):
                if isinstance(d, bytes):
                    frames.append(parse_frame(d)[0]["index"])
            assert frames[0] == 0 and len(frames) >= 10 and json.loads(d)["frames"] == 12
