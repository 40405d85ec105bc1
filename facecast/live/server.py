"""Live mode: a local web server where a portrait talks, in real time, to the microphone or an audio file.

`facecast serve [IMAGE] [--host 127.0.0.1] [--port 8000]` serves the page (`facecast/static/`),
a WebSocket at `/ws` for live sessions and an HTTP API for programs (`/docs`, `/openapi.json`).

WebSocket protocol (version 1), one session per connection:

client -> server
  text  {"type": "start", "image_id": ID, "controls": {...}, "fps": 25, "audio_format": "f32le", "quality": 80}
        controls: any of emotion ('happy:0.7' or {"happy": 0.5}), gaze [yaw, pitch], head_distance,
        head_offset [x, y], motion_scale, expression_scale, blink_rate, seed. Starting again
        restarts the session (new clip) with the new settings.
  text  {"type": "controls", "controls": {...}}   changes controls while talking (glides over 0.3 s;
        the seed stays that of the start)
  text  {"type": "stop"}                          end of the audio: the last frames, then {"type": "ended"}
  text  {"type": "ping", "t": X}                  answered with {"type": "pong", "t": X, "server_time": unix s}
  binary  audio: 16 kHz mono samples, little-endian float32 in [-1, 1] ("f32le", the default) or
        int16 ("s16le"), any chunk size up to 10 s (20 ms is typical)

server -> client
  text  {"type": "hello", ...}      on connect: protocol version, sample rate, formats, portraits
  text  {"type": "ready", ...}      after start: image_id, size, fps, lookahead_ms, mouth_box [x, y, w, h]
  binary  a frame: a 32-byte header, then JPEG bytes (`FRAME_HEADER`, little-endian):
        magic b"FCF1", frame index (uint32), t = audio time the frame shows (float64 s from the
        first sample of the session), server send time (float64 Unix s), server latency (float32
        ms: the audio that completed the frame arrived -> frame sent), render + encode time (float32 ms)
  text  {"type": "stats", ...}      once a second: fps, frames sent and dropped, start latency, ...
  text  {"type": "error", "message": ...}   a malformed or refused message; the session goes on
  text  {"type": "ended", ...}      after stop

Real time: the audio is analysed in order as it arrives; frame i (time i / fps) is ready once the
audio reaches i / fps + `LIVE_LOOKAHEAD_S` (the generator's look-ahead; its motion is identical to
the offline render's). One worker thread per session renders the ready frames in order, but a
frame that is more than `MAX_FRAME_DELAY_S` late while a newer one is ready is skipped (the
generator still advances), and at most `OUTBOX_FRAMES` encoded frames wait for the socket: when
the CPU or the network falls behind, frames are dropped, never queued.

HTTP API (for programs; schema at `/docs`): `POST /api/render` (portrait + audio file -> MP4),
`POST /api/portrait` (a portrait for live sessions), `GET /api/portraits`, `GET /api/status`.
Every error answer is JSON `{"error": "<message>"}`, whatever refused the request (a check here,
FastAPI's validation, an unknown path or method, the `Guard`): 400 bad input or Host header, 401 no
or wrong access token, 403 cross-site, 404, 405, 413 too large (bytes, pixels or seconds), 503 busy
(with Retry-After). Messages name the upload ("the audio upload ..."), never a path on the server.

Security model. Whoever reaches the server can make it spend its CPU and memory, so who reaches it,
and how much one request may ask for, are narrowed:
- It listens on 127.0.0.1 unless told otherwise (`--host`).
- Host header (`Access.host_allowed`, HTTP and WebSocket): only a loopback name (localhost,
  127.0.0.0/8, [::1]), the address the server is bound to, or a name given with `--allow-host`, with
  any port; else 400. This defeats DNS rebinding: a page at evil.example whose name is rebound to
  127.0.0.1 still sends `Host: evil.example`. Bound to a wildcard (0.0.0.0, ::), any IP-literal
  Host is accepted too (an IP literal cannot be rebound).
- Same origin (`cross_site`): a state-changing request (any method but GET/HEAD/OPTIONS, and every
  WebSocket handshake) whose Origin is not this server, or whose Sec-Fetch-Site is neither
  same-origin nor none, gets 403. Browsers send these headers and cannot forge them; programs
  (curl, Python) send neither and are let in.
- Access token (`--token T` or $FACECAST_TOKEN; meant for listening beyond loopback): every request
  (page, API, WebSocket) must carry it as `Authorization: Bearer T`, as `?token=T`, or as the cookie
  that a request with `?token=T` sets (HttpOnly, SameSite=Strict, so the page opened at
  `/?token=T` works); else 401.
- Limits (`Limits`; 413 unless said otherwise): request bodies per path, counted as they stream
  (chunked ones too); an image's declared size (`MAX_UPLOAD_PIXELS`), read from its header before
  anything decodes it; the audio of a render (`MAX_AUDIO_S`, its duration checked before rendering,
  its frames counted while rendering). Renders run one at a time with at most
  `MAX_WAITING_RENDERS` waiting (then 503 + Retry-After), and a render whose client disconnects is
  cancelled, waiting or running. Live sessions: `MAX_SESSIONS` (then the socket closes with 1013);
  a WebSocket message over `MAX_WS_MESSAGE` bytes closes the socket with 1009 and a reason.
"""
import argparse
import asyncio
import collections
import concurrent.futures
import hmac
import io
import ipaddress
import json
import math
import os
import queue
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import FacecastError
from ..motion.controls import Controls, ControlTrack

PROTOCOL_VERSION = 1
LIVE_LOOKAHEAD_S = 0.05        # smallest look-ahead that keeps the default lip lead (0.03 s) exact
GLIDE_S = 0.3                  # controls changed mid-stream cross-fade over this long
MAX_FRAME_DELAY_S = 0.08       # a frame later than this is skipped when a newer one is ready
OUTBOX_FRAMES = 2              # encoded frames waiting for the socket, at most
MAX_CHUNK_S = 10.0             # largest audio message
AUDIO_QUEUE = 256              # audio messages waiting for the worker, at most (then the socket waits)
MAX_SESSIONS = 4
MAX_UPLOADED_PORTRAITS = 8          # kept in memory, oldest dropped first
MAX_MESSAGES = 500                  # JSON messages waiting for a client that does not read
MAX_WS_MESSAGE = int(MAX_CHUNK_S * SAMPLE_RATE * 4 + 1024)     # bytes; larger closes the socket (1009)
WS_TOO_BIG_REASON = f"message too big: at most {MAX_WS_MESSAGE} bytes ({MAX_CHUNK_S:g} s of audio)"
WS_LINGER_S = 5.0                   # after that close, the rest of the message is read and dropped this long

# HTTP API limits (the defaults of `Limits`)
MAX_UPLOAD_BYTES = 15 * 1024 * 1024          # an image upload
MAX_AUDIO_BYTES = 50 * 1024 * 1024           # an audio upload
MAX_UPLOAD_PIXELS = 60_000_000               # an image's declared width x height, checked before decoding
MAX_AUDIO_S = 600.0                          # the audio of one render (10 minutes)
MAX_WAITING_RENDERS = 4                      # renders waiting behind the running one; more get 503
FORM_OVERHEAD_BYTES = 64 * 1024              # multipart boundaries and small fields, beyond the files
DRAIN_FACTOR = 8                             # an over-limit body is read (and dropped) up to this x the limit
RETRY_AFTER_S = 30                           # the Retry-After of a 503 "busy"
CANCEL_POLL_S = 0.2                          # how often a render checks that its client is still there

