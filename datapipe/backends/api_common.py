"""What the HTTP API backends share: the key, the cache, the rate limiter and the retries.

- The API key is read from the environment variable the recipe names, never from the
  recipe, and never appears in a log record, a cache file, a result or an error:
  `Redactor` strips it (and anything that looks like an auth header) from every message
  an SDK or a server hands back.
- `ResponseCache` stores one JSON file per request, keyed by the sha256 of the canonical
  request, written atomically (temporary file, then rename), so a rerun never pays twice
  and a crash never leaves a half-written entry. No key read by `read_api_key` is ever
  written into it, even when a reply repeats one.
- `RateLimiter` is a thread-safe token bucket: at most `requests_per_minute` request
  starts per minute and per limiter (one limiter per backend instance unless one is
  shared). Every HTTP attempt, retries included, takes a token.
- `RetryPolicy` is the one place retries happen (the SDKs' own retries are switched off):
  tenacity, at most `max_retries` retries after the first attempt, waiting `backoff_s`,
  then twice that, and so on (or longer when the server sends Retry-After), on 408, 429,
  5xx, timeouts and connection errors. Other client errors are not retried.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import string
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from datapipe.errors import DatapipeError, LibraryError, MissingDependencyError
from datapipe.hashing import digest

log = logging.getLogger(__name__)

T = TypeVar("T")

API_EXTRA_FIX = "pip install 'datapipe[api]'"
MAX_WAIT_S = 600.0
"""No single retry wait is longer than this, whatever Retry-After says."""
DETAIL_CHARS = 400
"""Details are one line and at most this long: they are stored with every record."""


def import_api(module: str, what: str) -> ModuleType:
    """Import an optional API package, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the Python package {module!r}, which is not installed ({exc.name})",
            fix=API_EXTRA_FIX,
        ) from None


def read_api_key(env_name: str, what: str) -> str:
    """The key from `env_name`; a one-line error naming the variable when it is unset."""
    value = os.environ.get(env_name, "").strip()
    if not value:
        raise DatapipeError(
            f"{what}: environment variable {env_name} is not set (it holds the API key)",
            fix=f"export {env_name}=<your key>; keys are never read from the recipe",
        )
    _KEYS_READ.add(value)
    return value


_KEYS_READ: set[str] = set()
"""Every key read_api_key handed out in this process: ResponseCache never writes one,
whatever a server put in its reply."""


_SECRET_PATTERNS = (
    re.compile(r"(?i)\b(bearer)\s+[^\s'\",}]+"),
    re.compile(
        r"(?i)([\"']?\b(?:x-goog-api-key|x-api-key|api[_-]?key|authorization)[\"']?\s*[:=]\s*)"
        r"[\"']?[^\s'\",}&]+"
    ),
    re.compile(r"(?i)([?&](?:key|api_key)=)[^&\s'\"]+"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),
)


_SURROGATE = re.compile("[\ud800-\udfff]")


class Redactor:
    """Removes the key, and anything shaped like a credential, from a message."""

    def __init__(self, *secrets: str) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """`text` with the key itself replaced and lone surrogates (which no file can
        encode) made U+FFFD, otherwise unchanged: for model replies that are kept."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _SURROGATE.sub("\ufffd", text)

    def __call__(self, text: object, limit: int = DETAIL_CHARS) -> str:
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, "***")
        for pattern in _SECRET_PATTERNS:
            out = pattern.sub(lambda m: (m.group(1) + " ***") if m.groups() else "***", out)
        out = " ".join(out.split())
        if len(out) > limit:
            out = out[: limit - 3] + "..."
        return out


class CallError(Exception):
    """One failed HTTP attempt, already classified and redacted.

    `code` is the reason code without the backend prefix: http_429, http_5xx, timeout,
    connection, bad_response (retryable) or auth, http_4xx (not retried)."""

    def __init__(
        self, code: str, detail: str, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = 0

    @property
    def reason(self) -> str:
        """The reason recorded once retries are over (a short, bounded set)."""
        if self.code in ("http_429", "http_5xx"):
            return f"{self.code}_exhausted"
        return self.code


def _mro_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status_of(exc: BaseException) -> int | None:
    """HTTP status of an SDK error: openai has `status_code`, google-genai an int `code`."""
    for attr in ("status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    return None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: fall back to the exponential wait


def classify(exc: BaseException, redact: Redactor) -> CallError | None:
    """Turn an SDK or transport exception into a CallError; None for anything else
    (a programming error, which must not be retried or hidden)."""
    names = _mro_names(exc)
    message = redact(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, json.JSONDecodeError):
        # the HTTP body itself is not JSON (an HTML error page from a proxy): retried
        return CallError("bad_response", f"reply body is not JSON: {message}", retryable=True)
    if names & {"APITimeoutError", "TimeoutException"} or isinstance(exc, TimeoutError):
        return CallError("timeout", message, retryable=True)
    status = _status_of(exc)
    if status is not None:
        detail = redact(f"HTTP {status}: {exc}")
        if status == 429:
            return CallError("http_429", detail, True, _retry_after(exc))
        if status >= 500:
            return CallError("http_5xx", detail, True, _retry_after(exc))
        if status == 408:
            return CallError("timeout", detail, retryable=True)
        if status in (401, 403):
            return CallError("auth", detail, retryable=False)
        if 400 <= status < 500:
            return CallError("http_4xx", detail, retryable=False)
        return CallError("bad_response", detail, retryable=False)
    if names & {"APIConnectionError", "TransportError", "RequestError", "HTTPError"} or (
        isinstance(exc, (ConnectionError, OSError))
    ):
        return CallError("connection", message, retryable=True)
    return None


class RetryPolicy:
    """Retries with tenacity: the only place an attempt is repeated and counted."""

    def __init__(
        self,
        max_retries: int,
        backoff_s: float,
        sleep: Callable[[float], None] = time.sleep,
        label: str = "api",
    ) -> None:
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.label = label

    def wait_for(self, retry_number: int, failure: CallError | None) -> float:
        """Seconds before retry `retry_number` (1-based): backoff_s * 2**(n-1), or the
        server's Retry-After when that is longer, capped at MAX_WAIT_S."""
        import tenacity

        state = tenacity.RetryCallState(None, None, (), {})
        state.attempt_number = retry_number
        base = tenacity.wait_exponential(multiplier=self.backoff_s, exp_base=2)(state)
        if failure is not None and failure.retry_after is not None:
            base = max(base, failure.retry_after)
        return min(base, MAX_WAIT_S)

    def call(self, attempt: Callable[[], T]) -> tuple[T, int]:
        """Run `attempt` (which raises CallError on a failed try) until it succeeds, a
        failure is not retryable, or the retries are spent. Returns (value, attempts);
        the final CallError is raised with its `attempts` set."""
        import tenacity

        count = 0

        def counted() -> T:
            nonlocal count
            count += 1
            return attempt()

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_for(state.attempt_number, exc if isinstance(exc, CallError) else None)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "%s: attempt %d/%d failed (%s); retrying in %.2f s",
                self.label,
                state.attempt_number,
                self.max_retries + 1,
                exc.code if isinstance(exc, CallError) else type(exc).__name__,
                state.upcoming_sleep,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, CallError) and e.retryable),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            value = retrying(counted)
        except CallError as failure:
            failure.attempts = count
            raise
        return value, count


