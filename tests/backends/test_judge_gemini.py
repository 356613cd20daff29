"""The Gemini benchmark judge against a local generateContent stub server."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from servers import FakeClock, Reply, StubServer, error_reply, gemini_json, gemini_reply

from datapipe.backends.api_common import RateLimiter
from datapipe.backends.judge_gemini import SCORE_KEYS, GeminiJudge, JudgeVerdict
from datapipe.errors import DatapipeError, MissingDependencyError
from datapipe.recipe import GeminiConfig

pytest.importorskip("google.genai")
pytest.importorskip("tenacity")

KEY = "sk-test-DO-NOT-LEAK-123"
ENV = "DATAPIPE_TEST_GEMINI_KEY"
FAST = 1e6
INSTRUCTION = 'Fill the masked region with the text "SPRING COFFEE FEST".'
GOOD = {
    "scores": {"instruction_following": 5, "visual_quality": 4, "text_accuracy": 5, "task_fit": 4},
    "reasons": [],
    "suitable": True,
}


def png(color: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGES = {"source": png((255, 0, 0)), "mask": png((255, 255, 255)), "target": png((0, 0, 255))}


def unb64(data: str) -> bytes:
    """google-genai sends inline data as URL-safe base64."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class Backoff:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(ENV, KEY)


@pytest.fixture
def stub():
    server = StubServer("gemini", max_requests=40, lifetime_s=30).start()
    yield server
    server.stop()


def judge(server: StubServer, tmp_path: Path, cache: bool = True, **overrides):
    fields = {
        "base_url": server.base_url,
        "model": "gemini-stub",
        "api_key_env": ENV,
        "timeout_s": 30.0,  # a loaded machine can take seconds; timeout tests set their own
        "max_retries": 3,
        "backoff_s": 0.25,
        "requests_per_minute": FAST,
    }
    limiter = overrides.pop("limiter", None)
    config = GeminiConfig(**{**fields, **overrides})
    sleep = Backoff()
    backend = GeminiJudge(
        config, tmp_path / "cache" if cache else None, limiter=limiter, sleep=sleep
    )
    backend.load()
    return backend, sleep


def ask(backend: GeminiJudge, language: str = "en", images: dict | None = None) -> JudgeVerdict:
    return backend.judge("fill", language, INSTRUCTION, IMAGES if images is None else images)


# -- good replies ---------------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_good_reply_is_parsed(stub, tmp_path, key_env, language):
    stub.push(gemini_json({**GOOD, "reasons": ["  slight blur  "], "suitable": False}))
    backend, sleep = judge(stub, tmp_path)
    verdict = ask(backend, language)
    assert verdict.ok, verdict.detail
    assert verdict.suitable is False
    assert verdict.reasons == ["slight blur"]
    assert verdict.scores == GOOD["scores"]
    assert (verdict.attempts, verdict.cached, sleep.waits) == (1, False, [])
    assert verdict.usage == {"prompt_tokens": 900, "completion_tokens": 60, "total_tokens": 960}

    (seen,) = stub.requests
    assert seen.path == "/v1/models/gemini-stub:generateContent"
    assert seen.headers["x-goog-api-key"] == KEY
    body = seen.json()
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert schema["required"] == ["scores", "reasons", "suitable"]
    assert set(schema["properties"]["scores"]["properties"]) == set(SCORE_KEYS)
    assert config["temperature"] == 0.0
    assert body["systemInstruction"]["parts"][0]["text"]
    (content,) = body["contents"]
    parts = content["parts"]
    texts = [p["text"] for p in parts if "text" in p]
    inline = [p["inlineData"] for p in parts if "inlineData" in p]
    assert INSTRUCTION in texts[0]
    assert ("Inpainting" if language == "en" else "内补") in texts[0]
    assert [unb64(i["data"]) for i in inline] == list(IMAGES.values())
    assert {i.get("mimeType", i.get("mime_type")) for i in inline} == {"image/png"}
    assert "task_fit" in texts[-1]


def test_images_are_sent_in_a_canonical_order(stub, tmp_path, key_env):
    stub.push(gemini_json(GOOD))
    backend, _ = judge(stub, tmp_path)
    shuffled = {"target": IMAGES["target"], "mask": IMAGES["mask"], "source": IMAGES["source"]}
    first = ask(backend, images=shuffled)
    assert first.ok, first.detail
    parts = stub.requests[0].json()["contents"][0]["parts"]
    sent = [unb64(p["inlineData"]["data"]) for p in parts if "inlineData" in p]
    assert sent == [IMAGES["source"], IMAGES["mask"], IMAGES["target"]]
    assert ask(backend).cached  # the same request whatever the dict order
    assert stub.count == 1


