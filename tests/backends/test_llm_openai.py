"""The OpenAI prompt rewriter against a local chat-completions stub server."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
import time
from pathlib import Path

import pytest
from servers import FakeClock, Reply, StubServer, error_reply, openai_json, openai_reply

from datapipe.backends.api_common import RateLimiter, Redactor
from datapipe.backends.llm_openai import PromptRewriter, RewriteResult
from datapipe.errors import DatapipeError, LibraryError, MissingDependencyError
from datapipe.recipe import OpenAIConfig
from datapipe.records import CopyLine, PromptSpec

pytest.importorskip("openai")
pytest.importorskip("tenacity")

KEY = "sk-test-DO-NOT-LEAK-123"
ENV = "DATAPIPE_TEST_OPENAI_KEY"
FAST = 1e6  # requests per minute: the limiter never waits unless a test asks it to


def make_spec(language: str = "en", spec_id: str = "single-abcd1234-000000-0") -> PromptSpec:
    if language == "zh":
        copy = [
            CopyLine("title", "春日咖啡节"),
            CopyLine("date", "2026年4月18日"),
            CopyLine("cta", "名额有限，速来报名"),
        ]
        prompt = (
            "一张极简风格的美食海报，一杯拿铁。"
            "海报上的文字：“春日咖啡节”、“2026年4月18日”、“名额有限，速来报名”。"
        )
        negative = "模糊，低质量"
    else:
        copy = [
            CopyLine("title", "SPRING COFFEE FEST"),
            CopyLine("date", "Apr 18, 2026"),
            CopyLine("cta", "Book your seat"),
        ]
        prompt = 'A minimalist food poster of a latte. The poster text reads: "SPRING COFFEE FEST".'
        negative = "blurry, low quality"
    return PromptSpec(
        spec_id=spec_id,
        group_id=spec_id.rsplit("-", 1)[0],
        group_kind="single",
        member=0,
        language=language,
        theme="food",
        entity_id="latte",
        entity_name="拿铁" if language == "zh" else "latte",
        entity_description="一杯拉花拿铁" if language == "zh" else "a latte with foam art",
        entity_shape="cup",
        entity_color="#C8A27A",
        style_id="minimalist",
        style_name="极简" if language == "zh" else "minimalist",
        layout_id="top-title",
        aspect_ratio="3:4",
        width=384,
        height=512,
        copy=copy,
        prompt=prompt,
        negative_prompt=negative,
        seed=7,
    )


def good_prompt(spec: PromptSpec) -> str:
    lines = ", ".join(f'"{line.text}"' for line in spec.copy)
    return f"A vivid, detailed poster of {spec.entity_name}. Text on the poster: {lines}."


def good_reply(spec: PromptSpec) -> Reply:
    return openai_json({"prompt": good_prompt(spec), "negative_prompt": "blurry, watermark"})


class Backoff:
    """A fake sleep that records the backoff waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(ENV, KEY)


@pytest.fixture
def stub():
    server = StubServer("openai", max_requests=40, lifetime_s=30).start()
    yield server
    server.stop()


def rewriter(
    server: StubServer, tmp_path: Path, cache: bool = True, **overrides
) -> tuple[PromptRewriter, Backoff]:
    fields = {
        "base_url": server.base_url,
        "model": "stub-model",
        "api_key_env": ENV,
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_s": 0.5,
        "requests_per_minute": FAST,
    }
    limiter = overrides.pop("limiter", None)
    config = OpenAIConfig(**{**fields, **overrides})
    sleep = Backoff()
    backend = PromptRewriter(
        config, tmp_path / "cache" if cache else None, limiter=limiter, sleep=sleep
    )
    backend.load()
    return backend, sleep


