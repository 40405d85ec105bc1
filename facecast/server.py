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
"""
import argparse
import asyncio
import collections
import concurrent.futures
import ipaddress
import json
import math
import queue
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from .controls import Controls, ControlTrack
from .errors import FacecastError

PROTOCOL_VERSION = 1
SAMPLE_RATE = 16000
LIVE_LOOKAHEAD_S = 0.05        # smallest look-ahead that keeps the default lip lead (0.03 s) exact
GLIDE_S = 0.3                  # controls changed mid-stream cross-fade over this long
MAX_FRAME_DELAY_S = 0.08       # a frame later than this is skipped when a newer one is ready
OUTBOX_FRAMES = 2              # encoded frames waiting for the socket, at most
MAX_CHUNK_S = 10.0             # largest audio message
AUDIO_QUEUE = 256              # audio messages waiting for the worker, at most (then the socket waits)
MAX_UPLOAD_BYTES = 15 * 1024 * 1024
MAX_AUDIO_BYTES = 50 * 1024 * 1024
MAX_SESSIONS = 4
MAX_UPLOADED_PORTRAITS = 8          # kept in memory, oldest dropped first
MAX_UPLOAD_PIXELS = 60_000_000
MAX_MESSAGES = 500                  # JSON messages waiting for a client that does not read
FRAME_HEADER = struct.Struct("<4sIddff")
FRAME_MAGIC = b"FCF1"
STATIC_DIR = Path(__file__).parent / "static"
AUDIO_FORMATS = {"f32le": "<f4", "s16le": "<i2"}
CONTROL_KEYS = {f.name for f in fields(Controls)}


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
        from .pipeline import Animator
        from .rig import build_rig
        from .tracking import FaceTracker
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
        from .rig import build_rig
        from .tracking import FaceTracker

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
    from .motion import MotionFrame
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
        return replace(base or Controls(), **vals)
    except FacecastError as e:
        raise MessageError(str(e)) from None
    except (TypeError, ValueError) as e:
        raise MessageError(f"bad control value: {e}") from None


def _num(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MessageError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def controls_json(c: Controls) -> dict:
    from .controls import EMOTIONS
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
        from .generator import MotionGenerator
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
            self._pending_controls = replace(c, seed=self.seed)
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
        self.gen.track = ControlTrack(c, [(t, replace(cur, seed=self.seed)), (t + GLIDE_S, c)])

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


# ---- the app -----------------------------------------------------------------------------------
class BodyTooLarge(Exception):
    pass


class LimitBody:
    """ASGI middleware: refuse request bodies over a limit per path (before the multipart parser
    spools them), with a 413 JSON error."""

    def __init__(self, app, limits: dict[str, int]):
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send):
        limit = self.limits.get(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        started = False

        async def send2(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def too_large():
            body = json.dumps({"error": f"the upload is too large (at most {limit // (1024 * 1024)} MB)"}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        if declared > limit:
            # read (and discard) what the client is sending, so it gets to read the answer
            drained = 0
            while declared <= 8 * limit and drained <= declared:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            return await too_large()
        seen = 0

        async def receive2():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message
        try:
            await self.app(scope, receive2, send2)
        except BodyTooLarge:
            if not started:
                await too_large()


class LiveServer:
    """The state behind one app: portraits and live sessions."""

    def __init__(self, size: int = 512, default_image=None, max_sessions: int = MAX_SESSIONS, default_rig=None):
        self.portraits = PortraitStore(size)
        self.sessions: dict[str, LiveSession] = {}
        self.max_sessions = max_sessions
        self.render_lock = threading.Semaphore(1)
        for pid, name, src in _sample_portraits():
            self.portraits.add(Portrait(pid, name, src, builtin=True))
        self.default_id = "hopper"
        if default_image is not None:
            name = Path(default_image).name if not isinstance(default_image, np.ndarray) else "portrait"
            p = self.portraits.add(Portrait("default", name, default_image, builtin=True))
            if default_rig is not None:
                from .pipeline import Animator
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
                "portraits": len(self.portraits.list())}


API_DESCRIPTION = """
One portrait photo + speech -> a talking face, on a CPU.

* **Page**: `/` - pick or upload a portrait, talk into the microphone or play an audio file, and
  see the face talk live.
* **Programs**: `POST /api/render` (a portrait + an audio file -> an MP4), `POST /api/portrait`
  (upload a portrait for live sessions), `GET /api/portraits`.