def test_large_images_are_downscaled_to_the_configured_side(stub, tmp_path, key_env):
    stub.push(gemini_json(GOOD))
    backend, _ = judge(stub, tmp_path, max_image_side=64)
    mask = Image.new("L", (928, 1664), 0)
    mask.paste(255, (100, 200, 500, 900))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    images = {
        "source": png((255, 0, 0), (928, 1664)),
        "mask": buffer.getvalue(),
        "target": png((0, 0, 255), (1664, 928)),
    }
    assert ask(backend, images=images).ok
    parts = stub.requests[0].json()["contents"][0]["parts"]
    sent = [
        Image.open(io.BytesIO(unb64(p["inlineData"]["data"]))) for p in parts if "inlineData" in p
    ]
    assert [im.size for im in sent] == [(36, 64), (36, 64), (64, 36)]  # aspect kept
    assert set(np.unique(np.asarray(sent[1]))) == {0, 255}  # the mask stays binary
    assert np.asarray(sent[0].convert("RGB"))[10, 10].tolist() == [255, 0, 0]


def test_unknown_tasks_and_languages_are_programming_errors(tmp_path, key_env, stub):
    backend, _ = judge(stub, tmp_path)
    with pytest.raises(ValueError, match="unknown task"):
        backend.judge("poster", "en", INSTRUCTION, IMAGES)
    with pytest.raises(ValueError, match="unknown language"):
        backend.judge("fill", "fr", INSTRUCTION, IMAGES)
    assert stub.count == 0


# -- retries --------------------------------------------------------------------------
def test_429_then_success_is_retried_with_doubling_backoff(stub, tmp_path, key_env):
    stub.push(error_reply("gemini", 429, "quota"), error_reply("gemini", 429, "quota"))
    stub.push(gemini_json(GOOD))
    backend, sleep = judge(stub, tmp_path)
    verdict = ask(backend)
    assert verdict.ok and verdict.suitable is True
    assert verdict.attempts == 3 and stub.count == 3  # the SDK itself retried nothing
    assert sleep.waits == [0.25, 0.5]


def test_500_twice_then_success(stub, tmp_path, key_env):
    stub.push(error_reply("gemini", 500, "boom"), error_reply("gemini", 503, "busy"))
    stub.push(gemini_json(GOOD))
    backend, sleep = judge(stub, tmp_path)
    verdict = ask(backend)
    assert verdict.ok and verdict.attempts == 3 and stub.count == 3
    assert sleep.waits == [0.25, 0.5]


def test_503_until_retries_are_spent_is_recorded(tmp_path, key_env):
    with StubServer("gemini", default=error_reply("gemini", 503, "busy")) as server:
        backend, sleep = judge(server, tmp_path, max_retries=2)
        verdict = ask(backend)
        assert verdict.error == "judge_http_5xx_exhausted"
        assert verdict.suitable is None and verdict.scores == {}
        assert verdict.attempts == 3 and server.count == 3
        assert sleep.waits == [0.25, 0.5]


def test_a_timeout_is_retried_then_recorded_never_raised(tmp_path, key_env):
    with StubServer("gemini", default=Reply(delay_s=3.0)) as server:
        backend, sleep = judge(server, tmp_path, timeout_s=0.4, max_retries=2)
        verdict = ask(backend)  # the server would answer 200 after 3 s
        assert verdict.error == "judge_timeout"
        assert verdict.attempts == 3 and server.count == 3
        assert sleep.waits == [0.25, 0.5]


def test_the_sdk_timeout_is_in_milliseconds(tmp_path, key_env, stub):
    backend, _ = judge(stub, tmp_path, timeout_s=2.5)
    assert backend._client._api_client._http_options.timeout == 2500
    stub.push(gemini_json(GOOD))
    ask(backend)
    assert stub.requests[0].headers.get("x-server-timeout") == "3"  # ceil(2.5 s)


def test_a_dropped_connection_is_retried(stub, tmp_path, key_env):
    stub.push(Reply(drop=True), gemini_json(GOOD))
    verdict = ask(judge(stub, tmp_path)[0])
    assert verdict.ok and verdict.attempts == 2


def test_a_reply_body_that_is_not_json_is_retried_then_recorded(tmp_path, key_env):
    with StubServer("gemini", default=Reply(body="<html>502 Bad Gateway</html>")) as server:
        backend, sleep = judge(server, tmp_path, max_retries=1)
        verdict = ask(backend)
        assert verdict.error == "judge_bad_response"
        assert verdict.attempts == 2 and server.count == 2 and sleep.waits == [0.25]


def test_a_refused_key_is_not_retried(stub, tmp_path, key_env):
    stub.push(error_reply("gemini", 403, "API key not valid"))
    backend, sleep = judge(stub, tmp_path)
    verdict = ask(backend)
    assert verdict.error == "judge_auth" and verdict.attempts == 1 and sleep.waits == []


# -- replies the model gets wrong -------------------------------------------------------
def test_malformed_json_is_asked_once_more_then_recorded(tmp_path, key_env):
    with StubServer("gemini", default=gemini_reply('{"scores": {"task_fit": 4')) as server:
        verdict = ask(judge(server, tmp_path)[0])
        assert verdict.error == "judge_bad_json"
        assert verdict.attempts == 2 and server.count == 2
        assert verdict.suitable is None


