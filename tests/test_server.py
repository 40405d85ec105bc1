"""Live mode server (`facecast serve`): WebSocket sessions measured over the socket, two sessions at
once, a dropped client, malformed messages, live motion equal to the offline render's (same
look-ahead), one controls validation for WebSocket and HTTP, bad uploads, the HTTP render API and
its warnings, and the command; and
its guards: declared image size, render queue and cancellation, audio length, Host / Origin /
token checks, error texts and shape, body and WebSocket message limits. Every socket goes to
127.0.0.1."""
import http.client
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib

import cv2
import numpy as np
import pytest
import websockets
from websockets.sync.client import connect

from facecast.errors import FacecastError
from facecast.live.access import Access, Limits
from facecast.live.app import create_app
from facecast.live.client import run_client
from facecast.live.protocol import parse_frame
from facecast.live.serve import ServerThread


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


def _multipart(fields=None, files=None) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data form."""
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
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


def _post(url, fields=None, files=None, headers=None, timeout=60):
    """multipart/form-data POST -> (status, headers, body bytes)."""
    body, ctype = _multipart(fields, files)
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


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
        expect_error(json.dumps({"type": "start", "controls": {"gaze": [1, "x"]}}), "pair of numbers")
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
    assert st == 400 and set(json.loads(body)) == {"error"}  # validation errors are 400, one shape
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
    assert st == 200 and headers["content-type"] == "video/mp4" and "x-facecast-warning" not in headers
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


def test_render_warning_reaches_the_client(server, hopper_path, tts_speech):
    """A render that goes through with a FacecastWarning (a truncated audio upload: the readable
    part is used) says so in its X-Facecast-Warning header, once, naming the upload, not a path."""
    x, _ = tts_speech
    wav = _wav_bytes(x[:2 * 16000])
    cut = wav[:44 + 16000 * 2]                                     # the header declares 2 s; 1 s is there
    with open(hopper_path, "rb") as f:
        img = f.read()
    st, headers, body = _post(server.url + "/api/render", files={"image": ("hopper.jpg", img, "image/jpeg"),
                                                                 "audio": ("cut.wav", cut, "audio/wav")})
    warning = headers.get("x-facecast-warning", "")
    print(f"\n{st}: X-Facecast-Warning: {warning}")
    assert st == 200 and headers["content-type"] == "video/mp4" and headers["x-facecast-frames"] == "25"
    assert warning.startswith("the audio upload is truncated") and "read 1.0 s of 2.0 s" in warning
    assert "|" not in warning                                      # once, though the audio is read twice
    assert "/tmp" not in warning and "facecast-" not in warning and tempfile.gettempdir() not in warning


def test_controls_checked_alike_on_websocket_and_http(server, hopper_path):
    """One validation (`Controls.from_dict`) for the WebSocket's controls and the render API's
    controls field: the same bad value gets the same one-line message on both; good controls come
    back in `ready` as `Controls.to_dict`."""
    from facecast.motion.controls import Controls
    with open(hopper_path, "rb") as f:
        img = f.read()
    bad = [{"mood": 1}, {"motion_scale": 99}, {"emotion": "bored"}, {"gaze": [90, 0]}, {"gaze": [1, "x"]},
           {"seed": 1.5}, {"blink_rate": True}, {"emotion": {"happy": "x"}}, {"emotion": {"happy": None}}]
    with connect(server.ws_url, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        for d in bad:
            with pytest.raises(FacecastError) as e:
                Controls.from_dict(d)
            expected = str(e.value)
            ws.send(json.dumps({"type": "start", "image_id": "hopper", "controls": d}))
            msg = json.loads(ws.recv(timeout=10))
            assert msg == {"type": "error", "message": expected}, (d, msg)
            st, _, body = _post(server.url + "/api/render", fields={"controls": json.dumps(d)},
                                files={"image": ("hopper.jpg", img, "image/jpeg"), "audio": ("s.wav", b"", "audio/wav")})
            assert st == 400 and _error(body) == expected, (d, st, body)
            st, _, body = _post(server.url + "/api/render",
                                fields={"controls": json.dumps({"keyframes": [{"t": 1, **d}]})},
                                files={"image": ("hopper.jpg", img, "image/jpeg"), "audio": ("s.wav", b"", "audio/wav")})
            assert st == 400 and _error(body) == expected, (d, st, body)
        good = {"emotion": {"happy": 0.5}, "gaze": [10, -5], "seed": 3}
        ws.send(json.dumps({"type": "start", "image_id": "hopper", "controls": good}))
        msg = json.loads(ws.recv(timeout=10))
        assert msg["type"] == "ready" and msg["controls"] == Controls.from_dict(good).to_dict()
        ws.send(json.dumps({"type": "controls", "controls": {"motion_scale": 0.5}}))
        while (msg := json.loads(ws.recv(timeout=10)))["type"] == "stats":
            pass
        assert msg == {"type": "controls", "controls": Controls.from_dict({**good, "motion_scale": 0.5}).to_dict()}
    assert _wait(lambda: server.live.status()["sessions"] == 0)


def test_serve_command(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    r = subprocess.run([sys.executable, "-m", "facecast", "serve", str(bad), "--port", "0"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and r.stderr.startswith("facecast: error:")
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    r = subprocess.run([sys.executable, "-m", "facecast", "serve", str(loop), "--port", "0"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "symlink loop" in r.stderr and "not found" not in r.stderr, r.stderr
    for flag, value in (("--port", "70000"), ("--size", "100"), ("--max-sessions", "0")):
        r = subprocess.run([sys.executable, "-m", "facecast", "serve", flag, value],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 2 and r.stderr.startswith(f"facecast: error: {flag} must be between"), r.stderr
    r = subprocess.run([sys.executable, "-m", "facecast", "serve", "--port", "0", "--token", "a b"],
                       capture_output=True, text=True, timeout=60, env=env, check=False)
    assert r.returncode == 2 and "token" in r.stderr
    p = subprocess.Popen([sys.executable, "-m", "facecast", "serve", "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**env, "FACECAST_TOKEN": "tok-123"})
    try:
        line = p.stdout.readline()
        assert line.startswith("facecast: serving on http://127.0.0.1:"), line
        url = line.split()[3]
        assert url.endswith("/?token=tok-123")                  # the token from the environment
        assert _get(url)[0] == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(url.split("?")[0] + "api/status")
        assert refused.value.code == 401
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


MOTION_KEYS = ("rotation", "translation", "scale", "blendshapes", "gaze")


def test_live_motion_equals_offline_render_with_live_lookahead(server, tts_speech, tmp_path):
    """The motion a live WebSocket session generates for speech sent in 20 ms chunks is, frame for
    frame, the motion `Animator.render` makes of the same audio with the live look-ahead, controls
    and seed; the offline default look-ahead gives other motion (so the docstring says "with the
    same look-ahead"). The live motion is taken from the session's `FrameStream` on the server."""
    from facecast.live.protocol import LIVE_LOOKAHEAD_S
    from facecast.motion.controls import Controls
    from facecast.motion.generator import concat_motion, generate_motion
    x, _ = tts_speech
    x = x[:int(2.6 * 16000)]
    controls = {"emotion": "happy:0.4", "gaze": [5, -3], "motion_scale": 1.3, "seed": 7}
    live_parts = []

    def record(ws):                       # after "ready", before any audio: wrap the session's stream
        (session,) = server.live.sessions.values()
        stream = session.worker.stream
        push, flush = stream.push_motion, stream.flush_motion
        stream.push_motion = lambda samples: live_parts.append(push(samples)) or live_parts[-1]
        stream.flush_motion = lambda: live_parts.append(flush()) or live_parts[-1]
    run = run_client(server.ws_url, x, image_id="hopper", controls=controls, chunk_s=0.02, realtime=False,
                     on_ready=record)
    live = concat_motion(live_parts, 25.0)
    ended = run.of_type("ended")[0]
    assert len(live_parts) >= len(x) // 320 and ended["frames"] == len(live)
    assert all(0 <= h["index"] < len(live) and h["t"] == h["index"] / 25 for _, h, _ in run.frames)

    anim = server.live.portraits.find("hopper").animator
    c = Controls.from_dict(controls)
    offline = anim.render(x, tmp_path / "offline.mp4", fps=25.0, controls=c, lookahead_s=LIVE_LOOKAHEAD_S,
                          save_motion=tmp_path / "motion.json").motion
    assert len(offline) == len(live) == int(round(len(x) / 16000 * 25))
    for k in MOTION_KEYS:
        assert np.allclose(getattr(live, k), getattr(offline, k), atol=1e-6), k
    default = generate_motion(x, 16000, 25.0, c)                 # the offline default look-ahead, 0.12 s
    assert len(default) == len(live)
    assert not all(np.allclose(getattr(live, k), getattr(default, k), atol=1e-6) for k in MOTION_KEYS)
    assert _wait(lambda: server.live.status()["sessions"] == 0)


# ---- guards (issue 13, server part) ------------------------------------------------------------
SMALL = Limits(upload_bytes=512 * 1024, audio_bytes=512 * 1024, audio_s=30.0, waiting_renders=1)


@pytest.fixture(scope="module")
def limited():
    """A second server with small limits (not warmed: it only renders uploads)."""
    app = create_app(warm=False, limits=SMALL)
    with ServerThread(app) as srv:
        srv.live = app.state.live
        yield srv


def _request(srv, method, path, headers=None, body=None, timeout=30):
    """One HTTP request to the server with exactly these headers (Host included when given)
    -> (status, headers, body)."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _ws_handshake(srv, headers, path="/ws") -> tuple[int, bytes]:
    """A raw WebSocket opening handshake with exactly these headers -> (HTTP status, body)."""
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        length = int(next((ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")), 0))
        while status != 101 and len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body


def _png_declaring(w, h) -> bytes:
    """A 60-byte PNG whose header declares w x h pixels (1-bit gray) with one tiny data chunk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _flac(seconds) -> bytes:
    import soundfile as sf
    b = io.BytesIO()
    sf.write(b, np.zeros(int(seconds * 16000), np.float32), 16000, format="FLAC")
    return b.getvalue()


def _error(body) -> str:
    d = json.loads(body)
    assert set(d) == {"error"}, d
    return d["error"]


def _memory_mb(field):
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(field)) / 1024


