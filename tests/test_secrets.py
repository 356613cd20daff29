"""The API key is read from the environment and appears nowhere else.

The cluster recipe (pipelines/train.yaml, with the procedural renderer and the renderer's
masks in place of the GPU stages, and CLIP off) runs its openai prompt stage against the
local stub server through `datapipe run --limit`, with a recognisable key in the
environment. The server answers with good replies, error replies that echo the request
headers (the key among them: 400, 401, 429, 503), a reply whose text repeats the key, and
non-JSON replies holding the key and an Authorization header. Then the key (or its tail)
is in no file under OUT (tar members, JSON, parquet values decoded, the LLM cache), in no
log record (every logger at DEBUG), and not in the CLI's output. The Gemini judge backend
is driven directly with the same key and the same kinds of hostile replies.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT
from servers import Reply, Seen, StubServer, gemini_json, gemini_reply, openai_json, openai_reply
from typer.testing import CliRunner

from datapipe.cli import app
from datapipe.io.candidate_store import CandidateStore

pytest.importorskip("openai")
pytest.importorskip("google.genai")
pytest.importorskip("tenacity")

KEY = "sk-proj-SECRET-datapipe-7f3a9c1e5b2d4a68"
GEMINI_KEY = "AIzaSyD-SECRET-datapipe-0123456789abcdef"
ENV = "DATAPIPE_SECRET_TEST_KEY"
COPY_LINE = re.compile(r'^- (".*")$', re.MULTILINE)


def secrets(key: str) -> list[bytes]:
    """The key and its distinctive tail (a partial redaction would leave that)."""
    return [key.encode(), key[-16:].encode()]


def cluster_recipe(folder: Path, base_url: str) -> Path:
    """pipelines/train.yaml with CPU stand-ins for the GPU stages and the stub as API."""
    data = yaml.safe_load((ROOT / "pipelines" / "train.yaml").read_text(encoding="utf-8"))
    data["libraries"] = {
        "entities": str(ROOT / "entity_libraries"),
        "styles": str(ROOT / "style_libraries"),
        "prompts": str(ROOT / "prompts"),
    }
    data["image"] = {"long_side": 384, "aspect_ratios": ["3:4", "1:1", "4:3"]}
    data["block_size"] = 4
    stages = data["stages"]
    stages["prompt"]["openai"].update(
        base_url=base_url,
        model="stub-model",
        api_key_env=ENV,
        timeout_s=5,
        max_retries=1,
        backoff_s=0.01,
        requests_per_minute=60000,
    )
    stages["render"] = {"backend": "procedural", "faults": {"rate": 0.0}}
    stages["subject"] = {"backend": "pixels"}
    stages["clip"] = {"enabled": False}
    stages["ocr"].update(det_limit_side_len=480)
    for reason in ("subject_uncertain", "prompt_mismatch"):  # scores of SAM-2 and CLIP
        del data["thresholds"][reason]
    data["execution"]["stages"].pop("clip")
    data["tasks"]["rescale"].pop("min_clip_similarity")
    data["tasks"]["style"].pop("max_clip_similarity")
    del data["bench"]  # its judge is Gemini: tests/stages/test_bench_stage.py covers it
    path = folder / "train-cpu.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def leaky_openai(counter: itertools.count):
    """Good replies and hostile ones, in a fixed cycle; the key is taken from the request
    as a careless or hostile server would."""

    def reply(seen: Seen) -> Reply:
        sent = seen.headers.get("authorization", "")
        user = json.loads(seen.body)["messages"][-1]["content"]
        quoted = " ".join(COPY_LINE.findall(user))
        n = next(counter) % 8
        if n == 0:
            return openai_json({"prompt": f"A vivid poster. {quoted}", "negative_prompt": "blur"})
        if n == 1:
            return Reply(status=400, echo_headers=True)
        if n == 2:
            return Reply(status=401, echo_headers=True)
        if n in (3, 4):  # 429 then 503 on the retry: exhausted, both messages echo headers
            return Reply(status=429 if n == 3 else 503, echo_headers=True)
        if n == 5:  # a "good" reply that repeats the key inside the prompt it returns
            prompt = f"A poster. {quoted} Debug: {sent} key={sent.removeprefix('Bearer ')}"
            return openai_json({"prompt": prompt, "negative_prompt": f"no {sent}"})
        return openai_reply(f"not JSON. headers: authorization: {sent}; {seen.headers}")

    return reply


def walk_out(out: Path, key: str) -> int:
    """Every file under OUT, raw and (parquet) decoded: no key. Returns files checked."""
    checked = 0
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for secret in secrets(key):
            assert secret not in data, path
        if path.suffix == ".parquet":  # compressed pages: look at the values
            text = json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
            for secret in secrets(key):
                assert secret.decode() not in text, path
        checked += 1
    return checked


@pytest.fixture
def all_debug_logs(caplog):
    """caplog at DEBUG on the root logger and on every logger that exists."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def assert_no_key_in_logs(caplog: pytest.LogCaptureFixture, key: str) -> None:
    assert any(r.levelno == logging.DEBUG for r in caplog.records), "DEBUG was not captured"
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        for secret in secrets(key):
            assert secret.decode() not in text, (record.name, text[:200])
    for secret in secrets(key):
        assert secret.decode() not in caplog.text


