"""The web app of live mode (`create_app`): the page, the HTTP API's routes and the WebSocket
endpoint, over one `LiveServer` (portraits, live sessions, render queue), behind the `Guard`.

`facecast serve [IMAGE] [--host 127.0.0.1] [--port 8000]` (`serve`) serves the page
(`facecast/live/static/`), a WebSocket at `/ws` for live sessions (`protocol`, `session`) and an
HTTP API for programs (`/docs`, `/openapi.json`).

HTTP API (for programs; schema at `/docs`): `POST /api/render` (portrait + audio file -> MP4),
`POST /api/verify` (a video or image -> is it a facecast video: the watermark, tags, C2PA),
`POST /api/portrait` (a portrait for live sessions), `GET /api/portraits`, `GET /api/status`.
Every frame the server makes (live sessions and renders) carries the watermark: they are made by
`Animator.frame`, and nothing here can turn it off.
Every error answer is JSON `{"error": "<message>"}`, whatever refused the request (a check here,
FastAPI's validation, an unknown path or method, the `Guard`): 400 bad input or Host header, 401 no
or wrong access token, 403 cross-site, 404, 405, 413 too large (bytes, pixels or seconds), 503 busy
(with Retry-After). Messages name the upload ("the audio upload ..."), never a path on the server.
A render that succeeds with a `FacecastWarning` (e.g. a truncated audio upload: the readable part
is used) says so in its `X-Facecast-Warning` header. Who may use it and how much one request may
ask for: see `access`.
"""
import asyncio
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import numpy as np

from ..errors import FacecastError
from .access import (
    FORM_OVERHEAD_BYTES,
    MAX_AUDIO_BYTES,
    MAX_AUDIO_S,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    MAX_WAITING_RENDERS,
    Access,
    ApiError,
    Guard,
    Limits,
    error_response,
    size_text,
)
from .portraits import Portrait, PortraitStore, sample_portraits
from .renders import RETRY_AFTER_S, RenderCancelled, RenderQueue, prepare_render, run_render
from .session import MAX_SESSIONS, LiveSession, run_session
from .uploads import check_image_header, decode_image, read_upload, safe_suffix, scrub_paths

STATIC_DIR = Path(__file__).parent / "static"
WARNING_HEADER = "X-Facecast-Warning"


class VerifyGate:
    """`POST /api/verify` checks run one at a time (each decodes a whole video), at most
    `max_waiting` wait behind it; more get 503."""

    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self.admitted = 0
        self.slot = asyncio.Lock()

    def admit(self) -> bool:
        if self.admitted > self.max_waiting:
            return False
        self.admitted += 1
        return True

    def leave(self) -> None:
        self.admitted -= 1


class LiveServer:
    """The state behind one app: portraits, live sessions and the render queue."""

    def __init__(self, size: int = 512, default_image=None, max_sessions: int = MAX_SESSIONS, default_rig=None,
                 limits: Limits | None = None):
        self.portraits = PortraitStore(size)
        self.sessions: dict[str, LiveSession] = {}
        self.max_sessions = max_sessions
        self.limits = limits or Limits()
        self.renders = RenderQueue(self.limits.waiting_renders)
        self.verifies = VerifyGate(self.limits.waiting_renders)
        for pid, name, src in sample_portraits():
            self.portraits.add(Portrait(pid, name, src, builtin=True))
        self.default_id = "hopper"
        if default_image is not None:
            name = Path(default_image).name if not isinstance(default_image, np.ndarray) else "portrait"
            p = self.portraits.add(Portrait("default", name, default_image, builtin=True))
            if default_rig is not None:
                from ..pipeline import Animator
                PortraitStore.finish(p, Animator(default_image, rig=default_rig))
            self.portraits.put_first("default")
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
* **Programs**: `POST /api/render` (a portrait + an audio file -> an MP4), `POST /api/verify` (a
  video or image -> whether it carries facecast's watermark, with its payload, the container's
  tags and any C2PA manifest), `POST /api/portrait` (upload a portrait for live sessions),
  `GET /api/portraits`, `GET /api/status`.
* **Provenance**: every frame this server makes, live or rendered, carries an invisible watermark
  with a new random id per session or render; see `/api/verify`.
* **Live**: WebSocket `/ws` (not shown in this schema): text messages `start`, `controls`, `stop`,
  `ping`; binary audio (16 kHz mono float32 or int16, little-endian); binary frames back (32-byte
  header `<4sIddff`: magic `FCF1`, frame index, audio time s, server send time, server latency ms,
  render ms; then JPEG) and JSON `ready`, `stats`, `error`, `ended` messages. See
  `facecast/live/protocol.py`.

Limits: an image upload {size_text(MAX_UPLOAD_BYTES)} and {MAX_UPLOAD_PIXELS / 1e6:g} megapixels, an audio upload
{size_text(MAX_AUDIO_BYTES)} and {MAX_AUDIO_S:g} s. Renders run one at a time, at most {MAX_WAITING_RENDERS} waiting;
a render whose client disconnects is cancelled.

