"""Live sessions: one per WebSocket connection (`LiveSession`: messages in, frames and JSON out
through its `Outbox`), and one clip at a time per session (`LiveWorker`: audio through the
portrait's `Animator.stream`, frames rendered on its own thread, the late ones skipped).
The protocol is described in `protocol`."""
import asyncio
import collections
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import FacecastError
from ..motion.controls import Controls
from .portraits import Portrait
from .protocol import (
    AUDIO_FORMATS,
    LIVE_LOOKAHEAD_S,
    PROTOCOL_VERSION,
    MessageError,
    controls_body,
    decode_audio,
    pack_frame,
    parse_message,
    parse_start,
)

MAX_FRAME_DELAY_S = 0.08       # a frame later than this is skipped when a newer one is ready
OUTBOX_FRAMES = 2              # encoded frames waiting for the socket, at most
AUDIO_QUEUE = 256              # audio messages waiting for the worker, at most (then the socket waits)
MAX_SESSIONS = 4
MAX_MESSAGES = 500                  # JSON messages waiting for a client that does not read


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
    """One session's clip: audio in order through the portrait's `FrameStream` (its motion
    generator, look-ahead `LIVE_LOOKAHEAD_S`), frames rendered on the worker's own thread, the late
    ones skipped. Created by `start`, ended by `stop` or `close`."""

    _STOP = object()
    _CLOSE = object()

    def __init__(self, session: "LiveSession", portrait: Portrait, controls: Controls, fps: float,
                 fmt: str, quality: int):
        self.session = session
        self.portrait = portrait
        self.fps = fps
        self.audio_format = fmt
        self.quality = quality
        self.controls = controls              # the latest controls asked for (the base of the next change)
        self.stream = portrait.animator.stream(controls, fps, lookahead_s=LIVE_LOOKAHEAD_S)
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
        self.thread = threading.Thread(target=self._run, name=f"facecast-live-{session.id}", daemon=True)
        self.thread.start()

    # -- loop thread -----------------------------------------------------------------------------
    def set_controls(self, c: Controls) -> None:
        """Glide to `c` from the next frame the worker generates (the stream keeps the start's seed)."""
        with self._lock:
            self._pending_controls = c
        self.controls = c

    def put_audio(self, x: np.ndarray, arrived: float) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = arrived
        self.samples_in += len(x)
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
        if c is not None:
            self.stream.set_controls(c)

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
                        motion = self.stream.flush_motion()
                        ended = True
                    else:
                        motion = self.stream.push_motion(x)
                    first = self.stream.frames_out - len(motion)
                    for k, m in enumerate(motion):
                        pending.append(_Ready(m, first + k, arrived))
                if pending:
                    self._render_next(pending)
                if ended and not pending:
                    self.session.outbox.message_threadsafe(
                        {"type": "ended", "frames": self.stream.frames_out, "frames_rendered": self.frames_made,
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
        frame = self.stream.frame(r.motion)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        t1 = time.perf_counter()
        self.render_ms.append((t1 - t0) * 1e3)
        self.frames_made += 1
        if ok:
            self.session.outbox.frame_threadsafe((r.index, r.index / self.fps, r.ready_at, (t1 - t0) * 1e3,
                                                  jpg.tobytes(), self))


class LiveSession:
    """One WebSocket connection. `server` is the app's state (`app.LiveServer`): its portraits,
    default portrait and sessions."""

    def __init__(self, server: Any, ws, loop: asyncio.AbstractEventLoop):
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
                await self.ws.send_bytes(pack_frame(index, t, time.time(), server_ms, render_ms, jpg))
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
        msg = parse_message(text)
        kind = msg["type"]
        if kind == "start":
            await self.start(msg)
        elif kind == "controls":
            if self.worker is None:
                raise MessageError("send start before controls")
            c = Controls.from_dict(controls_body(msg), self.worker.controls)
            self.worker.set_controls(c)
            self.outbox.message({"type": "controls", "controls": c.to_dict()})
        elif kind == "stop":
            if self.worker is None:
                raise MessageError("nothing to stop: send start first")
            self.worker.stop()
        elif kind == "ping":
            self.outbox.message({"type": "pong", "t": msg.get("t"), "server_time": time.time()})
        else:
            raise MessageError(f"unknown message type {kind!r}; use start, controls, stop or ping")

    async def start(self, msg: dict) -> None:
        s = parse_start(msg, self.server.default_id)
        p = self.server.portraits.find(s.image_id)
        if p is None:
            raise MessageError(f"no portrait {s.image_id!r}; upload one (POST /api/portrait) or pick one of "
                               "GET /api/portraits")
        p = await self.server.portraits.ready(p)
        if p.error:
            raise MessageError(f"portrait {s.image_id!r} cannot be animated: {p.error}")
        if self.worker is not None:
            self.worker.close()
        self.worker = LiveWorker(self, p, s.controls, s.fps, s.audio_format, s.quality)
        self.start_latency_ms = None
        self.sent_times.clear()
        self.outbox.message({"type": "ready", "image_id": p.id, "size": p.animator.rig.size, "fps": s.fps,
                             "sample_rate": SAMPLE_RATE, "audio_format": s.audio_format,
                             "lookahead_ms": LIVE_LOOKAHEAD_S * 1e3, "mouth_box": p.mouth_box,
                             "controls": s.controls.to_dict()})

    async def on_audio(self, data: bytes) -> None:
        arrived = time.perf_counter()
        w = self.worker
        if w is None or w.closed:
            raise MessageError("send start before audio")
        x = decode_audio(data, w.audio_format)
        while w.audio.full() and not w.closed:       # back-pressure: stop reading the socket
            await asyncio.sleep(0.005)
        if w.closed:
            return
        w.put_audio(x, arrived)

    def close(self) -> None:
        self.outbox.closed = True
        if self.worker is not None:
            self.worker.close()


async def run_session(server: Any, ws) -> None:
    """Serve one accepted WebSocket until it closes: refused (1013) when `server.max_sessions` are
    running, else a `LiveSession` registered in `server.sessions` meanwhile."""
    from fastapi import WebSocketDisconnect
    if len(server.sessions) >= server.max_sessions:
        await ws.send_text(json.dumps({"type": "error",
                                       "message": f"server busy: {server.max_sessions} live sessions already"}))
        await ws.close(code=1013)
        return
    s = LiveSession(server, ws, asyncio.get_running_loop())
    server.sessions[s.id] = s
    s.outbox.message({"type": "hello", "protocol": PROTOCOL_VERSION, "session": s.id, "sample_rate": SAMPLE_RATE,
                      "audio_formats": list(AUDIO_FORMATS), "default_image_id": server.default_id,
                      "portraits": [p.id for p in server.portraits.list()]})
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
            except FacecastError as e:               # MessageError, bad controls
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
        server.sessions.pop(s.id, None)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