def _with(path: str, value):
    data = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = data
    for name in parents:
        node = node[name]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    "data",
    [
        _with("scores.task_fit", 6),
        _with("scores.visual_quality", 0),
        _with("scores.text_accuracy", 4.5),
        _with("scores.text_accuracy", "5"),
        _with("scores.instruction_following", KeyError),
        _with("suitable", "yes"),
        _with("suitable", KeyError),
        _with("reasons", "none"),
        _with("scores", [5, 5, 5, 5]),
    ],
    ids=[
        "score-6",
        "score-0",
        "score-float",
        "score-str",
        "score-missing",
        "suitable-str",
        "suitable-missing",
        "reasons-str",
        "scores-list",
    ],
)
def test_a_schema_violation_is_recorded(stub, tmp_path, key_env, data):
    stub.push(gemini_json(data))
    verdict = ask(judge(stub, tmp_path)[0])
    assert verdict.error == "judge_schema", verdict
    assert verdict.suitable is None and verdict.scores == {}
    assert verdict.attempts == 1 and stub.count == 1
    assert "\n" not in verdict.detail


def test_a_blocked_reply_is_recorded(stub, tmp_path, key_env):
    stub.push(Reply(body={"promptFeedback": {"blockReason": "SAFETY"}}))
    verdict = ask(judge(stub, tmp_path)[0])
    assert verdict.error == "judge_empty" and "SAFETY" in verdict.detail


# -- cache and rate limit -----------------------------------------------------------------
def test_the_second_identical_call_is_read_from_the_cache(stub, tmp_path, key_env):
    stub.push(gemini_json(GOOD), gemini_json(GOOD))
    backend, _ = judge(stub, tmp_path)
    first = ask(backend)
    second = ask(backend)
    assert stub.count == 1
    assert (second.suitable, second.scores) == (first.suitable, first.scores)
    assert (second.cached, second.attempts, second.usage) == (True, 0, {})
    # other pixels are another request
    ask(backend, images={**IMAGES, "target": png((0, 255, 0))})
    assert stub.count == 2
    entries = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(entries) == 2 and all(p.suffix == ".json" for p in entries)
    for entry in entries:  # images are stored by hash, not inline
        assert len(entry.read_bytes()) < 20_000
        assert "sha256" in entry.read_text(encoding="utf-8")


def test_the_judge_takes_a_token_per_request(stub, tmp_path, key_env):
    clock = FakeClock()
    limiter = RateLimiter(12, clock=clock, sleep=clock.sleep)  # one every 5 s
    stub.push(error_reply("gemini", 429, "quota"), gemini_json(GOOD), gemini_json(GOOD))
    backend, sleep = judge(stub, tmp_path, cache=False, limiter=limiter)
    started = clock.now
    assert ask(backend).ok and ask(backend, "zh").ok
    assert stub.count == 3
    assert clock.now - started == pytest.approx(10.0)
    assert sleep.waits == [0.25]  # the backoff is separate from the limiter's waits


# -- the key -------------------------------------------------------------------------------
def test_the_key_leaks_nowhere(tmp_path, key_env, caplog):
    caplog.set_level(logging.DEBUG)
    verdicts: list[JudgeVerdict] = []
    echo = Reply(status=400, echo_headers=True)
    with StubServer("gemini", [gemini_json(GOOD)]) as server:
        backend, _ = judge(server, tmp_path, max_retries=1)
        impatient, _ = judge(server, tmp_path, max_retries=1, timeout_s=0.4)
        verdicts.append(ask(backend))
        verdicts.append(ask(backend))
        server.push(echo)
        verdicts.append(ask(backend, "zh"))
        server.push(dataclasses.replace(echo, status=429), dataclasses.replace(echo, status=429))
        verdicts.append(ask(backend, "zh"))
        server.push(Reply(delay_s=2), Reply(delay_s=2))
        verdicts.append(ask(impatient, "zh"))
        assert all(s.headers["x-goog-api-key"] == KEY for s in server.requests)
    assert [v.error for v in verdicts] == [
        None,
        None,
        "judge_http_4xx",
        "judge_http_429_exhausted",
        "judge_timeout",
    ]
    assert "request headers" in verdicts[2].detail
    for verdict in verdicts:
        assert KEY not in repr(verdict) and KEY not in json.dumps(dataclasses.asdict(verdict))
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()
    assert caplog.records
    for record in caplog.records:
        assert KEY not in record.getMessage(), record.name
    assert KEY not in caplog.text


def test_a_missing_env_var_is_a_one_line_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    backend = GeminiJudge(GeminiConfig(api_key_env=ENV), tmp_path)
    with pytest.raises(DatapipeError) as info:
        backend.load()
    assert ENV in str(info.value) and "\n" not in str(info.value)


def test_a_missing_sdk_names_the_extra(tmp_path, key_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.genai", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'datapipe\[api\]'"):
        GeminiJudge(GeminiConfig(api_key_env=ENV), None).load()