* **Live**: WebSocket `/ws` (not shown in this schema): text messages `start`, `controls`, `stop`,
  `ping`; binary audio (16 kHz mono float32 or int16, little-endian); binary frames back (32-byte
  header `<4sIddff`: magic `FCF1`, frame index, audio time s, server send time, server latency ms,
  render ms; then JPEG) and JSON `ready`, `stats`, `error`, `ended` messages. See `facecast/server.py`.

Errors are JSON `{"error": "..."}` with status 400 (bad input), 404, 413 (too large) or 503 (busy).
"""


def create_app(size: int = 512, default_image=None, max_sessions: int = MAX_SESSIONS, warm: bool = True,
               default_rig=None):
    """The FastAPI app: page, HTTP API and WebSocket. `app.state.live` is the `LiveServer`.

    default_image: a portrait (path or array) offered first; default_rig: its rig, if already built."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, File, Form, UploadFile, WebSocket, WebSocketDisconnect
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool

    live = LiveServer(size, default_image, max_sessions, default_rig)

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

    def err(status: int, message: str):
        return JSONResponse({"error": message}, status_code=status)

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
            return err(404, f"no portrait {image_id!r}")
        p = await live.portraits.ready(p)
        if p.thumbnail is None:
            return err(400, p.error or "no image")
        return Response(p.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/portrait", summary="Upload a portrait for live sessions",
              description=f"An image file (JPEG, PNG, WebP, TIFF, BMP; at most {MAX_UPLOAD_BYTES // 2**20} MB) "
                          "with a clearly visible face. Returns its `image_id` for the WebSocket `start` message.",
              responses={400: {"description": "not an image, or no usable face"}, 413: {"description": "too large"}})
    async def upload_portrait(image: UploadFile = File(..., description="portrait photo, painting or drawing")):
        data = await image.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            return err(413, f"the upload is too large (at most {MAX_UPLOAD_BYTES // 2**20} MB)")
        if not data:
            return err(400, "the upload is empty")
        try:
            arr = await run_in_threadpool(_decode_image, data, image.filename or "upload")
        except FacecastError as e:
            return err(400, str(e))
        name = Path(image.filename or "portrait").name[:80]
        p = live.portraits.add(Portrait(uuid.uuid4().hex[:12], name, arr))
        p = await live.portraits.ready(p)
        if p.error:
            live.portraits._items.pop(p.id, None)
            return err(400, p.error)
        return p.info()

    @app.get("/api/status", summary="Live sessions and worker threads now running")
    async def status() -> dict:
        return live.status()

    @app.post("/api/render", summary="Portrait + speech -> MP4 (H.264 + AAC)",
              description="The same renderer as `facecast render`. `controls` is optional JSON: the keys of a "
                          "controls file (emotion, gaze, head_distance, head_offset, motion_scale, expression_scale, "
                          "blink_rate, seed, and keyframes). Renders one request at a time.",
              response_class=Response,
              responses={200: {"content": {"video/mp4": {}}, "description": "the video"},
                         400: {"description": "bad image, audio or controls"}, 413: {"description": "too large"}})
    async def render_api(image: UploadFile = File(..., description="portrait image (at most 15 MB)"),
                         audio: UploadFile = File(..., description="speech: wav, mp3, flac, ogg, m4a (at most 50 MB)"),
                         controls: str | None = Form(None, description='controls JSON, e.g. {"emotion": "happy:0.6"}'),
                         fps: float = Form(25.0, description="frame rate, 1-60")):
        if not 1 <= fps <= 60:
            return err(400, "fps must be between 1 and 60")
        track = None
        if controls:
            try:
                track = ControlTrack.from_dict(json.loads(controls))
            except json.JSONDecodeError as e:
                return err(400, f"controls is not valid JSON: {e}")
            except FacecastError as e:
                return err(400, str(e))
        tmp = Path(tempfile.mkdtemp(prefix="facecast-render-"))
        try:
            ipath = tmp / ("image" + _safe_suffix(image.filename, ".jpg"))
            apath = tmp / ("audio" + _safe_suffix(audio.filename, ".wav"))
            for up, path, limit in ((image, ipath, MAX_UPLOAD_BYTES), (audio, apath, MAX_AUDIO_BYTES)):
                data = await up.read(limit + 1)
                if len(data) > limit:
                    shutil.rmtree(tmp, ignore_errors=True)
                    return err(413, f"{path.stem} is too large (at most {limit // 2**20} MB)")
                path.write_bytes(data)
            out = tmp / "out.mp4"

            def job():
                from .audio import load_audio_info
                from .pipeline import Animator
                load_audio_info(apath)
                rig = live.portraits.rig_for_render(str(ipath)).result()
                with live.render_lock:
                    return Animator(str(ipath), rig=rig).render(str(apath), out, fps=fps, controls=track)
            res = await run_in_threadpool(job)
        except FacecastError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            return err(400, str(e))
        except Exception:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return FileResponse(res.output, media_type="video/mp4", filename="facecast.mp4",
                            headers={"X-Facecast-Frames": str(res.frames), "X-Facecast-Duration": f"{res.duration_s:.3f}"},
                            background=BackgroundTask(shutil.rmtree, tmp, True))

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket):
        if not _same_origin(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
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
    return _wrap(app)


def _wrap(app):
    """The app with the upload-size guard in front; `.state` and `.openapi` stay reachable."""
    guarded = LimitBody(app, {"/api/portrait": MAX_UPLOAD_BYTES + 64 * 1024,
                              "/api/render": MAX_UPLOAD_BYTES + MAX_AUDIO_BYTES + 64 * 1024})
    guarded.state = app.state
    guarded.fastapi = app
    return guarded


def _decode_image(data: bytes, name: str) -> np.ndarray:
    from PIL import Image

    from .image_io import load_image
    with tempfile.TemporaryDirectory(prefix="facecast-upload-") as d:
        p = Path(d) / ("upload" + _safe_suffix(name, ""))
        p.write_bytes(data)
        try:
            with Image.open(p) as im:
                w, h = im.size
            if w * h > MAX_UPLOAD_PIXELS:
                raise FacecastError(f"{name!r} is {w}x{h} pixels; upload at most {MAX_UPLOAD_PIXELS // 1_000_000} megapixels")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            pass                                     # load_image says what is wrong
        try:
            return load_image(p)
        except FacecastError as e:
            raise FacecastError(str(e).replace(str(p), repr(name))) from None


def _safe_suffix(name: str | None, default: str) -> str:
    suf = Path(name or "").suffix.lower()
    return suf if suf[1:].isalnum() and len(suf) <= 6 else default


def _same_origin(ws) -> bool:
    """Refuse WebSocket connections opened by other web sites (cross-site WebSocket hijacking);
    programs that send no Origin are let in."""
    origin = ws.headers.get("origin")
    if not origin:
        return True
    from urllib.parse import urlsplit
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


# ---- command line --------------------------------------------------------------------------------
def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    s = subparsers.add_parser("serve", help="live mode: a local web page where the portrait talks in real time")
    s.add_argument("image", nargs="?", help="portrait to offer first (the page also has samples and uploads)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    s.add_argument("--size", type=int, default=512, help="frame size in pixels, 256-1024 (default 512)")
    s.add_argument("--max-sessions", type=int, default=MAX_SESSIONS, help=f"live sessions at once (default {MAX_SESSIONS})")
    return s


def cmd_serve(args) -> int:
    import uvicorn
    if not 0 <= args.port <= 65535:
        raise FacecastError(f"--port must be 0-65535, got {args.port}")
    if not 256 <= args.size <= 1024:
        raise FacecastError(f"--size must be between 256 and 1024, got {args.size}")
    if args.image is not None:
        from .rig import build_rig
        if not Path(args.image).exists():
            raise FacecastError(f"image not found: {args.image}")
        rig = build_rig(args.image, size=args.size)       # fail now, with the usual message
        for n in rig.notices:
            print(f"facecast: {n}", file=sys.stderr)
    else:
        rig = None
    sock = bind_socket(args.host, args.port)
    app = create_app(args.size, args.image, max(1, args.max_sessions), default_rig=rig)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"facecast: serving on http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs; Ctrl+C to stop)", flush=True)
    if not _is_loopback(args.host):
        print("facecast: warning: listening beyond this machine; anyone who can reach it can use it (no login)",
              file=sys.stderr)
    config = uvicorn.Config(app, log_level="warning", ws_max_size=int(MAX_CHUNK_S * SAMPLE_RATE * 4 + 1024),
                            ws_per_message_deflate=False)
    server = uvicorn.Server(config)
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
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_per_message_deflate=False,
                                                    ws_max_size=int(MAX_CHUNK_S * SAMPLE_RATE * 4 + 1024)))
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