def test_declared_image_size_refused_before_decoding(server, tts_speech):
    """A 60-byte PNG declaring 19000x19000 (or 30000x30000) pixels gets 413 on every path that takes
    an image, at once, and the server (in this process) never allocates its pixels."""
    x, _ = tts_speech
    wav = _wav_bytes(x[:8000])
    try:                                             # reset the peak-RSS counter (Linux)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        rss0 = _memory_mb("VmRSS:")
    except OSError:
        rss0 = None
    for w, h in ((19000, 19000), (30000, 30000)):
        png = _png_declaring(w, h)
        assert len(png) < 100
        for path, files in (("/api/portrait", {"image": ("big.png", png, "image/png")}),
                            ("/api/render", {"image": ("big.png", png, "image/png"), "audio": ("s.wav", wav, "audio/wav")})):
            t0 = time.perf_counter()
            st, _, body = _post(server.url + path, files=files)
            dt = time.perf_counter() - t0
            msg = _error(body)
            print(f"\n{path} {w}x{h}: {st} in {dt * 1e3:.0f} ms: {msg}")
            assert st == 413 and "megapixels" in msg and dt < 2.0
    if rss0 is not None:
        grew = _memory_mb("VmHWM:") - rss0
        print(f"peak RSS grew by {grew:.0f} MB")
        assert grew < 150                            # 19000^2 pixels are 361 MB even at one byte each
    assert server.live.status()["renders"]["running"] == 0