# access (see "Security model" above)
TOKEN_ENV = "FACECAST_TOKEN"
TOKEN_COOKIE = "facecast_token"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")              # URL- and cookie-safe
LOOPBACK_NAMES = {"localhost"}
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
FRAME_HEADER = struct.Struct("<4sIddff")
FRAME_MAGIC = b"FCF1"
STATIC_DIR = Path(__file__).parent / "static"
AUDIO_FORMATS = {"f32le": "<f4", "s16le": "<i2"}
CONTROL_KEYS = set(Controls.model_fields)


def parse_frame(data: bytes) -> tuple[dict, bytes]:
    """A binary frame message -> (header dict, JPEG bytes). For clients written in Python."""
    magic, index, t, sent, server_ms, render_ms = FRAME_HEADER.unpack_from(data)
    if magic != FRAME_MAGIC:
        raise ValueError("not a facecast frame")
    return ({"index": index, "t": t, "sent": sent, "server_ms": server_ms, "render_ms": render_ms},
            bytes(data[FRAME_HEADER.size:]))


# ---- portraits -------------------------------------------------------------------------------
@dataclass
class Portrait:
    """A portrait the server can animate: an id, a display name and (once built) its Animator."""

    id: str
    name: str
    source: Any                      # a path, an array, or a callable returning an array
    builtin: bool = False
    animator: Any = None
    error: str | None = None
    thumbnail: bytes | None = None
    mouth_box: tuple[int, int, int, int] | None = None
    notices: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def info(self) -> dict:
        return {"image_id": self.id, "name": self.name, "builtin": self.builtin,
                "ready": self.animator is not None, "error": self.error,
                "thumbnail": f"/api/portrait/{self.id}.jpg", "notices": self.notices}


def _sample_portraits() -> list[tuple[str, str, Any]]:
    def hopper():
        import matplotlib.cbook
        return matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)

    def astronaut():
        import skimage.data
        return skimage.data.astronaut()
    return [("hopper", "Grace Hopper (sample)", hopper), ("astronaut", "Eileen Collins (sample)", astronaut)]


