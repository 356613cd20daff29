"""The base of the HTTP API backends (the prompt rewriter and the bench judge): the
client's lifecycle and the one call loop they share.

A call is: the cache (a hit costs nothing), then up to CONTENT_TRIES requests (one more
when the reply is not JSON), each through the RetryPolicy and the rate limiter, with
token usage summed over the paid replies and the reply cached. A subclass says how to
import its SDK and build its client, how to send one request and read the reply, and
how to turn a reply into its result; it never raises for anything the API or the model
does: a failure is a result with a reason code `{reason_prefix}_{failure}`, where the
HTTP failures are:

    http_429_exhausted  still rate limited after max_retries retries
    http_5xx_exhausted  still a server error after max_retries retries
    timeout             still timing out after max_retries retries
    connection          still no connection after max_retries retries
    auth                401/403: the key was refused (not retried)
    http_4xx            another client error such as 400 or 404 (not retried)
    bad_response        a reply body that is not JSON (after retries), or an odd status
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from datapipe.backends.api_common import (
    CallError,
    RateLimiter,
    Redactor,
    ResponseCache,
    RetryPolicy,
    classify,
    default_prompts_dir,
    import_api,
    read_api_key,
)
from datapipe.recipe import ApiConfig

CONTENT_TRIES = 2
"""Requests per call when the reply is not JSON: the first, and one more."""
T = TypeVar("T")


class ApiResult(Protocol):
    """What the call loop fills in on any backend's result."""

    error: str | None
    cached: bool
    attempts: int
    usage: dict[str, int]


R = TypeVar("R", bound=ApiResult)


class Templates(Protocol):
    @classmethod
    def load(cls, prompts_dir: Path) -> Templates: ...


class ApiClient(Generic[R]):
    label: ClassVar[str]
    """Provider name: logs, the retry label and the version string (`label:model`)."""
    reason_prefix: ClassVar[str]
    """Prefix of this backend's reason codes (`llm`, `judge`)."""
    what: ClassVar[str]
    """Named in a missing-dependency or missing-key error."""
    template_type: ClassVar[type[Any]]

    def __init__(
        self,
        config: ApiConfig,
        cache_dir: Path | None,
        *,
        prompts_dir: Path | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.cache = ResponseCache(cache_dir)
        self.prompts_dir = Path(prompts_dir) if prompts_dir is not None else default_prompts_dir()
        self.limiter = limiter or RateLimiter(config.requests_per_minute)
        self.retry = RetryPolicy(config.max_retries, config.backoff_s, sleep, label=self.label)
        self.version = f"{self.label}:{config.model}"
        self.templates: Any = None
        self._client: Any = None
        self._redact = Redactor()
        self._load_lock = threading.Lock()
        self._log = logging.getLogger(type(self).__module__)

    def load(self) -> None:
        """Import the SDK, read the key from the environment, load the templates."""
        with self._load_lock:
            if self._client is not None:
                return
            sdk = self._import_sdk()
            import_api("tenacity", self.what)
            key = read_api_key(self.config.api_key_env, self.what)
            self._templates()
            self._redact = Redactor(key)
            self._client = self._connect(sdk, key)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _templates(self) -> Any:
        if self.templates is None:
            self.templates = self.template_type.load(self.prompts_dir)
        return self.templates

    def _import_sdk(self) -> Any:
        raise NotImplementedError

    def _connect(self, sdk: Any, key: str) -> Any:
        """The SDK client, with the SDK's own retries off (RetryPolicy counts them)."""
        raise NotImplementedError

    def _failed(self, error: str, detail: str) -> R:
        """The result of a call that got no usable reply."""
        raise NotImplementedError

    def _call(
        self,
        request: dict[str, Any],
        send: Callable[[], dict[str, Any]],
        evaluate: Callable[[dict[str, Any]], R],
        subject: str,
    ) -> R:
        """Cache, then requests (retried, rate limited), usage summed, reply cached."""
        key = self.cache.key(request)
        cached = self.cache.get(key)
        if cached is not None:
            self._log.debug("%s: cache hit %s for %s", self.label, key[:12], subject)
            result = evaluate(cached)
            result.cached = True
            result.usage = {}  # nothing was paid for this one
            return result
        bad_json = f"{self.reason_prefix}_bad_json"
        attempts = 0
        usage: dict[str, int] = {}
        reply: dict[str, Any] = {}
        result = self._failed(bad_json, "")
        for content_try in range(1, CONTENT_TRIES + 1):
            try:
                reply, tries = self.retry.call(send)
            except CallError as failure:
                attempts += failure.attempts
                self._log.warning("%s: %s failed: %s", self.label, subject, failure.detail)
                result = self._failed(f"{self.reason_prefix}_{failure.reason}", failure.detail)
                result.attempts = attempts
                result.usage = usage
                return result
            attempts += tries
            for name, value in reply.get("usage", {}).items():
                usage[name] = usage.get(name, 0) + value
            result = evaluate(reply)
            if result.error != bad_json or content_try == CONTENT_TRIES:
                break
            self._log.info("%s: %s: reply is not JSON, asking once more", self.label, subject)
        self.cache.put(key, request, {**reply, "usage": usage})
        result.attempts = attempts
        result.usage = usage
        return result

    def _attempt(self, call: Callable[[], T]) -> T:
        """One HTTP attempt: takes a rate-limiter token; any failure leaves as a
        classified, redacted CallError."""
        self.limiter.acquire()
        try:
            return call()
        except Exception as exc:
            failure = classify(exc, self._redact)
            if failure is None:
                raise
            raise failure from None