Errors are JSON `{{"error": "..."}}` with status 400 (bad input or Host header), 401 (access token
needed), 403 (cross-site request), 404, 405, 413 (too large: bytes, pixels or seconds) or 503
(busy; see Retry-After). A render that succeeds with a warning (e.g. a truncated audio upload: the
readable part is used) says so in its `{WARNING_HEADER}` header.
"""


def create_app(size: int = 512, default_image=None, max_sessions: int = MAX_SESSIONS, warm: bool = True,
               default_rig=None, *, limits: Limits | None = None, access: Access | None = None):
    """The app: page, HTTP API and WebSocket, behind the `Guard`. `app.state.live` is the `LiveServer`.

    default_image: a portrait (path or array) offered first; default_rig: its rig, if already built.
    limits: the HTTP API's `Limits`; access: who may use it (`Access`: bound host, token)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, File, Form, UploadFile, WebSocket
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
              description=f"An image file (JPEG, PNG, WebP, TIFF, BMP; at most {size_text(live.limits.upload_bytes)} "
                          f"and {live.limits.upload_pixels / 1e6:g} megapixels) with a clearly visible face. Returns "
                          "its `image_id` for the WebSocket `start` message.",
              responses={400: {"description": "not an image, or no usable face"}, 413: {"description": "too large"}})
    async def upload_portrait(image: UploadFile = File(..., description="portrait photo, painting or drawing")):
        data = await read_upload(image, "image", live.limits.upload_bytes)
        check_image_header(data, live.limits.upload_pixels)
        arr = await run_in_threadpool(decode_image, data, image.filename)
        name = Path(image.filename or "portrait").name[:80]
        p = live.portraits.add(Portrait(uuid.uuid4().hex[:12], name, arr))
        p = await live.portraits.ready(p)
        if p.error:
            live.portraits.remove(p.id)
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
                          f"connection cancels the render. Audio: at most {live.limits.audio_s:g} s. A warning "
                          f"(e.g. a truncated audio upload: the readable part is used) comes in the "
                          f"`{WARNING_HEADER}` header.",
              response_class=Response,
              responses={200: {"content": {"video/mp4": {}}, "description": "the video",
                               "headers": {WARNING_HEADER: {"description": "what went wrong but did not stop the "
                                                                           "render, if anything",
                                                            "schema": {"type": "string"}}}},
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
        headers = {"X-Facecast-Frames": str(res.frames), "X-Facecast-Duration": f"{res.duration_s:.3f}"}
        if job.warnings:
            headers[WARNING_HEADER] = header_text(" | ".join(job.warnings))
        return FileResponse(res.output, media_type="video/mp4", filename="facecast.mp4", headers=headers,
                            background=BackgroundTask(shutil.rmtree, folder, True))

    @app.post("/api/verify", summary="Is this a facecast video? The watermark, container tags and C2PA manifest",
              description="A video (mp4, webm, mov, mkv, ...) or an image (a frame or screenshot), at most "
                          f"{size_text(live.limits.audio_bytes)}. The answer is the report of `facecast verify "
                          "--json`: `found`, `watermark` (found, confidence, score, payload: format version, "
                          "facecast version, video id; scale; frames and 2-second windows read), `metadata` "
                          "(the container's facecast tags) and `c2pa` (present, valid, trusted). Videos are "
                          "read for their first 120 s. One check runs at a time, at most "
                          f"{live.limits.waiting_renders} waiting (then 503 with Retry-After).",
              responses={200: {"description": "the report (found or not)"},
                         400: {"description": "not a video or image"}, 413: {"description": "too large"},
                         503: {"description": "busy"}})
    async def verify_api(file: UploadFile = File(..., description="the video or image to check")) -> dict:
        from ..provenance.verify import verify
        gate = live.verifies
        if not gate.admit():
            raise ApiError(503, f"busy: a check is running and {gate.max_waiting} are waiting; retry later",
                           {"Retry-After": str(RETRY_AFTER_S)})
        folder = Path(tempfile.mkdtemp(prefix="facecast-verify-"))
        try:
            data = await read_upload(file, "file", live.limits.audio_bytes)
            path = folder / ("upload" + safe_suffix(file.filename, ".mp4"))
            path.write_bytes(data)
            async with gate.slot:
                try:
                    report = await run_in_threadpool(verify, path)
                except FacecastError as e:
                    raise ApiError(400, scrub_paths(str(e), {path: "the uploaded file", folder: "the upload"})) from None
        finally:
            gate.leave()
            shutil.rmtree(folder, ignore_errors=True)
        report["file"] = Path(file.filename or "upload").name[:80]
        return report

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket):
        await ws.accept()                    # the Guard has checked Host, token and Origin
        await run_session(live, ws)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return _wrap(app, access or Access())


def _wrap(app, access: Access):
    """The app behind the `Guard`; `.state` and `.fastapi` stay reachable."""
    limits = app.state.live.limits
    body_limits = {**limits.body_limits(), "/api/verify": limits.audio_bytes + FORM_OVERHEAD_BYTES}
    guarded = Guard(app, access, body_limits)
    guarded.state = app.state
    guarded.fastapi = app
    return guarded


def header_text(text: str) -> str:
    """`text` as one HTTP header value: one line, ASCII (others become '?')."""
    return " ".join(text.split()).encode("ascii", "replace").decode("ascii")


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