class PortraitStore:
    """Rigs built once per portrait, on one thread that owns the face tracker; shared read-only by sessions
    (`Renderer.render` keeps no per-call state)."""

    def __init__(self, size: int = 512):
        self.size = size
        self._items: "collections.OrderedDict[str, Portrait]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="facecast-rig")
        self._tracker = None
        self._building: dict[str, concurrent.futures.Future] = {}

    def add(self, p: Portrait) -> Portrait:
        with self._lock:
            self._items[p.id] = p
            uploads = [k for k, v in self._items.items() if not v.builtin]
            for k in uploads[:max(0, len(uploads) - MAX_UPLOADED_PORTRAITS)]:
                del self._items[k]
        return p

    def list(self) -> list[Portrait]:
        with self._lock:
            return list(self._items.values())

    def find(self, pid: str) -> Portrait | None:
        with self._lock:
            return self._items.get(pid)

    def _build(self, p: Portrait) -> Portrait:
        """On the rig thread: build the rig, renderer, thumbnail and mouth box."""
        if p.animator is not None or p.error is not None:
            return p
        from ..face.rig import build_rig
        from ..face.tracking import FaceTracker
        from ..pipeline import Animator
        try:
            src = p.source() if callable(p.source) else p.source
            if self._tracker is None:
                self._tracker = FaceTracker()
            rig = build_rig(src, size=self.size, tracker=self._tracker)
            return self.finish(p, Animator(src, rig=rig))
        except FacecastError as e:
            p.error = str(e)
        except Exception as e:  # noqa: BLE001 - an unusable image must not take the server down
            p.error = f"this image cannot be animated ({type(e).__name__}: {e})"
        return p

    @staticmethod
    def finish(p: Portrait, anim) -> Portrait:
        """Thumbnail, mouth box and a warm renderer for a portrait whose rig is built."""
        import cv2
        rig = anim.rig
        anim.frame(_neutral())          # warm up (first call builds lazy tables)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rig.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        p.thumbnail = jpg.tobytes() if ok else None
        ys, xs = np.nonzero(rig.masks["lips"] > 127)
        if len(xs):
            pad = int(0.15 * (xs.max() - xs.min()))
            x0, y0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
            x1, y1 = min(rig.size, xs.max() + pad + 1), min(rig.size, ys.max() + 2 * pad + 1)
            p.mouth_box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        p.notices = list(rig.notices)
        p.animator = anim
        return p

    def build(self, p: Portrait) -> concurrent.futures.Future:
        with self._lock:
            f = self._building.get(p.id)
            if f is None or (f.done() and p.animator is None and p.error is None):
                f = self._pool.submit(self._build, p)
                self._building[p.id] = f
            return f

    async def ready(self, p: Portrait) -> Portrait:
        return await asyncio.wrap_future(self.build(p))

    def rig_for_render(self, image_path: str):
        """A fresh rig for the render API (on the rig thread)."""
        from ..face.rig import build_rig
        from ..face.tracking import FaceTracker

        def run():
            if self._tracker is None:
                self._tracker = FaceTracker()
            return build_rig(image_path, size=self.size, tracker=self._tracker)
        return self._pool.submit(run)

    def close(self) -> None:
        def shut():
            if self._tracker is not None:
                self._tracker.close()
                self._tracker = None
        try:
            self._pool.submit(shut).result(timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self._pool.shutdown(wait=False, cancel_futures=True)


def _neutral():
    from ..motion.types import MotionFrame
    return MotionFrame(rotation=[0.5, 0, 0])


# ---- live sessions ---------------------------------------------------------------------------
class MessageError(Exception):
    """A client message that is malformed or not allowed now; answered with an error message."""


def parse_controls(d: Any, base: Controls | None = None) -> Controls:
    """A controls object from a message -> Controls (merged into `base`). Raises MessageError."""
    if d is None:
        return base or Controls()
    if not isinstance(d, dict):
        raise MessageError("controls must be a JSON object")
    unknown = set(d) - CONTROL_KEYS
    if unknown:
        raise MessageError(f"unknown control(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(CONTROL_KEYS))}")
    vals = dict(d)
    try:
        for k in ("gaze", "head_offset"):
            if k in vals:
                v = vals[k]
                if not isinstance(v, (list, tuple)) or len(v) != 2:
                    raise MessageError(f"{k} is a pair of numbers like [10, 0]")
                vals[k] = tuple(_num(x, k) for x in v)
        for k in ("head_distance", "motion_scale", "expression_scale", "blink_rate", "seed"):
            if k in vals:
                vals[k] = _num(vals[k], k)
        if "emotion" in vals and not isinstance(vals["emotion"], (str, dict)) and vals["emotion"] is not None:
            raise MessageError("emotion is a string like 'happy:0.7' or an object like {\"happy\": 0.5}")
        if isinstance(vals.get("emotion"), dict):
            vals["emotion"] = {str(k): _num(v, "emotion") for k, v in vals["emotion"].items()}
        return Controls.from_dict(vals, base)
    except FacecastError as e:
        raise MessageError(str(e)) from None
    except (TypeError, ValueError) as e:
        raise MessageError(f"bad control value: {e}") from None


def _num(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MessageError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def controls_json(c: Controls) -> dict:
    from ..motion.controls import EMOTIONS
    return {"emotion": {n: round(float(w), 3) for n, w in zip(EMOTIONS[1:], c.emotion)},
            "gaze": list(c.gaze), "head_distance": c.head_distance, "head_offset": list(c.head_offset),
            "motion_scale": c.motion_scale, "expression_scale": c.expression_scale,
            "blink_rate": c.blink_rate, "seed": c.seed}


class Outbox:
    """Everything the server sends on one socket, sent by one task: JSON messages in order, and
    at most `OUTBOX_FRAMES` frames (the oldest is dropped when a newer one comes)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.messages: collections.deque = collections.deque()
        self.frames: collections.deque = collections.deque()
        self.event = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def message(self, obj: dict) -> None:
        if len(self.messages) >= MAX_MESSAGES:
            self.messages.popleft()
        self.messages.append(json.dumps(obj))
        self.event.set()

    def frame(self, item) -> None:
        """On the loop thread: offer an encoded frame."""
        if self.closed:
            return
        while len(self.frames) >= OUTBOX_FRAMES:
            self.frames.popleft()
            self.dropped += 1
        self.frames.append(item)
        self.event.set()

    def message_threadsafe(self, obj: dict) -> None:
        if not self.closed:
            self.loop.call_soon_threadsafe(self.message, obj)

    def frame_threadsafe(self, item) -> None:
        if not self.closed:
            self.loop.call_soon_threadsafe(self.frame, item)


@dataclass
class _Ready:
    motion: Any
    index: int
    ready_at: float      # perf_counter when the audio that completed this frame arrived


class LiveWorker:
    """One session's clip: audio in order through the motion generator, frames rendered on its own
    thread, the late ones skipped. Created by `start`, ended by `stop` or `close`."""

    _STOP = object()
    _CLOSE = object()

    def __init__(self, session: "LiveSession", portrait: Portrait, controls: Controls, fps: float,
                 fmt: str, quality: int):
        from ..motion.generator import MotionGenerator
        self.session = session
        self.portrait = portrait
        self.animator = portrait.animator
        self.fps = fps
        self.dtype = AUDIO_FORMATS[fmt]
        self.quality = quality
        self.controls = controls
        self.seed = controls.seed
        self.gen = MotionGenerator(fps, controls, lookahead_s=LIVE_LOOKAHEAD_S)
        self.audio: queue.Queue = queue.Queue(AUDIO_QUEUE)
        self._pending_controls: Controls | None = None
        self._lock = threading.Lock()
        self.samples_in = 0
        self.frames_made = 0
        self.frames_sent = 0
        self.frames_skipped = 0
        self.render_ms = collections.deque(maxlen=50)
        self.first_audio_at: float | None = None
        self.closed = False
        self.gen_frames = 0
        self.thread = threading.Thread(target=self._run, name=f"facecast-live-{session.id}", daemon=True)
        self.thread.start()

    # -- loop thread -----------------------------------------------------------------------------
    def set_controls(self, c: Controls) -> None:
        with self._lock:
            self._pending_controls = c.with_seed(self.seed)
        self.controls = c

    def put_audio(self, x: np.ndarray, arrived: float) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = arrived
        self.audio.put_nowait((x, arrived))

    def stop(self) -> None:
        try:
            self.audio.put_nowait((self._STOP, time.perf_counter()))
        except queue.Full:
            self.closed = True

    def close(self) -> None:
        self.closed = True
        try:
            self.audio.put_nowait((self._CLOSE, 0.0))
        except queue.Full:
            pass

    # -- worker thread ---------------------------------------------------------------------------
    def _apply_controls(self) -> None:
        with self._lock:
            c, self._pending_controls = self._pending_controls, None
        if c is None:
            return
        t = self.gen_frames / self.fps
        cur = self.gen.track.at(t)
        self.gen.track = ControlTrack(c, [(t, cur.with_seed(self.seed)), (t + GLIDE_S, c)])

    def _run(self) -> None:
        pending: collections.deque[_Ready] = collections.deque()
        ended = False
        try:
            while not self.closed:
                # all the audio that is there; wait for more only when no frame is waiting
                items = [] if pending else [self.audio.get()]
                while True:
                    try:
                        items.append(self.audio.get_nowait())
                    except queue.Empty:
                        break
                for x, arrived in items:
                    if x is self._CLOSE or self.closed:
                        return
                    self._apply_controls()
                    if x is self._STOP:
                        motion = self.gen.flush()
                        ended = True
                    else:
                        motion = self.gen.push(x)
                    for m in motion:
                        pending.append(_Ready(m, self.gen_frames, arrived))
                        self.gen_frames += 1
                if pending:
                    self._render_next(pending)
                if ended and not pending:
                    self.session.outbox.message_threadsafe(
                        {"type": "ended", "frames": self.gen_frames, "frames_rendered": self.frames_made,
                         "frames_skipped": self.frames_skipped, "audio_s": round(self.samples_in / SAMPLE_RATE, 3)})
                    return
        except Exception as e:  # noqa: BLE001 - a worker failure is reported, never kills the server
            self.session.outbox.message_threadsafe({"type": "error", "message": f"live session failed: {e}"})
        finally:
            self.closed = True

    def _render_next(self, pending: "collections.deque[_Ready]") -> None:
        import cv2
        r = pending.popleft()
        now = time.perf_counter()
        # late and not the newest: skip it (the generator has already moved on)
        while pending and now - r.ready_at > MAX_FRAME_DELAY_S:
            self.frames_skipped += 1
            r = pending.popleft()
        t0 = time.perf_counter()
        frame = self.animator.frame(r.motion)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        t1 = time.perf_counter()
        self.render_ms.append((t1 - t0) * 1e3)
        self.frames_made += 1
        if ok:
            self.session.outbox.frame_threadsafe((r.index, r.index / self.fps, r.ready_at, (t1 - t0) * 1e3,
                                                  jpg.tobytes(), self))


class LiveSession:
    """One WebSocket connection."""

    def __init__(self, server: "LiveServer", ws, loop: asyncio.AbstractEventLoop):
        self.server = server
        self.ws = ws
        self.id = uuid.uuid4().hex[:12]
        self.outbox = Outbox(loop)
        self.worker: LiveWorker | None = None
        self.opened = time.perf_counter()
        self.sent_times: collections.deque = collections.deque(maxlen=200)
        self.server_ms: collections.deque = collections.deque(maxlen=50)
        self.start_latency_ms: float | None = None
        self.frames_sent = 0
        self.errors = 0

    async def sender(self) -> None:
        ob = self.outbox
        while True:
            await ob.event.wait()
            ob.event.clear()
            while ob.messages or ob.frames:
                if ob.messages:
                    await self.ws.send_text(ob.messages.popleft())
                    continue
                index, t, ready_at, render_ms, jpg, worker = ob.frames.popleft()
                if worker is not self.worker:        # a frame of a clip that was restarted
                    continue
                now = time.perf_counter()
                server_ms = (now - ready_at) * 1e3
                await self.ws.send_bytes(FRAME_HEADER.pack(FRAME_MAGIC, index, t, time.time(), server_ms, render_ms) + jpg)
                if worker.frames_sent == 0 and worker.first_audio_at is not None:
                    self.start_latency_ms = (now - worker.first_audio_at) * 1e3
                worker.frames_sent += 1
                self.frames_sent += 1
                self.sent_times.append(now)
                self.server_ms.append(server_ms)

    async def stats_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.worker is not None and not self.worker.closed:
                self.outbox.message(self.stats())

    def stats(self) -> dict:
        w = self.worker
        now = time.perf_counter()
        recent = [s for s in self.sent_times if now - s <= 2.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 and recent[-1] > recent[0] else 0.0
        return {"type": "stats", "fps": round(fps, 2),
                "frames_sent": w.frames_sent if w else 0,
                "frames_dropped": (w.frames_skipped if w else 0) + self.outbox.dropped,
                "frames_skipped_render": w.frames_skipped if w else 0,
                "frames_dropped_send": self.outbox.dropped,
                "start_latency_ms": None if self.start_latency_ms is None else round(self.start_latency_ms, 1),
                "server_latency_ms": round(float(np.mean(list(self.server_ms))), 1) if self.server_ms else None,
                "render_ms": round(float(np.mean(list(w.render_ms))), 1) if w and w.render_ms else None,
                "audio_s": round(w.samples_in / SAMPLE_RATE, 3) if w else 0.0,
                "backlog_audio_chunks": w.audio.qsize() if w else 0}

    # -- messages --------------------------------------------------------------------------------
    async def on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MessageError("a text message must be JSON") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise MessageError('a message is a JSON object with a "type"')
        kind = msg["type"]
        if kind == "start":
            await self.start(msg)
        elif kind == "controls":
            if self.worker is None:
                raise MessageError("send start before controls")
            body = msg.get("controls", {k: v for k, v in msg.items() if k != "type"})
            c = parse_controls(body, self.worker.controls)
            self.worker.set_controls(c)
            self.outbox.message({"type": "controls", "controls": controls_json(c)})
        elif kind == "stop":
            if self.worker is None:
                raise MessageError("nothing to stop: send start first")
            self.worker.stop()
        elif kind == "ping":
            self.outbox.message({"type": "pong", "t": msg.get("t"), "server_time": time.time()})
        else:
            raise MessageError(f"unknown message type {kind!r}; use start, controls, stop or ping")

    async def start(self, msg: dict) -> None:
        pid = msg.get("image_id", self.server.default_id)
        if not isinstance(pid, str):
            raise MessageError("image_id must be a string")
        p = self.server.portraits.find(pid)
        if p is None:
            raise MessageError(f"no portrait {pid!r}; upload one (POST /api/portrait) or pick one of GET /api/portraits")
        fps = msg.get("fps", 25)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 10 <= fps <= 30:
            raise MessageError("fps must be a number from 10 to 30")
        fmt = msg.get("audio_format", "f32le")
        if fmt not in AUDIO_FORMATS:
            raise MessageError(f"audio_format must be one of {', '.join(AUDIO_FORMATS)}")
        quality = msg.get("quality", 80)
        if isinstance(quality, bool) or not isinstance(quality, int) or not 30 <= quality <= 95:
            raise MessageError("quality must be an integer from 30 to 95")
        controls = parse_controls(msg.get("controls"))
        p = await self.server.portraits.ready(p)
        if p.error:
            raise MessageError(f"portrait {pid!r} cannot be animated: {p.error}")
        if self.worker is not None:
            self.worker.close()
        self.worker = LiveWorker(self, p, controls, float(fps), fmt, quality)
        self.start_latency_ms = None
        self.sent_times.clear()
        self.outbox.message({"type": "ready", "image_id": p.id, "size": p.animator.rig.size, "fps": float(fps),
                             "sample_rate": SAMPLE_RATE, "audio_format": fmt,
                             "lookahead_ms": LIVE_LOOKAHEAD_S * 1e3, "mouth_box": p.mouth_box,
                             "controls": controls_json(controls)})

    async def on_audio(self, data: bytes) -> None:
        arrived = time.perf_counter()
        w = self.worker
        if w is None or w.closed:
            raise MessageError("send start before audio")
        dt = np.dtype(w.dtype)
        if len(data) == 0 or len(data) % dt.itemsize:
            raise MessageError(f"audio chunks are whole {dt.itemsize}-byte samples; got {len(data)} bytes")
        n = len(data) // dt.itemsize
        if n > MAX_CHUNK_S * SAMPLE_RATE:
            raise MessageError(f"an audio chunk holds at most {MAX_CHUNK_S:g} s")
        x = np.frombuffer(data, dt)
        x = x.astype(np.float32) * (1.0 / 32768.0) if dt.kind == "i" else x.astype(np.float32)
        if not np.isfinite(x).all():
            x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(x, -1.0, 1.0, out=x)
        while w.audio.full() and not w.closed:       # back-pressure: stop reading the socket
            await asyncio.sleep(0.005)
        if w.closed:
            return
        w.samples_in += n
        w.put_audio(x, arrived)

    def close(self) -> None:
        self.outbox.closed = True
        if self.worker is not None:
            self.worker.close()


# ---- errors and limits ---------------------------------------------------------------------------
class ApiError(Exception):
    """An error answer of the HTTP API: `{"error": message}` with this status (and headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Limits:
    """What one request to the HTTP API may ask for (`create_app(limits=...)`; tests make them small)."""

    upload_bytes: int = MAX_UPLOAD_BYTES
    audio_bytes: int = MAX_AUDIO_BYTES
    upload_pixels: int = MAX_UPLOAD_PIXELS
    audio_s: float = MAX_AUDIO_S
    waiting_renders: int = MAX_WAITING_RENDERS

    def body_limits(self) -> dict[str, int]:
        """Request-body bytes per path (the multipart form around the files included)."""
        return {"/api/portrait": self.upload_bytes + FORM_OVERHEAD_BYTES,
                "/api/render": self.upload_bytes + self.audio_bytes + FORM_OVERHEAD_BYTES}


def _size(n: float) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def error_response(status: int, message: str, headers: dict[str, str] | None = None):
    from fastapi.responses import JSONResponse
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def send_error(send, status: int, message: str, headers: dict[str, str] | None = None,
                     websocket: bool = False) -> None:
    """The same answer from ASGI middleware (for a WebSocket handshake: its HTTP denial response)."""
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    prefix = "websocket.http" if websocket else "http"
    await send({"type": f"{prefix}.response.start", "status": status, "headers": raw})
    await send({"type": f"{prefix}.response.body", "body": body})


def validation_message(errors) -> str:
    """FastAPI's validation errors -> one line, e.g. "image: Field required"."""
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header")]
        parts.append(f"{'.'.join(loc) or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app) -> None:
    """Every error answer in the one shape `{"error": message}`: `ApiError`s, FastAPI's validation
    errors (as 400), Starlette's HTTP errors (404, 405, a body it cannot parse) and failures (500)."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return error_response(e.status, e.message, e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return error_response(e.status_code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, e: RequestValidationError):
        return error_response(400, validation_message(e.errors()))

    @app.exception_handler(Exception)
    async def internal_error(request, e: Exception):
        return error_response(500, f"internal error ({type(e).__name__})")


def scrub_paths(text: str, names: dict[Path, str]) -> str:
    """An error text with server paths replaced by what they hold ("/tmp/x/audio.wav" -> "the audio
    upload"); the most specific path first."""
    for path, name in sorted(names.items(), key=lambda kv: -len(str(kv[0]))):
        text = re.sub(rf"(?:audio file |image )?{re.escape(str(path))}", name, text)
    return text


async def read_upload(up, what: str, limit: int) -> bytes:
    """An uploaded file's bytes: 413 over `limit`, 400 when empty."""
    data = await up.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, f"the {what} upload is too large (at most {_size(limit)})")
    if not data:
        raise ApiError(400, f"the {what} upload is empty")
    return data


def check_image_header(data: bytes, max_pixels: int) -> None:
    """Refuse (413) an image whose header declares more than `max_pixels`, before anything decodes
    it: PIL's `Image.open` reads only the header. Data PIL cannot identify passes (the decoder then
    says what is wrong)."""
    from PIL import Image
    limit = f"upload at most {max_pixels / 1e6:g} megapixels"
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError:     # over twice PIL's own limit, which is above ours
        raise ApiError(413, f"the image upload declares far too many pixels; {limit}") from None
    except Exception:  # noqa: BLE001 - not an image PIL knows: load_image says so
        return
    if w * h > max_pixels:
        raise ApiError(413, f"the image upload is {w}x{h} pixels; {limit}")


def _decode_image(data: bytes, filename: str | None) -> np.ndarray:
    """An uploaded portrait -> RGB array; errors name "the image upload"."""
    from ..face.image_io import load_image
    with tempfile.TemporaryDirectory(prefix="facecast-upload-") as d:
        p = Path(d) / ("upload" + _safe_suffix(filename, ""))
        p.write_bytes(data)
        try:
            return load_image(p)
        except FacecastError as e:
            raise ApiError(400, scrub_paths(str(e), {p: "the image upload", Path(d): "the upload"})) from None


def _safe_suffix(name: str | None, default: str) -> str:
    suf = Path(name or "").suffix.lower()
    return suf if suf[1:].isalnum() and len(suf) <= 6 else default


# ---- access: Host, origin, token -----------------------------------------------------------------
@dataclass(frozen=True)
class Access:
    """Who may use the server (see "Security model" at the top): the address it is bound to, more
    Host names to accept, and an optional access token."""

    bound_host: str = "127.0.0.1"
    token: str | None = None
    extra_hosts: tuple[str, ...] = ()

    def __post_init__(self):
        if self.token is not None and not TOKEN_PATTERN.fullmatch(self.token):
            raise FacecastError("the access token may hold only letters, digits and . _ ~ - "
                                "(make one with: python -c \"import secrets; print(secrets.token_urlsafe())\")")

    def host_allowed(self, header: str | None) -> bool:
        name = host_name(header)
        if name is None:
            return False
        bound = self.bound_host.lower().strip("[]")
        if name in LOOPBACK_NAMES or name == bound or name in {h.lower() for h in self.extra_hosts}:
            return True
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False
        return ip.is_loopback or bound in WILDCARD_HOSTS

    def token_ok(self, headers: dict[str, str], query: str) -> bool:
        if self.token is None:
            return True
        want = self.token.encode()
        return any(hmac.compare_digest(t.encode(), want) for t in presented_tokens(headers, query))


def host_name(header: str | None) -> str | None:
    """The host of a Host header, lowercased, without port or trailing dot; None when malformed."""
    h = (header or "").strip().lower()
    if h.startswith("["):
        name, bracket, rest = h[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest.removeprefix(":")
    else:
        name, _, port = h.partition(":")
    if port and not (port.isascii() and port.isdigit()):
        return None
    return name.rstrip(".") or None


def cross_site(headers: dict[str, str]) -> bool:
    """True for a request a browser sends on behalf of another site: its Sec-Fetch-Site is neither
    same-origin nor none, or its Origin is not this server (the Host it asked for)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin.strip()).netloc.lower()
    except ValueError:
        return True
    return not netloc or netloc != headers.get("host", "").strip().lower()


def presented_tokens(headers: dict[str, str], query: str) -> list[str]:
    """The access tokens a request carries: Authorization: Bearer, ?token=, the token cookie."""
    found = []
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        found.append(value.strip())
    found += parse_qs(query).get("token", [])
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except CookieError:
        pass
    if TOKEN_COOKIE in cookie:
        found.append(cookie[TOKEN_COOKIE].value)
    return found


class BodyTooLarge(Exception):
    """Raised into the app when its request body passes the limit."""


class Guard:
    """ASGI middleware in front of the whole app: the Host check, the access token and the
    same-origin rule (HTTP and WebSocket), and the request-body limits (HTTP). Refusals have the
    API's error shape; a refused WebSocket handshake gets it as its HTTP response."""

    def __init__(self, app, access: Access, body_limits: dict[str, int]):
        self.app = app
        self.access = access
        self.body_limits = body_limits

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = scope.get("query_string", b"").decode("latin-1")
        refusal = self.refusal(scope, headers, query)
        if refusal is not None:
            return await refuse(scope, receive, send, *refusal)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        if self.access.token and "token" in parse_qs(query):
            send = _setting_token_cookie(send, self.access.token)
        limit = self.body_limits.get(scope["path"])
        if limit is None:
            return await self.app(scope, receive, send)
        return await limit_body(self.app, limit, scope, receive, send)

    def refusal(self, scope, headers: dict[str, str], query: str) -> tuple[int, str, dict] | None:
        """(status, message, headers) when the request is refused, else None."""
        if not self.access.host_allowed(headers.get("host")):
            return (400, (f"Host {headers.get('host', '')!r} is not this server: use localhost or 127.0.0.1 "
                          "(or start it with --allow-host NAME)"), {})
        if not self.access.token_ok(headers, query):
            return (401, ("this server needs its access token: send 'Authorization: Bearer TOKEN' "
                          "or add ?token=TOKEN to the address"), {"WWW-Authenticate": "Bearer"})
        state_changing = scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS
        if state_changing and cross_site(headers):
            return 403, "cross-site request refused: use the page this server serves, or a program", {}
        return None


async def refuse(scope, receive, send, status: int, message: str, headers: dict) -> None:
    if scope["type"] == "http":
        return await send_error(send, status, message, headers)
    await receive()                                      # websocket.connect
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send_error(send, status, message, headers, websocket=True)
    else:
        await send({"type": "websocket.close", "code": 1008})


def _setting_token_cookie(send, token: str):
    cookie = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict".encode()

    async def send_with_cookie(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
        await send(message)
    return send_with_cookie


async def limit_body(app, limit: int, scope, receive, send) -> None:
    """Run `app` with its request body held to `limit` bytes. Over it, declared or while streaming
    (chunked too), the answer is a 413, whatever the app made of the cut-off body; the rest of the
    body is read and dropped (up to `DRAIN_FACTOR` x limit) so that the client gets to read it."""
    message = f"the request is too large (at most {_size(limit)})"
    try:
        declared = int(dict(scope.get("headers") or []).get(b"content-length", b"0"))
    except ValueError:
        declared = 0
    if declared > limit:
        if declared <= DRAIN_FACTOR * limit:
            await _drain(receive, DRAIN_FACTOR * limit)
        return await send_error(send, 413, message)
    seen, over, started = 0, False, False

    async def receive_counted():
        nonlocal seen, over
        m = await receive()
        if m["type"] == "http.request":
            seen += len(m.get("body", b""))
            if seen > limit:
                over = True
                if m.get("more_body"):
                    await _drain(receive, DRAIN_FACTOR * limit)
                raise BodyTooLarge()
        return m

    async def send_checked(m):
        nonlocal started
        if over:                             # the app's answer to a cut-off body: the 413 instead
            if not started:
                started = True
                await send_error(send, 413, message)
            return
        started = started or m["type"] == "http.response.start"
        await send(m)
    try:
        await app(scope, receive_counted, send_checked)
    except BodyTooLarge:
        if not started:
            await send_error(send, 413, message)


async def _drain(receive, budget: int) -> None:
    n = 0
    while n <= budget:
        m = await receive()
        if m["type"] != "http.request":
            return
        n += len(m.get("body", b""))
        if not m.get("more_body"):
            return


# ---- HTTP renders --------------------------------------------------------------------------------
class RenderCancelled(Exception):
    """Raised inside a render (between frames) when its client has gone."""


@dataclass
class RenderJob:
    """One /api/render request: its uploads (in its own temp folder), settings and cancel flag."""

    folder: Path
    image: Path
    audio: Path
    fps: float
    track: Any = None
    max_frames: int = 0              # a guard against audio that runs longer than its header said
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def output(self) -> Path:
        return self.folder / "out.mp4"

    def public(self, text: str) -> str:
        return scrub_paths(text, {self.audio: "the audio upload", self.image: "the image upload",
                                  self.folder: "the upload"})

    def audio_duration(self) -> float:
        from ..audio.io import load_audio_info
        try:
            return load_audio_info(self.audio).duration_s
        except FacecastError as e:
            raise ApiError(400, self.public(str(e))) from None

    def check(self, frames: int = 0) -> None:
        """Between frames: stop when the client has gone, or the audio is longer than allowed."""
        if self.cancel.is_set():
            raise RenderCancelled()
        if frames > self.max_frames:
            raise ApiError(413, f"the audio is longer than allowed ({self.max_frames / self.fps:.0f} s at most)")

    def render(self, rig, progress):
        from ..pipeline import Animator
        return Animator(str(self.image), rig=rig).render(str(self.audio), self.output, fps=self.fps,
                                                          controls=self.track, progress=progress)


class RenderQueue:
    """The HTTP renders: one runs at a time (it uses every core), at most `max_waiting` wait behind
    it, and `admit` refuses the rest. A job whose `cancel` is set stops, waiting or running."""

    OUTCOMES = ("done", "failed", "cancelled", "refused")

    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self._slot = threading.Lock()          # held by the running render
        self._lock = threading.Lock()          # guards the counters below
        self._admitted = 0
        self._running = False
        self._progress = (0, 0)
        self._counts = dict.fromkeys(self.OUTCOMES, 0)

    def admit(self) -> bool:
        with self._lock:
            if self._admitted > self.max_waiting:
                self._counts["refused"] += 1
                return False
            self._admitted += 1
            return True

    def leave(self, outcome: str) -> None:
        with self._lock:
            self._admitted -= 1
            self._counts[outcome] += 1

    def run(self, job: RenderJob, build_rig):
        """On a worker thread: wait for the slot, build the rig (`build_rig(path)` -> Future), render."""
        while not self._slot.acquire(timeout=CANCEL_POLL_S):
            job.check()
        try:
            with self._lock:
                self._running, self._progress = True, (0, 0)
            job.check()
            rig = _result_unless_cancelled(build_rig(str(job.image)), job)

            def progress(done: int, total: int) -> None:
                self._progress = (done, total)
                job.check(done)
            return job.render(rig, progress)
        finally:
            with self._lock:
                self._running = False
            self._slot.release()

    def status(self) -> dict:
        with self._lock:
            return {"running": int(self._running), "waiting": self._admitted - int(self._running),
                    "max_waiting": self.max_waiting, "progress": list(self._progress) if self._running else None,
                    **self._counts}


def _result_unless_cancelled(future: concurrent.futures.Future, job: RenderJob):
    while True:
        try:
            return future.result(timeout=CANCEL_POLL_S)
        except concurrent.futures.TimeoutError:
            if job.cancel.is_set():
                future.cancel()
                raise RenderCancelled() from None


async def prepare_render(folder: Path, image, audio, controls: str | None, fps: float, limits: Limits) -> RenderJob:
    """Check a render request and write its uploads into `folder`; ApiError (400, 413) when it cannot run."""
    from starlette.concurrency import run_in_threadpool
    if not 1 <= fps <= 60:
        raise ApiError(400, "fps must be between 1 and 60")
    job = RenderJob(folder, folder / ("image" + _safe_suffix(image.filename, ".jpg")),
                    folder / ("audio" + _safe_suffix(audio.filename, ".wav")), fps, parse_control_track(controls))
    data = await read_upload(image, "image", limits.upload_bytes)
    check_image_header(data, limits.upload_pixels)
    job.image.write_bytes(data)
    job.audio.write_bytes(await read_upload(audio, "audio", limits.audio_bytes))
    duration = await run_in_threadpool(job.audio_duration)
    if duration > limits.audio_s:
        raise ApiError(413, f"the audio upload is {duration:.0f} s long; a render takes at most {limits.audio_s:g} s")
    job.max_frames = math.ceil((limits.audio_s + 1.0) * fps)
    return job


def parse_control_track(text: str | None) -> ControlTrack | None:
    if not text:
        return None
    try:
        return ControlTrack.from_dict(json.loads(text))
    except json.JSONDecodeError as e:
        raise ApiError(400, f"controls is not valid JSON: {e}") from None
    except FacecastError as e:
        raise ApiError(400, str(e)) from None
    except (TypeError, ValueError, AttributeError) as e:
        raise ApiError(400, f"bad controls: {e}") from None


async def run_render(request, renders: RenderQueue, job: RenderJob, build_rig):
    """Run `job` through `renders` on a worker thread, polling the client meanwhile: when it has
    disconnected, the job is cancelled (RenderCancelled). FacecastErrors come back as 400s."""
    from starlette.concurrency import run_in_threadpool
    task = asyncio.ensure_future(run_in_threadpool(renders.run, job, build_rig))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=CANCEL_POLL_S)
            if not task.done() and not job.cancel.is_set() and await request.is_disconnected():
                job.cancel.set()
        return task.result()
    except asyncio.CancelledError:
        job.cancel.set()
        raise
    except FacecastError as e:
        raise ApiError(400, job.public(str(e))) from None


# ---- the app -------------------------------------------------------------------------------------
class LiveServer:
    """The state behind one app: portraits, live sessions and the render queue."""

    def __init__(self, size: int = 512, default_image=None, max_sessions: int = MAX_SESSIONS, default_rig=None,
                 limits: Limits | None = None):
        self.portraits = PortraitStore(size)
        self.sessions: dict[str, LiveSession] = {}
        self.max_sessions = max_sessions
        self.limits = limits or Limits()
        self.renders = RenderQueue(self.limits.waiting_renders)
        for pid, name, src in _sample_portraits():
            self.portraits.add(Portrait(pid, name, src, builtin=True))
        self.default_id = "hopper"
        if default_image is not None:
            name = Path(default_image).name if not isinstance(default_image, np.ndarray) else "portrait"
            p = self.portraits.add(Portrait("default", name, default_image, builtin=True))
            if default_rig is not None:
                from ..pipeline import Animator
                PortraitStore.finish(p, Animator(default_image, rig=default_rig))
            self.portraits._items.move_to_end("default", last=False)
            self.default_id = p.id

    def warm(self) -> None:
        """Build the default portrait first, then the samples, in the background."""
        order = sorted(self.portraits.list(), key=lambda p: p.id != self.default_id)
        for p in order:
            self.portraits.build(p)

    def wait_warm(self, timeout: float = 60.0) -> None:
        """Wait until every known portrait is built (or failed)."""
        for p in self.portraits.list():
            self.portraits.build(p).result(timeout=timeout)

    def status(self) -> dict:
        return {"sessions": len(self.sessions),
                "workers": sum(1 for t in threading.enumerate() if t.name.startswith("facecast-live-")),
                "portraits": len(self.portraits.list()),
                "renders": self.renders.status()}


API_DESCRIPTION = f"""
One portrait photo + speech -> a talking face, on a CPU.

* **Page**: `/` - pick or upload a portrait, talk into the microphone or play an audio file, and
  see the face talk live.
* **Programs**: `POST /api/render` (a portrait + an audio file -> an MP4), `POST /api/portrait`
  (upload a portrait for live sessions), `GET /api/portraits`, `GET /api/status`.
* **Live**: WebSocket `/ws` (not shown in this schema): text messages `start`, `controls`, `stop`,
  `ping`; binary audio (16 kHz mono float32 or int16, little-endian); binary frames back (32-byte
  header `<4sIddff`: magic `FCF1`, frame index, audio time s, server send time, server latency ms,
  render ms; then JPEG) and JSON `ready`, `stats`, `error`, `ended` messages. See `facecast/server.py`.

Limits: an image upload {_size(MAX_UPLOAD_BYTES)} and {MAX_UPLOAD_PIXELS / 1e6:g} megapixels, an audio upload
{_size(MAX_AUDIO_BYTES)} and {MAX_AUDIO_S:g} s. Renders run one at a time, at most {MAX_WAITING_RENDERS} waiting;
a render whose client disconnects is cancelled.

Errors are JSON `{{"error": "..."}}` with status 400 (bad input or Host header), 401 (access token
needed), 403 (cross-site request), 404, 405, 413 (too large: bytes, pixels or seconds) or 503
(busy; see Retry-After).
"""


def create_app(size: int = 512, default_image=None, max_sessions: int = MAX_SESSIONS, warm: bool = True,
               default_rig=None, *, limits: Limits | None = None, access: Access | None = None):
    """The app: page, HTTP API and WebSocket, behind the `Guard`. `app.state.live` is the `LiveServer`.

    default_image: a portrait (path or array) offered first; default_rig: its rig, if already built.
    limits: the HTTP API's `Limits`; access: who may use it (`Access`: bound host, token)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, File, Form, UploadFile, WebSocket, WebSocketDisconnect
    from fastapi.responses import FileResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request

    live = LiveServer(size, default_image, max_sessions, default_rig, limits)

    @asynccontextmanager
    async def lifespan(app):
        if warm:
            live.warm()
        yield
        for s in list(live.sessions.values()):
            s.close()
        live.portraits.close()

    app = FastAPI(title="facecast", version="1", description=API_DESCRIPTION, lifespan=lifespan)
    app.state.live = live
    install_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/portraits", summary="Portraits available for live sessions")
    async def portraits() -> list[dict]:
        return [p.info() for p in live.portraits.list()]

    @app.get("/api/portrait/{image_id}.jpg", summary="The portrait's square crop (JPEG)",
             responses={200: {"content": {"image/jpeg": {}}}, 404: {}})
    async def portrait_image(image_id: str):
        p = live.portraits.find(image_id)
        if p is None:
            raise ApiError(404, f"no portrait {image_id!r}")
        p = await live.portraits.ready(p)
        if p.thumbnail is None:
            raise ApiError(400, p.error or "no image")
        return Response(p.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/portrait", summary="Upload a portrait for live sessions",
              description=f"An image file (JPEG, PNG, WebP, TIFF, BMP; at most {_size(live.limits.upload_bytes)} and "
                          f"{live.limits.upload_pixels / 1e6:g} megapixels) with a clearly visible face. Returns its "
                          "`image_id` for the WebSocket `start` message.",
              responses={400: {"description": "not an image, or no usable face"}, 413: {"description": "too large"}})
    async def upload_portrait(image: UploadFile = File(..., description="portrait photo, painting or drawing")):
        data = await read_upload(image, "image", live.limits.upload_bytes)
        check_image_header(data, live.limits.upload_pixels)
        arr = await run_in_threadpool(_decode_image, data, image.filename)
        name = Path(image.filename or "portrait").name[:80]
        p = live.portraits.add(Portrait(uuid.uuid4().hex[:12], name, arr))
        p = await live.portraits.ready(p)
        if p.error:
            live.portraits._items.pop(p.id, None)
            raise ApiError(400, p.error)
        return p.info()

    @app.get("/api/status", summary="Live sessions, worker threads and HTTP renders now running")
    async def status() -> dict:
        return live.status()

    @app.post("/api/render", summary="Portrait + speech -> MP4 (H.264 + AAC)",
              description="The same renderer as `facecast render`. `controls` is optional JSON: the keys of a "
                          "controls file (emotion, gaze, head_distance, head_offset, motion_scale, expression_scale, "
                          "blink_rate, seed, and keyframes). Renders one request at a time, at most "
                          f"{live.limits.waiting_renders} waiting (then 503 with Retry-After); closing the "
                          f"connection cancels the render. Audio: at most {live.limits.audio_s:g} s.",
              response_class=Response,
              responses={200: {"content": {"video/mp4": {}}, "description": "the video"},
                         400: {"description": "bad image, audio or controls"},
                         413: {"description": "too large (bytes, pixels or audio length)"},
                         503: {"description": "busy: too many renders waiting"}})
    async def render_api(request: Request,
                         image: UploadFile = File(..., description="portrait image (at most 15 MB)"),
                         audio: UploadFile = File(..., description="speech: wav, mp3, flac, ogg, m4a (at most 50 MB)"),
                         controls: str | None = Form(None, description='controls JSON, e.g. {"emotion": "happy:0.6"}'),
                         fps: float = Form(25.0, description="frame rate, 1-60")):
        renders = live.renders
        if not renders.admit():
            raise ApiError(503, f"busy: a render is running and {renders.max_waiting} are waiting; retry later",
                           {"Retry-After": str(RETRY_AFTER_S)})
        folder = Path(tempfile.mkdtemp(prefix="facecast-render-"))
        outcome = "failed"
        try:
            job = await prepare_render(folder, image, audio, controls, fps, live.limits)
            res = await run_render(request, renders, job, live.portraits.rig_for_render)
            outcome = "done"
        except RenderCancelled:
            outcome = "cancelled"
            raise ApiError(499, "the client closed the connection; the render was cancelled") from None
        finally:
            renders.leave(outcome)
            if outcome != "done":
                shutil.rmtree(folder, ignore_errors=True)
        return FileResponse(res.output, media_type="video/mp4", filename="facecast.mp4",
                            headers={"X-Facecast-Frames": str(res.frames), "X-Facecast-Duration": f"{res.duration_s:.3f}"},
                            background=BackgroundTask(shutil.rmtree, folder, True))

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket):
        await ws.accept()                    # the Guard has checked Host, token and Origin
        if len(live.sessions) >= live.max_sessions:
            await ws.send_text(json.dumps({"type": "error", "message": f"server busy: {live.max_sessions} live sessions already"}))
            await ws.close(code=1013)
            return
        s = LiveSession(live, ws, asyncio.get_running_loop())
        live.sessions[s.id] = s
        s.outbox.message({"type": "hello", "protocol": PROTOCOL_VERSION, "session": s.id, "sample_rate": SAMPLE_RATE,
                          "audio_formats": list(AUDIO_FORMATS), "default_image_id": live.default_id,
                          "portraits": [p.id for p in live.portraits.list()]})
        tasks = [asyncio.create_task(s.sender()), asyncio.create_task(s.stats_loop())]
        try:
            while True:
                recv = asyncio.create_task(ws.receive())
                done, _ = await asyncio.wait([recv, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:         # the sender failed: the socket is gone
                    recv.cancel()
                    break
                m = recv.result()
                if m["type"] == "websocket.disconnect":
                    break
                try:
                    if m.get("bytes") is not None:
                        await s.on_audio(m["bytes"])
                    elif m.get("text") is not None:
                        await s.on_text(m["text"])
                except MessageError as e:
                    s.errors += 1
                    s.outbox.message({"type": "error", "message": str(e)})
                except (WebSocketDisconnect, asyncio.CancelledError):
                    raise
                except Exception as e:  # noqa: BLE001 - answered, never a crash
                    s.errors += 1
                    s.outbox.message({"type": "error", "message": f"internal error: {type(e).__name__}: {e}"})
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            s.close()
            live.sessions.pop(s.id, None)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return _wrap(app, access or Access())


def _wrap(app, access: Access):
    """The app behind the `Guard`; `.state` and `.fastapi` stay reachable."""
    guarded = Guard(app, access, app.state.live.limits.body_limits())
    guarded.state = app.state
    guarded.fastapi = app
    return guarded


# ---- WebSocket transport -------------------------------------------------------------------------
def ws_protocol_class():
    """uvicorn's WebSocket protocol (websockets, sans-I/O; uvicorn is pinned), changed in two things.

    A message over `MAX_WS_MESSAGE` gets its close frame (1009, `WS_TOO_BIG_REASON`) to the client:
    uvicorn closes the socket at once, while the client is still sending that message, and the
    unread bytes turn the close into a TCP reset that swallows the close frame (the client sees the
    connection drop with no reason). Here the server half-closes, then reads and drops the rest for
    up to `WS_LINGER_S` (as its close timer, so that the app ending does not close it sooner).

    A handshake refused with an HTTP response (the `Guard`) counts as complete, so uvicorn does not
    log "ASGI callable returned without completing handshake" for it."""
    from uvicorn.protocols.websockets import websockets_sansio_impl
    from websockets.frames import Close, Frame, Opcode

    class Protocol(websockets_sansio_impl.WebSocketsSansIOProtocol):
        failed = False

        async def send(self, message) -> None:
            await super().send(message)
            if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
                self.handshake_complete = True

        def handle_parser_exception(self) -> None:
            self.conn.data_to_send()                 # the library's close frame: ours instead
            if self.failed:
                return                               # lingering: what still comes is dropped
            self.failed = True
            sent = self.conn.close_sent
            code = sent.code if sent is not None else 1002
            reason = WS_TOO_BIG_REASON if code == 1009 else (sent.reason if sent is not None else "")
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.transport.write(Frame(Opcode.CLOSE, Close(code, reason).serialize()).serialize(mask=False))
            self.close_sent = True
            self.stop_keepalive()
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.close_timer = self.loop.call_later(WS_LINGER_S, self.transport.close)
    return Protocol


def uvicorn_config(app, **kw):
    import uvicorn
    return uvicorn.Config(app, log_level="warning", ws=ws_protocol_class(), ws_max_size=MAX_WS_MESSAGE,
                          ws_per_message_deflate=False, **kw)


# ---- command line --------------------------------------------------------------------------------
def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    s = subparsers.add_parser("serve", help="live mode: a local web page where the portrait talks in real time")
    s.add_argument("image", nargs="?", help="portrait to offer first (the page also has samples and uploads)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    s.add_argument("--size", type=int, default=512, help="frame size in pixels, 256-1024 (default 512)")
    s.add_argument("--max-sessions", type=int, default=MAX_SESSIONS, help=f"live sessions at once (default {MAX_SESSIONS})")
    s.add_argument("--token", help=f"require this access token (default: ${TOKEN_ENV}); use it with --host beyond "
                                   "this machine. Clients send 'Authorization: Bearer TOKEN' or ?token=TOKEN")
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also accept requests addressed to this host name (e.g. the machine's LAN name); repeatable")
    return s


def cmd_serve(args) -> int:
    import uvicorn
    if not 0 <= args.port <= 65535:
        raise FacecastError(f"--port must be 0-65535, got {args.port}")
    if not 256 <= args.size <= 1024:
        raise FacecastError(f"--size must be between 256 and 1024, got {args.size}")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    access = Access(bound_host=args.host, token=token, extra_hosts=tuple(args.allow_host))
    if args.image is not None:
        from ..face.rig import build_rig
        if not Path(args.image).exists():
            raise FacecastError(f"image not found: {args.image}")
        rig = build_rig(args.image, size=args.size)       # fail now, with the usual message
        for n in rig.notices:
            print(f"facecast: {n}", file=sys.stderr)
    else:
        rig = None
    sock = bind_socket(args.host, args.port)
    app = create_app(args.size, args.image, max(1, args.max_sessions), default_rig=rig, access=access)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    query = f"?token={token}" if token else ""
    print(f"facecast: serving on http://{shown}:{port}/{query}  (API docs: http://{shown}:{port}/docs{query}; "
          "Ctrl+C to stop)", flush=True)
    if not _is_loopback(args.host) and not token:
        print(f"facecast: warning: listening beyond this machine with no access token; anyone who can reach it can "
              f"use it (set --token or ${TOKEN_ENV})", file=sys.stderr)
    server = uvicorn.Server(uvicorn_config(app))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, or a FacecastError saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise FacecastError(f"cannot resolve --host {host!r}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise FacecastError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerThread:
    """Runs the app on 127.0.0.1 in a background thread (tests, benchmarks):

        with ServerThread(create_app()) as srv:
            url = srv.url
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import uvicorn
        self.sock = bind_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.app = app
        self.server = uvicorn.Server(uvicorn_config(app))
        self.server.install_signal_handlers = lambda: None  # noqa: E731 - not the main thread
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="facecast-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class ClientRun:
    """What `run_client` saw: frames as (receive time, header, JPEG bytes), JSON messages, timings
    (time.perf_counter seconds)."""

    frames: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    first_sent: float | None = None
    first_frame_decoded: float | None = None
    sent_s: float = 0.0

    @property
    def start_latency_ms(self) -> float | None:
        """First audio chunk sent -> first frame received and decoded."""
        if self.first_sent is None or self.first_frame_decoded is None:
            return None
        return (self.first_frame_decoded - self.first_sent) * 1e3

    @property
    def fps(self) -> float:
        """Frames received per second between the first and the last frame."""
        if len(self.frames) < 2:
            return 0.0
        return (len(self.frames) - 1) / max(self.frames[-1][0] - self.frames[0][0], 1e-9)

    def lags_ms(self) -> np.ndarray:
        """Per frame: received time - when its audio time was sent (real-time pacing)."""
        return np.array([(r - self.first_sent - h["t"]) * 1e3 for r, h, _ in self.frames])

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m.get("type") == kind]


def run_client(ws_url: str, audio: np.ndarray, image_id: str = "hopper", controls: dict | None = None,
               fps: float = 25.0, chunk_s: float = 0.02, realtime: bool = True, stop: bool = True,
               timeout: float = 60.0, on_ready=None, during=None) -> ClientRun:
    """A Python client of the live WebSocket: start a session, send `audio` (16 kHz float32) in
    chunks (at real-time pace unless `realtime` is False), collect the frames until `ended`.
    `during(ws, seconds_sent)` is called from the sending thread after every chunk."""
    import cv2
    from websockets.sync.client import connect
    run = ClientRun()
    x = np.asarray(audio, np.float32).reshape(-1)
    n = max(1, int(round(chunk_s * SAMPLE_RATE)))
    with connect(ws_url, max_size=None, open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        run.messages.append(hello)
        start = {"type": "start", "image_id": image_id, "fps": fps}
        if controls is not None:
            start["controls"] = controls
        ws.send(json.dumps(start))
        while True:
            m = ws.recv(timeout=30)
            if isinstance(m, str):
                d = json.loads(m)
                run.messages.append(d)
                if d["type"] == "error":
                    raise RuntimeError(d["message"])
                if d["type"] == "ready":
                    break
        if on_ready:
            on_ready(ws)
        failed: list[BaseException] = []

        def feed():
            try:
                t0 = time.perf_counter()
                for k, i in enumerate(range(0, len(x), n)):
                    if realtime:
                        delay = t0 + k * chunk_s - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                    if run.first_sent is None:
                        run.first_sent = time.perf_counter()
                    ws.send(x[i:i + n].tobytes())
                    run.sent_s = (i + n) / SAMPLE_RATE
                    if during:
                        during(ws, run.sent_s)
                if stop:
                    ws.send(json.dumps({"type": "stop"}))
            except BaseException as e:  # noqa: BLE001 - reported below
                failed.append(e)
        th = threading.Thread(target=feed, name="facecast-client-feed", daemon=True)
        th.start()
        deadline = time.perf_counter() + timeout
        try:
            while time.perf_counter() < deadline:
                try:
                    m = ws.recv(timeout=max(0.01, deadline - time.perf_counter()) if stop else 1.0)
                except TimeoutError:
                    if not stop and not th.is_alive():
                        break
                    continue
                now = time.perf_counter()
                if isinstance(m, str):
                    d = json.loads(m)
                    run.messages.append(d)
                    if d["type"] == "ended":
                        break
                else:
                    h, jpg = parse_frame(m)
                    if not run.frames:
                        img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
                        run.first_frame_decoded = time.perf_counter() if img is not None else None
                    run.frames.append((now, h, jpg))
        finally:
            th.join(timeout=5)
    if failed:
        raise failed[0]
    return run