def test_render_queue_full_and_cancel_on_disconnect(limited, hopper_path):
    """One render runs and one waits (waiting_renders=1): a third gets 503 + Retry-After at once. A
    client that disconnects cancels its render, waiting or running, and the worker goes idle."""
    renders = limited.live.renders
    with open(hopper_path, "rb") as f:
        img = f.read()
    body, ctype = _multipart(files={"image": ("hopper.jpg", img, "image/jpeg"),
                                    "audio": ("long.flac", _flac(25), "audio/flac")})
    tmp_before = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("facecast-render-")}

    def open_render():
        conn = http.client.HTTPConnection(limited.host, limited.port, timeout=30)
        conn.request("POST", "/api/render", body=body, headers={"Content-Type": ctype})
        return conn

    def hang_up(conn):
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()

    a = open_render()
    assert _wait(lambda: (renders.status()["progress"] or [0])[0] > 0, 60), renders.status()   # frames coming
    b = open_render()
    assert _wait(lambda: renders.status()["waiting"] == 1, 10), renders.status()
    t0 = time.perf_counter()
    st, headers, resp = _post(limited.url + "/api/render", files={"image": ("hopper.jpg", img, "image/jpeg"),
                                                                  "audio": ("s.flac", _flac(1), "audio/flac")})
    print(f"\nqueue full: {st} in {1e3 * (time.perf_counter() - t0):.0f} ms, Retry-After {headers.get('retry-after')}")
    assert st == 503 and "busy" in _error(resp)
    assert int(headers["retry-after"]) > 0
    assert renders.status()["refused"] == 1

    hang_up(b)                                                         # the waiting one
    assert _wait(lambda: renders.status()["cancelled"] == 1 and renders.status()["waiting"] == 0, 3), renders.status()
    assert renders.status()["running"] == 1                            # the running one goes on
    t0 = time.perf_counter()
    hang_up(a)                                                         # the running one
    assert _wait(lambda: renders.status()["running"] == 0, 3), renders.status()
    print(f"running render cancelled {1e3 * (time.perf_counter() - t0):.0f} ms after its client left; "
          f"{renders.status()}")
    s = renders.status()
    assert s["cancelled"] == 2 and s["done"] == 0 and s["waiting"] == 0
    assert _wait(lambda: not ({p for p in os.listdir(tempfile.gettempdir()) if p.startswith("facecast-render-")}
                              - tmp_before), 3)                        # temp folders removed


