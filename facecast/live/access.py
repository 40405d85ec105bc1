"""Who may use the server and how much one request may ask for: the Host check, the same-origin
rule, the access token and the request limits, enforced by the `Guard` (ASGI middleware in front
of the whole app); and the one error shape, `{"error": message}`, of every refusal.

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
  anything decodes it (`uploads.check_image_header`); the audio of a render (`MAX_AUDIO_S`, its
  duration checked before rendering, its frames counted while rendering). Renders run one at a
  time with at most `MAX_WAITING_RENDERS` waiting (then 503 + Retry-After), and a render whose
  client disconnects is cancelled, waiting or running (`renders`). Live sessions: `MAX_SESSIONS`
  (then the socket closes with 1013); a WebSocket message over `MAX_WS_MESSAGE` bytes closes the
  socket with 1009 and a reason (`serve.ws_protocol_class`).
"""
import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from ..errors import FacecastError

# HTTP API limits (the defaults of `Limits`)
MAX_UPLOAD_BYTES = 15 * 1024 * 1024          # an image upload
MAX_AUDIO_BYTES = 50 * 1024 * 1024           # an audio upload
MAX_UPLOAD_PIXELS = 60_000_000               # an image's declared width x height, checked before decoding
MAX_AUDIO_S = 600.0                          # the audio of one render (10 minutes)
MAX_WAITING_RENDERS = 4                      # renders waiting behind the running one; more get 503
FORM_OVERHEAD_BYTES = 64 * 1024              # multipart boundaries and small fields, beyond the files
DRAIN_FACTOR = 8                             # an over-limit body is read (and dropped) up to this x the limit

TOKEN_ENV = "FACECAST_TOKEN"
TOKEN_COOKIE = "facecast_token"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")              # URL- and cookie-safe
LOOPBACK_NAMES = {"localhost"}
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


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


def size_text(n: float) -> str:
    """Bytes in words: "15 MB", "512 KB"."""
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
    message = f"the request is too large (at most {size_text(limit)})"
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
