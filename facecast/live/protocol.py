"""The live WebSocket protocol: message and frame formats, their limits, and the checks that turn a
client's messages (JSON settings, binary audio chunks) into values or a `MessageError`.

WebSocket protocol (version 1), one session per connection:

client -> server
  text  {"type": "start", "image_id": ID, "controls": {...}, "fps": 25, "audio_format": "f32le", "quality": 80}
        controls: any of emotion ('happy:0.7' or {"happy": 0.5}), gaze [yaw, pitch], head_distance,
        head_offset [x, y], motion_scale, expression_scale, blink_rate, seed (checked by
        `Controls.from_dict`; `ready` and `controls` echo them as `Controls.to_dict`). Starting again
        restarts the session (new clip) with the new settings.
  text  {"type": "controls", "controls": {...}}   changes controls while talking (glides over
        `pipeline.GLIDE_S`, 0.3 s; the seed stays that of the start)
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
  text  {"type": "ended", ...}      after stop: frames (motion frames generated), frames_rendered,
        frames_skipped, audio_s

Real time: the audio is analysed in order as it arrives; frame i (time i / fps) is ready once the
audio reaches i / fps + `LIVE_LOOKAHEAD_S`, the motion generator's look-ahead. The motion is the
one an offline render makes of the same audio with the same look-ahead, controls and seed
(`Animator.render(..., lookahead_s=LIVE_LOOKAHEAD_S)`), frame for frame, however the audio is
chunked (as long as no `controls` message changes them mid-clip). It is not quite `facecast
render`'s motion: that uses the default look-ahead (0.12 s), which lets the generator judge a
loudness valley on more of the audio after it. One worker thread per session (`session.LiveWorker`)
renders the ready frames in order, but a frame that is more than `MAX_FRAME_DELAY_S` late while a
newer one is ready is skipped (the generator still advances), and at most `OUTBOX_FRAMES` encoded
frames wait for the socket: when the CPU or the network falls behind, frames are dropped, never
queued.
"""
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import FacecastError
from ..motion.controls import Controls

PROTOCOL_VERSION = 1
LIVE_LOOKAHEAD_S = 0.05        # smallest look-ahead that keeps the default lip lead (0.03 s) exact
MAX_CHUNK_S = 10.0             # largest audio message
MAX_WS_MESSAGE = int(MAX_CHUNK_S * SAMPLE_RATE * 4 + 1024)     # bytes; larger closes the socket (1009)
WS_TOO_BIG_REASON = f"message too big: at most {MAX_WS_MESSAGE} bytes ({MAX_CHUNK_S:g} s of audio)"
FRAME_HEADER = struct.Struct("<4sIddff")
FRAME_MAGIC = b"FCF1"
AUDIO_FORMATS = {"f32le": "<f4", "s16le": "<i2"}
SESSION_FPS_RANGE = (10, 30)           # frames per second a session may ask for
QUALITY_RANGE = (30, 95)       # JPEG quality a session may ask for


class MessageError(FacecastError):
    """A client message that is malformed or not allowed now. The session answers it, and any
    other `FacecastError` its message raised (bad controls: `Controls.from_dict`), with an
    {"type": "error"} message and goes on."""


def pack_frame(index: int, t: float, sent: float, server_ms: float, render_ms: float, jpg: bytes) -> bytes:
    """A binary frame message: the `FRAME_HEADER`, then the JPEG bytes."""
    return FRAME_HEADER.pack(FRAME_MAGIC, index, t, sent, server_ms, render_ms) + jpg


def parse_frame(data: bytes) -> tuple[dict, bytes]:
    """A binary frame message -> (header dict, JPEG bytes). For clients written in Python."""
    magic, index, t, sent, server_ms, render_ms = FRAME_HEADER.unpack_from(data)
    if magic != FRAME_MAGIC:
        raise ValueError("not a facecast frame")
    return ({"index": index, "t": t, "sent": sent, "server_ms": server_ms, "render_ms": render_ms},
            bytes(data[FRAME_HEADER.size:]))


def parse_message(text: str) -> dict:
    """A text message -> its JSON object, which has a string "type"; else MessageError."""
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MessageError("a text message must be JSON") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise MessageError('a message is a JSON object with a "type"')
    return msg


@dataclass(frozen=True)
class Start:
    """The settings of a `start` message, checked."""

    image_id: str
    fps: float
    audio_format: str
    quality: int
    controls: Controls


def parse_start(msg: dict, default_image_id: str) -> Start:
    """A `start` message -> `Start`; MessageError (a FacecastError from `Controls.from_dict` for the
    controls) when a setting is malformed or out of range."""
    pid = msg.get("image_id", default_image_id)
    if not isinstance(pid, str):
        raise MessageError("image_id must be a string")
    fps = msg.get("fps", 25)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not SESSION_FPS_RANGE[0] <= fps <= SESSION_FPS_RANGE[1]:
        raise MessageError(f"fps must be a number from {SESSION_FPS_RANGE[0]} to {SESSION_FPS_RANGE[1]}")
    fmt = msg.get("audio_format", "f32le")
    if fmt not in AUDIO_FORMATS:
        raise MessageError(f"audio_format must be one of {', '.join(AUDIO_FORMATS)}")
    quality = msg.get("quality", 80)
    lo, hi = QUALITY_RANGE
    if isinstance(quality, bool) or not isinstance(quality, int) or not lo <= quality <= hi:
        raise MessageError(f"quality must be an integer from {lo} to {hi}")
    return Start(pid, float(fps), fmt, quality, Controls.from_dict(msg.get("controls")))


def controls_body(msg: dict) -> Any:
    """The controls of a `controls` message: its "controls" object, or (older clients) its other keys."""
    return msg.get("controls", {k: v for k, v in msg.items() if k != "type"})


def decode_audio(data: bytes, audio_format: str) -> np.ndarray:
    """A binary audio message in `audio_format` -> float32 samples in [-1, 1] (non-finite values
    made finite); MessageError when it is not whole samples or longer than `MAX_CHUNK_S`."""
    dt = np.dtype(AUDIO_FORMATS[audio_format])
    if len(data) == 0 or len(data) % dt.itemsize:
        raise MessageError(f"audio chunks are whole {dt.itemsize}-byte samples; got {len(data)} bytes")
    if len(data) // dt.itemsize > MAX_CHUNK_S * SAMPLE_RATE:
        raise MessageError(f"an audio chunk holds at most {MAX_CHUNK_S:g} s")
    x = np.frombuffer(data, dt)
    x = x.astype(np.float32) * (1.0 / 32768.0) if dt.kind == "i" else x.astype(np.float32)
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(x, -1.0, 1.0, out=x)
    return x
