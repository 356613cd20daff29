"""Every run reports its yield and cost from its own counts, timings and the recipe's prices."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import write_recipe
from helpers import SMALL

from datapipe.loading import load_recipe
from datapipe.recipe import CostConfig
from datapipe.records import Candidate, Group
from datapipe.runner.cost import ApiUsage, CostBasis, add_api_usage, cost_report
from datapipe.runner.local import run_local
from datapipe.runner.summary import RunSummary


def test_quickstart_reports_its_yield_per_task(quickstart_run):
    out, summary = quickstart_run
    cost = json.loads((out / "run.json").read_text())["summary"]["cost"]
    pairs = sum(summary.pairs.values())
    assert cost["renders"] == summary.renders == cost["rendered_this_run"]
    assert cost["pairs"] == pairs
    assert cost["pairs_per_render"] == pytest.approx(pairs / summary.renders, abs=1e-4)
    assert cost["pairs_per_render"] >= 2.5, "one render should feed several tasks"
    for task, n in summary.pairs_by_task().items():
        assert cost["by_task"][task]["pairs"] == n
        assert cost["by_task"][task]["pairs_per_render"] == pytest.approx(
            n / summary.renders, abs=1e-4
        )
    busy = summary.stages["render"].seconds
    assert cost["render_device"] == "cpu" and cost["gpu_seconds"] == 0.0
    assert cost["render_seconds_per_pair"] == pytest.approx(busy / pairs, abs=1e-4)
    # Every stage's CPU time counts, not the renderer's alone (OCR is most of it).
    every = sum(t.seconds for t in summary.stages.values())
    assert set(cost["cpu_seconds_by_stage_this_run"]) >= {"render", "ocr", "subject"}
    assert cost["cpu_seconds_per_render"] == pytest.approx(every / summary.renders, abs=1e-3)
    assert cost["cpu_seconds_per_pair"] == pytest.approx(every / pairs, abs=1e-3)
    assert (
        cost["cpu_seconds_by_stage_this_run"]["ocr"]
        > cost["cpu_seconds_by_stage_this_run"]["render"]
    )
    caption = summary.tables()[-1].caption
    assert "cpu-s over every CPU stage (ocr" in caption
    reasons = summary.tables()[0]
    if sum(summary.reject_reasons.values()) > summary.rejected:
        assert "a render can fail several rules" in reasons.caption


def test_gpu_seconds_per_pair_are_render_busy_seconds_times_gpus(tmp_path):
    """A 0.5 GPU share still runs on one whole device: it counts as one GPU while busy."""
    override = {**SMALL, "execution": {"stages": {"render": {"gpus": 0.5}}}}
    override["costs"] = {"gpu_hour_usd": 3.6}
    loaded = load_recipe(write_recipe(tmp_path, override))
    summary = run_local(loaded, tmp_path / "out", limit=3)
    cost = json.loads((tmp_path / "out" / "run.json").read_text())["summary"]["cost"]
    busy = summary.stages["render"].seconds
    pairs = sum(summary.pairs.values())
    assert pairs > 0 and cost["render_device"] == "gpu"
    assert cost["gpu_seconds"] == pytest.approx(busy, abs=1e-3)
    assert cost["gpu_seconds_per_pair"] == pytest.approx(busy / pairs, abs=1e-4)
    for task, n in summary.pairs_by_task().items():
        assert cost["by_task"][task]["gpu_seconds_per_pair"] == pytest.approx(busy / n, abs=1e-4)
    assert cost["usd"]["gpu"] == pytest.approx(busy / 3600 * 3.6, abs=1e-6)
    assert cost["usd"]["per_pair"] == pytest.approx(busy / 3600 * 3.6 / pairs, abs=1e-8)


def _prompted(attempts: int, cached: bool, tokens: tuple[int, int]) -> Candidate:
    candidate = Candidate(spec=None)  # type: ignore[arg-type]  # usage reads details only
    usage = {} if cached else {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]}
    candidate.details["prompt"] = {"attempts": attempts, "cached": cached, "usage": usage}
    return candidate


def test_api_usage_and_prices_give_the_stated_cost():
    group = Group("g", "single", 0, 0, "en", "food")
    group.candidates = [
        _prompted(1, False, (300, 100)),
        _prompted(3, False, (900, 250)),  # two retries, each paid
        _prompted(0, True, (0, 0)),  # from the cache: free
    ]
    summary = RunSummary(
        renders=6,
        pairs=Counter({("fill", "en"): 9, ("style", "en"): 3}),
        cost_basis=CostBasis(
            CostConfig(gpu_hour_usd=7.2, llm_input_per_mtok_usd=2.0, llm_output_per_mtok_usd=8.0),
            {"render": 1.0, "subject": 0.1},
        ),
    )
    summary.add_rendered([group])  # this invocation: 3 of the output's 6 renders
    summary.timing("render").seconds = 30.0  # 10 s a render
    summary.timing("subject").seconds = 0.3
    summary.timing("ocr").seconds = 99.0  # a CPU stage: no GPU time
    paid = ApiUsage(calls=4, cached=1, input_tokens=1200, output_tokens=350)
    assert summary.api["prompt"] == paid

    report = cost_report(summary, summary.cost_basis)
    # Measured on this invocation's 3 renders, scaled to the output's 6.
    assert report.gpu_seconds == pytest.approx((30.0 + 0.3) * 2)
    usd = report.usd()
    llm = (1200 * 2.0 + 350 * 8.0) / 1e6 * 2
    gpu = 60.6 / 3600 * 7.2
    assert usd["llm"] == pytest.approx(llm, abs=1e-6)
    assert usd["gpu"] == pytest.approx(gpu, abs=1e-6)
    assert usd["per_pair"] == pytest.approx((llm + gpu) / 12, abs=1e-8)
    data = report.to_dict()
    assert data["api_this_run"]["prompt"]["calls"] == 4
    assert data["by_task"]["style"]["gpu_seconds_per_pair"] == pytest.approx(60.6 / 3, abs=1e-4)
    assert data["pairs_per_render"] == 2.0


def test_a_run_that_rendered_nothing_reports_no_measured_cost():
    summary = RunSummary(renders=10, pairs=Counter({("fill", "en"): 20}))
    data = cost_report(summary, CostBasis()).to_dict()
    assert data["pairs_per_render"] == 2.0
    assert data["render_seconds_per_render"] is None and data["usd"]["per_pair"] is None


def test_prices_are_outside_the_recipe_hash(tmp_path):
    cheap = load_recipe(write_recipe(tmp_path, {"costs": {"gpu_hour_usd": 1}}, "a.yaml"))
    dear = load_recipe(write_recipe(tmp_path, {"costs": {"gpu_hour_usd": 9}}, "b.yaml"))
    assert cheap.recipe_hash == dear.recipe_hash
    assert cheap.generation_hash == dear.generation_hash


def test_add_api_usage_ignores_stages_without_usage():
    usage: dict[str, ApiUsage] = {}
    candidate = Candidate(spec=None)  # type: ignore[arg-type]
    candidate.details = {"ocr": {"lines": []}, "image": {"error": "x"}}
    add_api_usage(usage, [Group("g", "single", 0, 0, "en", "food", candidates=[candidate])])
    assert usage == {}


def test_llm_calls_and_tokens_are_counted_and_priced(tmp_path, monkeypatch):
    pytest.importorskip("openai")
    from servers import Seen, StubServer, openai_json

    def keep_copy(seen: Seen):
        user = json.loads(seen.body)["messages"][-1]["content"]
        return openai_json({"prompt": user, "negative_prompt": ""})  # 120 in, 80 out

    monkeypatch.setenv("DATAPIPE_TEST_KEY", "sk-test")
    with StubServer("openai", responder=keep_copy) as server:
        openai = {"base_url": server.base_url, "model": "stub", "api_key_env": "DATAPIPE_TEST_KEY"}
        override = {
            **SMALL,
            "stages": {"prompt": {"backend": "openai", "openai": openai}},
            "costs": {"llm_input_per_mtok_usd": 2.0, "llm_output_per_mtok_usd": 10.0},
        }
        loaded = load_recipe(write_recipe(tmp_path, override))
        summary = run_local(loaded, tmp_path / "out", limit=2)
        calls = server.count
    cost = json.loads((tmp_path / "out" / "run.json").read_text())["summary"]["cost"]
    assert calls == summary.renders > 0
    assert cost["api_this_run"]["prompt"] == {
        "calls": calls,
        "cached": 0,
        "input_tokens": 120 * calls,
        "output_tokens": 80 * calls,
    }
    assert cost["usd"]["llm"] == pytest.approx((120 * 2.0 + 80 * 10.0) * calls / 1e6)