class RateLimiter:
    """Token bucket: refills at requests_per_minute / 60 tokens a second up to `burst`.

    Thread-safe: a caller reserves its token under the lock (the balance may go
    negative) and sleeps outside it, so concurrent callers queue in order and the
    bucket is never overdrawn. `clock` and `sleep` can be replaced (a fake clock in
    tests)."""

    def __init__(
        self,
        requests_per_minute: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = requests_per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last: float | None = None
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting until it is there. Returns the seconds waited."""
        with self._lock:
            now = self._clock()
            if self._last is not None:
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class ResponseCache:
    """One JSON file per request under `folder`, named by the request's sha256.

    A cache is optional (`folder=None` stores nothing). Entries hold the request (which
    never contains the key) and the reply; an unreadable entry is a miss, not an error."""

    VERSION = 1

    def __init__(self, folder: Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        return digest(request)

    def path(self, key: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("cache entry %s is unreadable (%s): treated as a miss", path, exc)
            return None
        if not isinstance(entry, dict) or entry.get("version") != self.VERSION:
            return None
        reply = entry.get("reply")
        return reply if isinstance(reply, dict) else None

    def put(self, key: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
        path = self.path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"version": self.VERSION, "key": key, "request": request, "reply": reply}
        text = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        # a reply that repeats the key (an echoing proxy, a hostile server) is stored
        # without it; lone surrogates, which UTF-8 cannot hold, become U+FFFD
        data = Redactor(*_KEYS_READ).scrub(text).encode()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def default_prompts_dir() -> Path:
    """The repository's prompts/ folder (a stage passes the recipe's resolved
    `libraries.prompts` instead)."""
    return Path(__file__).resolve().parents[2] / "prompts"


def read_prompt_file(path: Path) -> dict[str, Any]:
    """A YAML template file from prompts/, as a mapping; LibraryError when unusable."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LibraryError(
            f"{path}: template file not found",
            fix="pass prompts_dir= the recipe's libraries.prompts folder",
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise LibraryError(f"{path}: cannot read: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise LibraryError(f"{path}: expected a mapping at the top level")
    return data


def localized(path: Path, data: dict[str, Any], key: str) -> dict[str, str]:
    """`key` as a {zh: str, en: str} mapping, or a LibraryError naming the field."""
    value = data.get(key)
    if not isinstance(value, dict) or set(value) != {"zh", "en"}:
        raise LibraryError(f"{path}: {key}: needs exactly the languages zh and en")
    for lang, text in value.items():
        if not isinstance(text, str) or not text.strip():
            raise LibraryError(f"{path}: {key}.{lang}: must be a non-empty string")
    return dict(value)


def check_placeholders(
    path: Path, where: str, template: str, allowed: set[str], required: set[str] = frozenset()
) -> None:
    """Every `{name}` in `template` is allowed, and every required one is there."""
    try:
        fields = [(f, s, c) for _, f, s, c in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise LibraryError(f"{path}: {where}: {exc} (double literal braces: {{{{ }}}})") from None
    for name, spec, conversion in fields:
        if spec or conversion:  # {width:>999999999} would build a gigabyte string
            raise LibraryError(
                f"{path}: {where}: placeholder {{{_one_line(name)}}} has a conversion or format "
                "spec: only bare {name} fields are allowed"
            )
    names = {name for name, _, _ in fields}
    unknown = names - allowed
    if unknown:
        raise LibraryError(
            f"{path}: {where}: unknown placeholder {{{_one_line(sorted(unknown)[0])}}}",
            fix=f"use only {', '.join('{' + n + '}' for n in sorted(allowed))}",
        )
    missing = required - names
    if missing:
        raise LibraryError(f"{path}: {where}: needs the placeholder {{{sorted(missing)[0]}}}")


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def strip_fences(content: str) -> str:
    """Some servers wrap JSON in a Markdown code fence even in JSON mode."""
    text = content.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text[3:-3]
        if text.lower().startswith("json"):
            text = text[4:]
    return text.strip()


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{where}: {err['msg']} ({len(exc.errors())} error(s))"
