"""The bench split judged by the Gemini backend against a local generateContent stub:
verdicts are stored with each sample, unsuitable and failed calls are rejections with
their reasons, and the key appears in no output file."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest
from servers import StubServer, gemini_json
from test_bench import bench_data, write

from datapipe.io.tar import read_tar
from datapipe.loading import load_recipe
from datapipe.runner.local import run_local

pytest.importorskip("google.genai")

KEY = "sk-bench-judge-DO-NOT-LEAK-42"
ENV = "DATAPIPE_TEST_BENCH_GEMINI_KEY"
SCORES = {"instruction_following": 5, "visual_quality": 4, "text_accuracy": 5, "task_fit": 4}


def answer(seen):
    """Layout pairs are judged unsuitable, everything else passes."""
    text = json.dumps(seen.json(), ensure_ascii=False)
    suitable = "Layout" not in text and "版式" not in text
    return gemini_json(
        {"scores": SCORES, "reasons": [] if suitable else ["off layout"], "suitable": suitable}
    )


def test_gemini_judged_bench(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    server = StubServer("gemini", max_requests=400, lifetime_s=120, responder=answer).start()
    try:
        data = bench_data(
            {
                "themes": ["food"],
                "groups": {"single": 2, "rescale": 0, "style": 0, "layout": 0},
                "bench": {
                    "quotas": {"zh": 1, "en": 1},
                    "tasks": ["fill", "layout"],
                    "oversample": {"max_rounds": 2},
                    "judge": {
                        "backend": "gemini",
                        "gemini": {
                            "base_url": server.base_url,
                            "model": "gemini-stub",
                            "api_key_env": ENV,
                            "timeout_s": 5,
                            "max_retries": 1,
                            "backoff_s": 0.01,
                            "requests_per_minute": 1e6,
                        },
                    },
                },
                "costs": {"judge_input_per_mtok_usd": 0.3, "judge_output_per_mtok_usd": 2.5},
            }
        )
        out = tmp_path / "out"
        run_local(load_recipe(write(tmp_path, data)), out)
    finally:
        server.stop()
    assert server.requests, "the judge was never asked"
    run = json.loads((out / "run.json").read_text())
    met = {(q["task"], q["status"]) for q in run["bench"]["quotas"]}
    assert met == {("fill", "met"), ("layout", "unfilled")}
    samples = [
        json.loads(files["json"])
        for tar in sorted((out / "datasets" / "bench").glob("*/*.tar"))
        for _, files in read_tar(tar)
    ]
    assert {s["task"] for s in samples} == {"fill"} and len(samples) == 2
    for sample in samples:
        assert sample["judge"] == {
            "backend": "gemini",
            "suitable": True,
            "scores": SCORES,
            "reasons": [],
            "error": None,
        }
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    reasons = Counter(r["reason"] for r in rejects if r["stage"] == "tasks")
    assert reasons["judge_unsuitable"] > 0
    layout = [q for q in run["bench"]["unfilled"] if q["task"] == "layout"]
    assert layout and all("judge_unsuitable" in q["why"] for q in layout)
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    # Every judge request is in the cost report, at the stub's 900 + 60 tokens a reply.
    calls = len(server.requests)
    cost = run["summary"]["cost"]
    assert cost["api_this_run"]["judge"] == {
        "calls": calls,
        "cached": 0,
        "input_tokens": 900 * calls,
        "output_tokens": 60 * calls,
    }
    assert cost["usd"]["judge"] == pytest.approx((900 * 0.3 + 60 * 2.5) * calls / 1e6)
    assert cost["usd"]["total"] == pytest.approx(cost["usd"]["judge"])  # nothing else priced