def test_render_audio_length_capped(limited, hopper_path):
    with open(hopper_path, "rb") as f:
        img = f.read()
    t0 = time.perf_counter()
    st, _, body = _post(limited.url + "/api/render", files={"image": ("hopper.jpg", img, "image/jpeg"),
                                                            "audio": ("long.flac", _flac(31), "audio/flac")})
    msg = _error(body)
    print(f"\n31 s of audio, limit 30 s: {st} in {1e3 * (time.perf_counter() - t0):.0f} ms: {msg}")
    assert st == 413 and "31 s" in msg and "30 s" in msg
    assert limited.live.renders.status()["running"] == limited.live.renders.status()["waiting"] == 0


def _post_chunked(srv, path, fields=None, files=None) -> tuple[int, str]:
    """A multipart POST sent chunked (no Content-Length), 64 KB a chunk -> (status, error text)."""
    body, ctype = _multipart(fields, files)
    chunks = (body[i:i + 64 * 1024] for i in range(0, len(body), 64 * 1024))
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        conn.request("POST", path, body=chunks, headers={"Content-Type": ctype}, encode_chunked=True)
        r = conn.getresponse()
        return r.status, _error(r.read())
    finally:
        conn.close()


def test_chunked_body_over_the_limit_gets_413(limited):
    """A body sent chunked (no Content-Length) past the path's limit gets 413, not a parser's 400."""
    for path, field, ctype in (("/api/portrait", "image", "image/jpeg"), ("/api/render", "audio", "audio/wav")):
        size = SMALL.body_limits()[path] + 100 * 1024
        st, msg = _post_chunked(limited, path, files={field: ("big", b"\xff" * size, ctype)})
        print(f"\nchunked {size // 1024} KB to {path}: {st} {msg}")
        assert st == 413 and "too large" in msg
    st, msg = _post_chunked(limited, "/api/portrait", files={"image": ("notes.txt", b"hello", "text/plain")})
    assert st == 400 and "not an image" in msg                   # a small chunked upload is read as usual


