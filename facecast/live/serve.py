"""Running the live server: the `facecast serve` command (`add_serve_parser`, `cmd_serve`), the
listening socket, uvicorn's configuration (with its WebSocket transport adjusted), and
`ServerThread`, which runs an app in the background for tests and benchmarks."""
import ipaddress
import os
import socket
import sys
import threading
import time

from ..errors import FacecastError
from .access import TOKEN_ENV, Access
from .protocol import MAX_WS_MESSAGE, WS_TOO_BIG_REASON
from .session import MAX_SESSIONS

WS_LINGER_S = 5.0                   # after that close, the rest of the message is read and dropped this long


# ---- command line --------------------------------------------------------------------------------
def add_serve_parser(subparsers):
    """The `serve` subcommand; facecast's CLI checks every numeric option's range (its OPTION_RANGES)."""
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
    """`facecast serve`: its numbers are already range-checked by the CLI's parser."""
    import uvicorn

    from .app import create_app
    token = args.token or os.environ.get(TOKEN_ENV) or None
    access = Access(bound_host=args.host, token=token, extra_hosts=tuple(args.allow_host))
    if args.image is not None:
        from ..face.rig import build_rig
        from ..inputs import check_input_file
        check_input_file(args.image, "image")
        rig = build_rig(args.image, size=args.size)       # fail now, with the usual message
        for n in rig.notices:
            print(f"facecast: {n}", file=sys.stderr)
    else:
        rig = None
    sock = bind_socket(args.host, args.port)
    app = create_app(args.size, args.image, args.max_sessions, default_rig=rig, access=access)
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


# ---- uvicorn -------------------------------------------------------------------------------------
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
