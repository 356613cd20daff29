"""Local stub servers that speak the OpenAI chat-completions and Gemini generateContent
wire formats, with scripted replies and injectable faults.

Each server listens on 127.0.0.1 on a free port, answers at most `max_requests`
requests, and stops itself after `lifetime_s` even if a test forgets to. A request
takes the next scripted `Reply` (or `default` once the script is spent); every
request is recorded (path, headers, JSON body) so tests can count calls and check
what was sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

OPENAI_PATH = re.compile(r"^/v1/chat/completions$")
GEMINI_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/[^/:]+:generateContent$")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    """A dict or list is sent as JSON; str or bytes as they are (malformed bodies)."""
    delay_s: float = 0.0
    """Wait this long before answering (longer than the client timeout: a timeout)."""
    headers: dict[str, str] = field(default_factory=dict)
    echo_headers: bool = False
    """Put the request's headers in the error message, as a careless proxy would: the
    client must not pass them on (the key is among them)."""
    drop: bool = False
    """Close the connection without answering."""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class StubServer:
    def __init__(
        self,
        kind: Literal["openai", "gemini"],
        replies: list[Reply] | tuple[Reply, ...] = (),
        default: Reply | None = None,
        max_requests: int = 50,
        lifetime_s: float = 60.0,
        responder: Callable[[Seen], Reply] | None = None,
    ) -> None:
        """`responder` builds a reply from the request once the script is spent."""
        self.kind = kind
        self.responder = responder
        self.path_pattern = OPENAI_PATH if kind == "openai" else GEMINI_PATH
        self.script: deque[Reply] = deque(replies)
        self.default = default
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> StubServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                stub._handle(self)

            def do_GET(self) -> None:
                stub._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        threading.Thread(
            target=server.serve_forever, args=(0.05,), daemon=True, name="stub-server"
        ).start()
        self._timer = threading.Timer(self.lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._timer is not None:
            self._timer.cancel()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use ----------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What the SDK's base_url must be (the OpenAI SDK appends /chat/completions,
        google-genai appends /v1/models/...)."""
        root = f"http://127.0.0.1:{self.port}"
        return f"{root}/v1" if self.kind == "openai" else root

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    # -- the handler ---------------------------------------------------------------------
    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            if len(self.requests) > self.max_requests:
                return error_reply(self.kind, 503, "stub server: request limit reached")
            if not self.path_pattern.match(seen.path) or seen.method != "POST":
                return error_reply(self.kind, 404, f"stub server: no route {seen.path}")
            if self.script:
                return self.script.popleft()
            if self.responder is not None:
                return self.responder(seen)
            if self.default is not None:
                return self.default
            return error_reply(self.kind, 500, "stub server: no scripted reply left")

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        seen = Seen(handler.command, path, {k.lower(): v for k, v in handler.headers.items()}, body)
        reply = self._next(seen)
        if reply.delay_s and self._stopping.wait(reply.delay_s):
            handler.close_connection = True
            return
        if reply.drop:
            handler.close_connection = True
            return
        payload = reply.body
        if reply.echo_headers:
            payload = {
                "error": {
                    "code": reply.status,
                    "message": f"rejected; request headers were {seen.headers}",
                    "status": "INVALID_ARGUMENT",
                    "type": "invalid_request_error",
                }
            }
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload, ensure_ascii=False).encode()
            content_type = "application/json"
        elif isinstance(payload, str):
            data, content_type = payload.encode(), "application/json"
        else:
            data, content_type = payload or b"", "application/json"
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            handler.close_connection = True  # the client gave up (a timeout test)


# -- wire-format helpers ---------------------------------------------------------------
def openai_reply(
    content: str | None, prompt_tokens: int = 120, completion_tokens: int = 80
) -> Reply:
    return Reply(
        body={
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "stub-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def openai_json(data: Any, **kwargs: Any) -> Reply:
    return openai_reply(json.dumps(data, ensure_ascii=False), **kwargs)


def gemini_reply(text: str | None, prompt_tokens: int = 900, completion_tokens: int = 60) -> Reply:
    parts = [{"text": text}] if text is not None else []
    return Reply(
        body={
            "candidates": [
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": completion_tokens,
                "totalTokenCount": prompt_tokens + completion_tokens,
            },
            "modelVersion": "stub-model",
        }
    )


def gemini_json(data: Any, **kwargs: Any) -> Reply:
    return gemini_reply(json.dumps(data, ensure_ascii=False), **kwargs)


_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def error_reply(kind: str, status: int, message: str, **kwargs: Any) -> Reply:
    if kind == "openai":
        body = {"error": {"message": message, "type": "stub_error", "code": str(status)}}
    else:
        body = {
            "error": {
                "code": status,
                "message": message,
                "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
            }
        }
    return Reply(status=status, body=body, **kwargs)


class FakeClock:
    """A clock whose sleep advances it instantly: for rate-limit and backoff tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