def test_host_header_checked(server):
    """DNS rebinding: a request naming another host is refused (HTTP and WebSocket), even with a
    matching Origin; loopback names with any port are accepted."""
    port = server.port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "", "127.0.0.1:x"):
        st, _, body = _request(server, "GET", "/api/status", {"Host": host})
        assert st == 400 and "Host" in _error(body), (host, st, body)
    for host in (f"127.0.0.1:{port}", "localhost", f"localhost:{port}", "[::1]:8000", "127.0.0.2", "LOCALHOST."):
        st, _, _ = _request(server, "GET", "/api/status", {"Host": host})
        assert st == 200, host
    st, body = _ws_handshake(server, {"Host": "evil.example", "Origin": "http://evil.example"})
    assert st == 400 and "Host" in _error(body)
    st, body = _ws_handshake(server, {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"})
    assert st == 403 and "cross-site" in _error(body)
    st, _ = _ws_handshake(server, {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"})
    assert st == 101


def test_host_rules():
    assert Access().host_allowed("localhost:1") and not Access().host_allowed("192.168.1.5:8000")
    lan = Access(bound_host="192.168.1.5")
    assert lan.host_allowed("192.168.1.5:8000") and lan.host_allowed("[::1]") and not lan.host_allowed("10.0.0.1")
    anywhere = Access(bound_host="0.0.0.0", extra_hosts=("studio.lan",))
    assert anywhere.host_allowed("10.0.0.7:8000") and anywhere.host_allowed("[fe80::1]:80")   # IP literals
    assert anywhere.host_allowed("Studio.LAN:8000") and not anywhere.host_allowed("evil.example")
    assert not anywhere.host_allowed("::1") and not anywhere.host_allowed(None)               # malformed, absent


def test_cross_site_requests_refused(server, tts_speech):
    """State-changing requests that a browser labels cross-site get 403; programs (no Origin, no
    Sec-Fetch-Site), same-origin pages and plain reads get through."""
    x, _ = tts_speech
    notes = {"image": ("notes.txt", b"hello, not an image", "text/plain")}
    render = {"image": ("notes.txt", b"hello", "text/plain"), "audio": ("s.wav", _wav_bytes(x[:8000]), "audio/wav")}
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Origin": server.url, "Sec-Fetch-Site": "cross-site"},
                    {"Origin": f"http://localhost:{server.port}"}):
        for path, files in (("/api/portrait", notes), ("/api/render", render)):
            st, _, body = _post(server.url + path, files=files, headers=headers)
            assert st == 403 and "cross-site" in _error(body), (path, headers, st)
    for headers in ({}, {"Origin": server.url}, {"Origin": server.url, "Sec-Fetch-Site": "same-origin"},
                    {"Sec-Fetch-Site": "none"}):
        st, _, body = _post(server.url + "/api/portrait", files=notes, headers=headers)
        assert st == 400 and "not an image" in _error(body), headers             # past the guard
    st, _, _ = _request(server, "GET", "/api/portraits", {"Host": f"127.0.0.1:{server.port}",
                                                          "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert st == 200


def test_access_token():
    app = create_app(warm=False, access=Access(token="s3cret-token"))
    with ServerThread(app) as srv:
        host = {"Host": f"127.0.0.1:{srv.port}"}
        st, headers, body = _request(srv, "GET", "/api/status", host)
        assert st == 401 and "token" in _error(body) and headers["www-authenticate"] == "Bearer"
        for h in ({"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
            assert _request(srv, "GET", "/api/status", {**host, **h})[0] == 401
        assert _request(srv, "GET", "/api/status?token=wrong", host)[0] == 401
        assert _request(srv, "GET", "/api/status", {**host, "Authorization": "Bearer s3cret-token"})[0] == 200
        st, headers, _ = _request(srv, "GET", "/?token=s3cret-token", host)       # the page, opened with the token
        assert st == 200
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert _request(srv, "GET", "/api/portraits", {**host, "Cookie": cookie.split(";")[0]})[0] == 200
        st, _, body = _post(srv.url + "/api/portrait", files={"image": ("n.txt", b"x", "text/plain")})
        assert st == 401
        st, _, body = _post(srv.url + "/api/portrait", files={"image": ("n.txt", b"x", "text/plain")},
                            headers={"Authorization": "Bearer s3cret-token"})
        assert st == 400
        # the WebSocket: refused without the token, served with it
        st, body = _ws_handshake(srv, host)
        assert st == 401 and "token" in _error(body)
        with pytest.raises(websockets.exceptions.InvalidStatus), connect(srv.ws_url, open_timeout=10):
            pass
        with connect(srv.ws_url + "?token=s3cret-token", open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        with connect(srv.ws_url, open_timeout=10, additional_headers={"Authorization": "Bearer s3cret-token"}) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
    with pytest.raises(FacecastError, match="token"):
        Access(token="has space;")


def test_errors_name_the_upload_not_a_server_path(server, hopper_path, tts_speech, tmp_path):
    import av
    x, _ = tts_speech
    with open(hopper_path, "rb") as f:
        img = f.read()
    silent = tmp_path / "silent.mp4"                            # a video without sound
    with av.open(str(silent), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for i in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * i, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    sky = np.zeros((300, 400, 3), np.uint8)
    sky[:] = (90, 150, 220)
    cases = [({"image": ("hopper.jpg", img, "image/jpeg"), "audio": ("clip.mp4", silent.read_bytes(), "video/mp4")},
              "the audio upload has no audio track"),
             ({"image": ("hopper.jpg", img, "image/jpeg"), "audio": ("s.wav", b"RIFF junk", "audio/wav")},
              "the audio upload"),
             ({"image": ("sky.png", cv2.imencode(".png", sky)[1].tobytes(), "image/png"),
               "audio": ("s.wav", _wav_bytes(x[:8000]), "audio/wav")}, "no face"),
             ({"image": ("photo.jpg", b"\xff\xd8\xff\xe0 broken", "image/jpeg"),
               "audio": ("s.wav", _wav_bytes(x[:8000]), "audio/wav")}, "the image upload")]
    for files, expected in cases:
        st, _, body = _post(server.url + "/api/render", files=files)
        msg = _error(body)
        print(f"\n{st}: {msg}")
        assert st == 400 and expected in msg
        assert tempfile.gettempdir() not in msg and "/tmp" not in msg and "facecast-" not in msg
    st, _, body = _post(server.url + "/api/portrait", files={"image": ("photo.jpg", b"\xff\xd8\xff\xe0 broken", "image/jpeg")})
    msg = _error(body)
    assert st == 400 and "the image upload" in msg and "/tmp" not in msg and "facecast-" not in msg


def test_one_error_shape(server):
    """FastAPI's validation errors, unknown paths and methods, and our own errors: all {"error": ...}."""
    cases = [("GET", "/nothing/here", None, 404), ("GET", "/static/nothing.js", None, 404),
             ("GET", "/api/render", None, 405), ("GET", "/api/portrait/nobody.jpg", None, 404)]
    for method, path, _, status in cases:
        st, headers, body = _request(server, method, path)
        assert st == status and headers["content-type"] == "application/json" and _error(body), (path, st)
    st, _, body = _post(server.url + "/api/portrait")                                # no file
    assert st == 400 and "image" in _error(body)
    st, _, body = _post(server.url + "/api/render", fields={"fps": "fast"},
                        files={"image": ("a.jpg", b"x", "image/jpeg"), "audio": ("a.wav", b"x", "audio/wav")})
    assert st == 400 and "fps" in _error(body)
    st, _, body = _request(server, "POST", "/api/portrait", {"Content-Type": "multipart/form-data; boundary=zz"},
                           body=b"--zz\r\nbroken")
    assert st == 400 and _error(body)


def test_oversized_ws_message_closed_with_reason(server):
    """A 10 MB message: the socket is closed with 1009 and a reason the client receives."""
    with connect(server.ws_url, max_size=None, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            ws.send(b"\0" * (10 * 1024 * 1024))
            ws.recv(timeout=10)
    rcvd = closed.value.rcvd
    print(f"\nclosed: {rcvd}")
    assert rcvd is not None and rcvd.code == 1009 and "too big" in rcvd.reason and "10 s" in rcvd.reason
    assert _wait(lambda: server.live.status()["sessions"] == 0)