# -- good replies ---------------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_good_reply_is_parsed(stub, tmp_path, key_env, language):
    spec = make_spec(language)
    stub.push(good_reply(spec))
    backend, sleep = rewriter(stub, tmp_path)
    result = backend.rewrite(spec)
    assert result.error is None and result.ok, result.detail
    assert result.prompt == good_prompt(spec)
    assert result.negative_prompt == "blurry, watermark"
    assert (result.attempts, result.cached, sleep.waits) == (1, False, [])
    assert result.usage == {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200}

    (seen,) = stub.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {KEY}"  # the key from the env var
    body = seen.json()
    assert body["model"] == "stub-model"
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == pytest.approx(0.7)
    system, user = body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert "JSON" in system["content"]
    for line in spec.copy:
        assert json.dumps(line.text, ensure_ascii=False) in user["content"]
    assert spec.prompt in user["content"] and spec.entity_name in user["content"]
    if language == "zh":
        assert "请改写" in user["content"]


@pytest.mark.parametrize("thinking", [False, True])
def test_qwen3_thinking_is_switched_by_chat_template_kwargs(stub, tmp_path, key_env, thinking):
    spec = make_spec("zh")
    stub.push(good_reply(spec))
    backend, _ = rewriter(stub, tmp_path, enable_thinking=thinking)
    assert backend.rewrite(spec).ok
    (seen,) = stub.requests
    assert seen.json()["chat_template_kwargs"] == {"enable_thinking": thinking}  # vLLM's field


def test_unset_thinking_sends_no_chat_template_kwargs(stub, tmp_path, key_env):
    """OpenAI's own API refuses unknown fields: nothing is sent unless the recipe asks."""
    spec = make_spec()
    stub.push(good_reply(spec))
    backend, _ = rewriter(stub, tmp_path)
    assert backend.rewrite(spec).ok
    (seen,) = stub.requests
    assert "chat_template_kwargs" not in seen.json()


def test_a_json_code_fence_and_an_empty_negative_prompt_are_accepted(stub, tmp_path, key_env):
    spec = make_spec()
    data = json.dumps({"prompt": good_prompt(spec), "negative_prompt": ""})
    stub.push(openai_reply(f"```json\n{data}\n```"))
    result = rewriter(stub, tmp_path)[0].rewrite(spec)
    assert result.ok, result.detail
    assert result.negative_prompt == spec.negative_prompt  # an empty one keeps the spec's


