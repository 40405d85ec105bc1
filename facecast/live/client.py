"""A Python client of the live WebSocket (`run_client`), for tests and benchmarks: it starts a
session, sends audio in chunks at real-time pace, and records frames, messages and timings."""
import json
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..audio.io import SAMPLE_RATE
from .protocol import parse_frame


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