def test_the_cluster_prompt_stage_leaks_the_key_nowhere(tmp_path, monkeypatch, all_debug_logs):
    monkeypatch.setenv(ENV, KEY)
    with StubServer("openai", responder=leaky_openai(itertools.count()), max_requests=200) as api:
        recipe = cluster_recipe(tmp_path, api.base_url)
        out = tmp_path / "out"
        result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out), "--limit", "6"])
        assert result.exit_code == 0, (result.output, result.exception)
        seen = list(api.requests)
    assert seen and all(s.headers["authorization"] == f"Bearer {KEY}" for s in seen)
    statuses = {n % 8 for n in range(len(seen))}
    assert statuses == set(range(8)), "every kind of reply was served"

    for secret in secrets(KEY):
        assert secret.decode() not in result.output
        assert secret.decode() not in (result.stderr if result.stderr_bytes else "")
    assert walk_out(out, KEY) > 10
    cache = list((out / "cache").rglob("*.json"))
    assert cache and any("***" in p.read_text(encoding="utf-8") for p in cache)
    assert_no_key_in_logs(all_debug_logs, KEY)

    # the failures were recorded with their (redacted) messages, not raised
    store = CandidateStore(out)
    prompts = [c.details["prompt"] for b in (0, 1) for g in store.load(b) for c in g.candidates]
    errors = {p["error"] for p in prompts}
    assert {None, "llm_http_4xx", "llm_auth", "llm_http_5xx_exhausted", "llm_bad_json"} <= errors
    assert any("request headers were" in p["detail"] for p in prompts)


def test_a_missing_key_is_one_line_naming_the_variable_and_out_is_not_made(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # another variable's key must not be used or shown
    recipe = cluster_recipe(tmp_path, "http://127.0.0.1:9/v1")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out), "--limit", "2"])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and ENV in lines[0] and "Traceback" not in result.output
    assert KEY not in result.output and KEY[-16:] not in result.output
    assert not out.exists()


# -- the Gemini judge --------------------------------------------------------------------------
GOOD = {
    "scores": {"instruction_following": 5, "visual_quality": 4, "text_accuracy": 5, "task_fit": 4},
    "reasons": [],
    "suitable": True,
}


def png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_gemini_judge_leaks_the_key_nowhere(tmp_path, monkeypatch, all_debug_logs):
    from datapipe.backends.api_common import DETAIL_CHARS
    from datapipe.backends.judge_gemini import GeminiJudge
    from datapipe.recipe import GeminiConfig

    monkeypatch.setenv(ENV, GEMINI_KEY)
    echo = Reply(status=400, echo_headers=True)
    replies = [
        gemini_json(GOOD),
        echo,
        dataclasses.replace(echo, status=401),
        dataclasses.replace(echo, status=403),
        dataclasses.replace(echo, status=429),
        dataclasses.replace(echo, status=500),
        gemini_reply(f"not JSON; x-goog-api-key: {GEMINI_KEY}; key={GEMINI_KEY}"),
        gemini_reply(f"still not JSON {GEMINI_KEY}"),
    ]
    verdicts = []
    with StubServer("gemini", replies, max_requests=40) as server:
        config = GeminiConfig(
            base_url=server.base_url,
            model="gemini-stub",
            api_key_env=ENV,
            timeout_s=5,
            max_retries=1,
            backoff_s=0.01,
            requests_per_minute=60000,
        )
        judge = GeminiJudge(config, tmp_path / "cache", sleep=lambda _s: None)
        images = {"source": png(), "target": png()}
        for i in range(6):  # a new instruction each time: no cache hits
            verdicts.append(judge.judge("extend", "en", f"Extend poster {i}.", images))
        judge.close()
        assert all(s.headers["x-goog-api-key"] == GEMINI_KEY for s in server.requests)
    errors = [v.error for v in verdicts]
    assert errors == [
        None,
        "judge_http_4xx",
        "judge_auth",
        "judge_auth",
        "judge_http_5xx_exhausted",
        "judge_bad_json",
    ], errors
    assert "request headers were" in verdicts[1].detail
    for verdict in verdicts:
        text = repr(verdict) + json.dumps(dataclasses.asdict(verdict))
        assert len(verdict.detail) <= DETAIL_CHARS
        for secret in secrets(GEMINI_KEY):
            assert secret.decode() not in text
    walk_out(tmp_path / "cache", GEMINI_KEY)
    assert_no_key_in_logs(all_debug_logs, GEMINI_KEY)


def test_a_gemini_verdict_that_repeats_the_key_does_not_carry_it(tmp_path, monkeypatch):
    from datapipe.backends.judge_gemini import GeminiJudge
    from datapipe.recipe import GeminiConfig

    monkeypatch.setenv(ENV, GEMINI_KEY)
    echoed = {**GOOD, "reasons": [f"your key is {GEMINI_KEY}"], "suitable": False}
    with StubServer("gemini", [gemini_json(echoed)]) as server:
        config = GeminiConfig(base_url=server.base_url, model="gemini-stub", api_key_env=ENV)
        judge = GeminiJudge(config, tmp_path / "cache")
        verdict = judge.judge("extend", "en", "Extend it.", {"source": png(), "target": png()})
        judge.close()
    assert verdict.ok
    walk_out(tmp_path / "cache", GEMINI_KEY)  # passes: the cache scrubs every key it knows
    assert GEMINI_KEY not in json.dumps(dataclasses.asdict(verdict))
