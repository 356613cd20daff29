"""LLM prompt wording through the pipeline, against a local OpenAI-compatible server.

A reply that keeps every copy line is used; one that drops a line is recorded as the
candidate's prompt error, the render is skipped (no GPU second spent) and the filter
rejects it. Replies are cached in the output, so a rerun pays nothing, and the API key
appears in no output file.
"""

from __future__ import annotations

import itertools
import json
import shutil

import pytest
from conftest import quickstart_data
from servers import Seen, StubServer, openai_json

from datapipe.io.candidate_store import CandidateStore
from datapipe.loading import load_recipe
from datapipe.runner.local import run_local

pytest.importorskip("openai")
KEY = "sk-test-DO-NOT-LEAK-987"


def rewording(counter: itertools.count):
    """Every third reply drops the copy text; the others keep the whole request text."""

    def reply(seen: Seen):
        user = json.loads(seen.body)["messages"][-1]["content"]
        if next(counter) % 3 == 2:
            return openai_json({"prompt": "A poster with no text at all.", "negative_prompt": ""})
        return openai_json({"prompt": f"Reworded poster prompt. {user}", "negative_prompt": "blur"})

    return reply


def test_llm_wording_keeps_copy_or_is_rejected_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAPIPE_TEST_KEY", KEY)
    with StubServer("openai", responder=rewording(itertools.count())) as server:
        data = quickstart_data()
        data["stages"]["render"]["faults"]["rate"] = 0.0
        data["stages"]["prompt"] = {
            "backend": "openai",
            "openai": {
                "base_url": server.base_url,
                "model": "stub-model",
                "api_key_env": "DATAPIPE_TEST_KEY",
                "max_retries": 1,
                "backoff_s": 0.01,
                "requests_per_minute": 6000,
            },
        }
        data["thresholds"]["prompt_rejected"] = {"score": "prompt.ok", "min": 1}
        path = tmp_path / "recipe.yaml"
        path.write_text(json.dumps(data, ensure_ascii=False))
        loaded = load_recipe(path)
        out = tmp_path / "out"
        summary = run_local(loaded, out, limit=4)
        requests = server.count
        assert requests == summary.renders

        candidates = [c for g in CandidateStore(out).load(0) for c in g.candidates]
        rejected = [c for c in candidates if c.details["prompt"]["error"]]
        used = [c for c in candidates if not c.details["prompt"]["error"]]
        assert rejected and used
        for candidate in rejected:
            assert candidate.details["prompt"]["error"] == "llm_copy_changed"
            assert candidate.image == b"" and candidate.scores["render.ok"] == 0.0
        for candidate in used:
            assert candidate.spec.prompt.startswith("Reworded poster prompt.")
            assert all(line.text in candidate.spec.prompt for line in candidate.spec.copy)
            assert candidate.spec.negative_prompt == "blur" and candidate.image
        assert summary.reject_reasons["prompt_rejected"] == len(rejected)
        assert list((out / "cache" / "llm").rglob("*.json"))

        for name in ("candidates", "blocks", "datasets"):
            shutil.rmtree(out / name)  # every block must be redone: only the cache is left
        again = run_local(loaded, out, limit=4)
        assert again.rendered == summary.rendered
        assert server.count == requests, "redoing the blocks paid for the requests again"
        assert again.to_dict()["pairs"] == summary.to_dict()["pairs"]

    for file in out.rglob("*"):
        if file.is_file():
            assert KEY.encode() not in file.read_bytes(), file