# -- retries ----------------------------------------------------------------------------
def test_429_then_success_is_retried_with_doubling_backoff(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(error_reply("openai", 429, "slow down"), error_reply("openai", 429, "slow down"))
    stub.push(good_reply(spec))
    backend, sleep = rewriter(stub, tmp_path)
    result = backend.rewrite(spec)
    assert result.ok, result.detail
    assert result.attempts == 3 and stub.count == 3
    assert sleep.waits == [0.5, 1.0]


def test_retry_after_is_honoured_when_longer_than_the_backoff(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(error_reply("openai", 429, "slow down", headers={"Retry-After": "3"}))
    stub.push(good_reply(spec))
    backend, sleep = rewriter(stub, tmp_path)
    assert backend.rewrite(spec).ok
    assert sleep.waits == [3.0]


def test_500_twice_then_success(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(error_reply("openai", 500, "boom"), error_reply("openai", 503, "busy"))
    stub.push(good_reply(spec))
    backend, sleep = rewriter(stub, tmp_path)
    result = backend.rewrite(spec)
    assert result.ok and result.attempts == 3 and stub.count == 3
    assert sleep.waits == [0.5, 1.0]


def test_429_until_retries_are_spent_is_recorded(tmp_path, key_env):
    with StubServer("openai", default=error_reply("openai", 429, "quota")) as server:
        backend, sleep = rewriter(server, tmp_path, max_retries=2)
        result = backend.rewrite(make_spec())
        assert result.error == "llm_http_429_exhausted"
        assert (result.prompt, result.negative_prompt) == (None, None)
        assert result.attempts == 3 and server.count == 3
        assert sleep.waits == [0.5, 1.0]
        assert "429" in result.detail and "\n" not in result.detail
        # a transport failure is not cached: the next run asks again
        backend.rewrite(make_spec())
        assert server.count == 6


def test_a_timeout_is_retried_then_recorded_never_raised(tmp_path, key_env):
    with StubServer("openai", default=Reply(delay_s=3.0)) as server:
        backend, sleep = rewriter(server, tmp_path, timeout_s=0.4, max_retries=2)
        result = backend.rewrite(make_spec())  # the server would answer 200 after 3 s
        assert result.error == "llm_timeout"
        assert result.attempts == 3 and server.count == 3
        assert sleep.waits == [0.5, 1.0]
        assert "Timeout" in result.detail


def test_a_timeout_then_success(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(Reply(delay_s=3.0), good_reply(spec))
    result = rewriter(stub, tmp_path, timeout_s=1.0)[0].rewrite(spec)
    assert result.ok and result.attempts == 2


def test_a_dropped_connection_is_retried(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(Reply(drop=True), good_reply(spec))
    result = rewriter(stub, tmp_path)[0].rewrite(spec)
    assert result.ok and result.attempts == 2


def test_no_server_is_recorded_as_a_connection_error(tmp_path, key_env):
    server = StubServer("openai").start()
    backend, sleep = rewriter(server, tmp_path, max_retries=1)
    server.stop()
    result = backend.rewrite(make_spec())
    assert result.error == "llm_connection" and result.attempts == 2
    assert sleep.waits == [0.5]


def test_a_reply_body_that_is_not_json_is_retried(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(Reply(body="<html>502 Bad Gateway</html>"), good_reply(spec))
    backend, sleep = rewriter(stub, tmp_path)
    result = backend.rewrite(spec)
    assert result.ok and result.attempts == 2 and sleep.waits == [0.5]


@pytest.mark.parametrize(("status", "reason"), [(401, "llm_auth"), (400, "llm_http_4xx")])
def test_client_errors_are_not_retried(stub, tmp_path, key_env, status, reason):
    stub.push(error_reply("openai", status, "no"))
    backend, sleep = rewriter(stub, tmp_path)
    result = backend.rewrite(make_spec())
    assert result.error == reason and result.attempts == 1 and stub.count == 1
    assert sleep.waits == []


# -- replies the model gets wrong ------------------------------------------------------------
def test_malformed_json_is_asked_once_more_then_recorded(tmp_path, key_env):
    with StubServer("openai", default=openai_reply('{"prompt": "unterminated')) as server:
        backend, _ = rewriter(server, tmp_path)
        result = backend.rewrite(make_spec())
        assert result.error == "llm_bad_json"
        assert result.attempts == 2 and server.count == 2
        assert result.usage["prompt_tokens"] == 240  # both replies were paid for
        assert result.prompt is None


def test_malformed_json_then_a_good_reply(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(openai_reply("Sure! Here is your prompt."), good_reply(spec))
    result = rewriter(stub, tmp_path)[0].rewrite(spec)
    assert result.ok and result.attempts == 2


@pytest.mark.parametrize(
    "data",
    [
        {"negative_prompt": "blurry"},
        {"prompt": 42, "negative_prompt": "blurry"},
        {"prompt": "", "negative_prompt": "blurry"},
        {"prompt": "fine"},
        ["not", "an", "object"],
    ],
    ids=["no-prompt", "prompt-not-str", "empty-prompt", "no-negative", "list"],
)
def test_a_schema_violation_is_recorded(stub, tmp_path, key_env, data):
    stub.push(openai_json(data))
    result = rewriter(stub, tmp_path)[0].rewrite(make_spec())
    assert result.error == "llm_schema", result
    assert result.attempts == 1 and stub.count == 1 and result.prompt is None


def test_an_empty_reply_is_recorded(stub, tmp_path, key_env):
    stub.push(openai_reply(None))
    result = rewriter(stub, tmp_path)[0].rewrite(make_spec())
    assert result.error == "llm_empty"


@pytest.mark.parametrize(
    ("language", "index", "altered"),
    [
        ("en", 0, "Spring Coffee Fest"),  # re-cased
        ("en", 1, "April 18, 2026"),  # "improved"
        ("zh", 2, "名额有限,速来报名"),  # full-width comma turned half-width
        ("zh", 1, "2026年4月8日"),  # a digit lost
    ],
)
def test_a_reply_that_alters_a_copy_line_is_rejected(
    stub, tmp_path, key_env, language, index, altered
):
    spec = make_spec(language)
    lines = [line.text for line in spec.copy]
    original = lines[index]
    lines[index] = altered
    prompt = "A poster with the text " + ", ".join(f'"{t}"' for t in lines)
    stub.push(openai_json({"prompt": prompt, "negative_prompt": "blurry"}))
    result = rewriter(stub, tmp_path)[0].rewrite(spec)
    assert result.error == "llm_copy_changed"
    assert result.prompt is None
    assert json.dumps(original, ensure_ascii=False) in result.detail
    assert spec.copy[index].role in result.detail


# -- cache -----------------------------------------------------------------------------------
def test_the_second_identical_call_is_read_from_the_cache(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(good_reply(spec))
    backend, _ = rewriter(stub, tmp_path)
    first = backend.rewrite(spec)
    second = backend.rewrite(spec)
    assert stub.count == 1
    assert (second.prompt, second.negative_prompt) == (first.prompt, first.negative_prompt)
    assert (second.cached, second.attempts, second.usage) == (True, 0, {})

    # a fresh backend (a rerun) reads the same entry and makes no request either
    again, _ = rewriter(stub, tmp_path)
    assert again.rewrite(spec).cached and stub.count == 1

    files = list((tmp_path / "cache").rglob("*"))
    entries = [f for f in files if f.is_file()]
    assert len(entries) == 1 and entries[0].suffix == ".json"
    assert not [f for f in files if f.name.endswith(".tmp")]
    entry = json.loads(entries[0].read_text(encoding="utf-8"))
    assert entry["key"] == entries[0].stem == backend.cache.key(backend.request(spec))
    assert entry["request"]["model"] == "stub-model"


def test_a_different_request_is_a_cache_miss(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(good_reply(spec), good_reply(spec), good_reply(spec))
    backend, _ = rewriter(stub, tmp_path)
    backend.rewrite(spec)
    hotter, _ = rewriter(stub, tmp_path, temperature=1.0)
    assert not hotter.rewrite(spec).cached
    other = dataclasses.replace(spec, prompt=spec.prompt + " Bright light.")
    assert not backend.rewrite(other).cached
    assert stub.count == 3


def test_a_cached_model_failure_is_replayed_without_paying(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(openai_json({"prompt": "no copy here", "negative_prompt": ""}))
    backend, _ = rewriter(stub, tmp_path)
    assert backend.rewrite(spec).error == "llm_copy_changed"
    replay = backend.rewrite(spec)
    assert (replay.error, replay.cached, stub.count) == ("llm_copy_changed", True, 1)


def test_no_cache_dir_means_no_cache(stub, tmp_path, key_env):
    spec = make_spec()
    stub.push(good_reply(spec), good_reply(spec))
    backend, _ = rewriter(stub, tmp_path, cache=False)
    backend.rewrite(spec)
    assert not backend.rewrite(spec).cached and stub.count == 2
    assert not (tmp_path / "cache").exists()


# -- rate limit --------------------------------------------------------------------------------
def test_the_token_bucket_spaces_requests_on_a_fake_clock():
    clock = FakeClock()
    limiter = RateLimiter(30, clock=clock, sleep=clock.sleep)  # one every 2 s
    start = clock.now
    waits = [limiter.acquire() for _ in range(5)]
    assert waits == [0.0, 2.0, 2.0, 2.0, 2.0]
    assert clock.now - start == pytest.approx(8.0)
    clock.now += 60  # idle: the bucket refills, but only up to its burst
    assert [limiter.acquire() for _ in range(2)] == [0.0, 2.0]


def test_a_burst_lets_that_many_through_at_once():
    clock = FakeClock()
    limiter = RateLimiter(60, burst=3, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_the_token_bucket_is_thread_safe():
    limiter = RateLimiter(1200)  # one every 50 ms
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [limiter.acquire() for _ in range(3)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert time.monotonic() - started >= 11 * 0.05 * 0.9  # 12 requests: 11 intervals at least


def test_the_rewriter_takes_a_token_per_request(stub, tmp_path, key_env):
    clock = FakeClock()
    limiter = RateLimiter(6, clock=clock, sleep=clock.sleep)  # one every 10 s
    specs = [make_spec(spec_id=f"single-abcd1234-00000{i}-0") for i in range(3)]
    stub.push(error_reply("openai", 500, "boom"), *[good_reply(s) for s in specs])
    backend, _ = rewriter(stub, tmp_path, cache=False, limiter=limiter)
    started = clock.now
    assert all(backend.rewrite(s).ok for s in specs)
    assert stub.count == 4
    assert clock.now - started == pytest.approx(30.0)  # 4 requests, the retry included


# -- the key -------------------------------------------------------------------------------------
def test_the_key_leaks_nowhere(tmp_path, key_env, caplog):
    caplog.set_level(logging.DEBUG)
    spec = make_spec()
    results: list[RewriteResult] = []
    echo = Reply(status=400, echo_headers=True)
    with StubServer("openai", [good_reply(spec)]) as server:
        backend, _ = rewriter(server, tmp_path, max_retries=1)
        impatient, _ = rewriter(server, tmp_path, max_retries=1, timeout_s=0.4)
        results.append(backend.rewrite(spec))  # paid, then cached
        results.append(backend.rewrite(spec))
        other = dataclasses.replace(spec, prompt="another prompt")
        server.push(echo)  # a 400 whose message repeats the request headers
        results.append(backend.rewrite(other))
        server.push(dataclasses.replace(echo, status=429), dataclasses.replace(echo, status=503))
        results.append(backend.rewrite(other))
        server.push(Reply(delay_s=2), Reply(delay_s=2))
        results.append(impatient.rewrite(other))
        server.push(openai_reply(f"not json, and here is a key: {KEY}"), openai_reply("no"))
        results.append(backend.rewrite(other))
        assert all(s.headers["authorization"] == f"Bearer {KEY}" for s in server.requests)
    assert [r.error for r in results] == [
        None,
        None,
        "llm_http_4xx",
        "llm_http_5xx_exhausted",
        "llm_timeout",
        "llm_bad_json",
    ]
    assert "rejected; request headers" in results[2].detail  # the message is kept, redacted
    for result in results:
        assert KEY not in repr(result) and KEY not in json.dumps(dataclasses.asdict(result))
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()
    assert caplog.records, "logging was captured"
    for record in caplog.records:
        assert KEY not in record.getMessage(), record.name
    assert KEY not in caplog.text


def test_the_redactor_strips_keys_and_auth_headers():
    redact = Redactor(KEY)
    text = (
        f"{{'authorization': 'Bearer {KEY}', 'x-goog-api-key': 'AIza0123456789abcdefghijKLMN'}}"
        " url https://h/v1?key=abc&x=1 and sk-live-0123456789abcdef"
    )
    clean = redact(text)
    for secret in (KEY, "AIza0123456789abcdefghijKLMN", "key=abc", "sk-live-0123456789abcdef"):
        assert secret not in clean
    assert redact("line one\nline two") == "line one line two"


def test_a_missing_env_var_is_a_one_line_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    config = OpenAIConfig(model="stub-model", api_key_env=ENV, base_url="http://127.0.0.1:9/v1")
    backend = PromptRewriter(config, tmp_path)
    with pytest.raises(DatapipeError) as info:
        backend.load()
    message = str(info.value)
    assert ENV in message and "\n" not in message
    assert not (tmp_path / "cache").exists()


def test_a_missing_sdk_names_the_extra(tmp_path, key_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    config = OpenAIConfig(model="stub-model", api_key_env=ENV)
    with pytest.raises(MissingDependencyError, match=r"pip install 'datapipe\[api\]'"):
        PromptRewriter(config, None).load()


def test_a_template_with_an_unknown_placeholder_is_refused(tmp_path, key_env):
    root = Path(__file__).resolve().parents[2] / "prompts" / "llm_rewrite.yaml"
    (tmp_path / "llm_rewrite.yaml").write_text(
        root.read_text(encoding="utf-8").replace("Subject: {entity}", "Subject: {subject}"),
        encoding="utf-8",
    )
    config = OpenAIConfig(model="stub-model", api_key_env=ENV)
    with pytest.raises(LibraryError, match=r"unknown placeholder \{subject\}"):
        PromptRewriter(config, None, prompts_dir=tmp_path).load()
