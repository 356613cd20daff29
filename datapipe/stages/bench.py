"""BenchStage: from a bench group's candidate samples to at most one benchmark sample.

A bench group serves one task (one prompt per benchmark sample). Its samples of that
task are tried in order: a sample whose task needs a subject mask and has none is
refused, the others go to the judge until one passes; the rest are recorded as
spares. The sample that passed counts toward its quota, or is recorded as over quota
once the quota is full. Every sample not taken is a pair rejection with its reason,
and every group that gave nothing adds its first reason to its quota's account.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from datapipe.backends.base import JudgeVerdict
from datapipe.backends.judge_rules import RulesJudge
from datapipe.bench import BenchState
from datapipe.io.layout import OutputLayout
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.stages.base import Resources, Stage

if TYPE_CHECKING:
    from datapipe.recipe import BenchConfig, JudgeConfig

JUDGE = "judge"
"""The stage name the judge's API usage is recorded under (the cost report prices it)."""
Judge = Callable[[Sample, Candidate], JudgeVerdict]


@dataclass(frozen=True)
class BenchSettings:
    bench: BenchConfig
    prompts: Path
    """The prompts library folder, which holds the judge's templates."""


def rules_judge(config: JudgeConfig) -> Judge:
    judge = RulesJudge(config)

    def run(sample: Sample, target: Candidate) -> JudgeVerdict:
        return judge.judge(sample.task, {**target.scores, **sample.meta["scores"]["pair"]})

    return run


def gemini_judge(settings: BenchSettings, out: Path | None) -> tuple[Judge, Callable[[], None]]:
    from datapipe.backends.judge_gemini import GeminiJudge

    judge = GeminiJudge(
        settings.bench.judge.gemini,
        None if out is None else OutputLayout(out).cache("judge"),
        prompts_dir=settings.prompts,
    )
    judge.load()

    def run(sample: Sample, _target: Candidate) -> JudgeVerdict:
        images = {"target": sample.target}
        if len(sample.sources) == 1:
            images["source"] = sample.sources[0]
        else:
            images |= {f"source_{i}": s for i, s in enumerate(sample.sources)}
        if sample.mask is not None:
            images["mask"] = sample.mask
        return judge.judge(sample.task, sample.language, sample.instruction, images)

    return run, judge.close


def failed_checks(verdict: JudgeVerdict, min_scores: dict[str, int]) -> list[tuple[str, str]]:
    """(reason, detail) for each way a verdict falls short; empty when it passes."""
    if not verdict.ok:
        return [(verdict.error or "judge_error", verdict.detail)]
    out = [
        (f"judge_low_{name}", f"{name} {verdict.scores[name]}/5 < {floor}")
        for name, floor in min_scores.items()
        if name in verdict.scores and verdict.scores[name] < floor
    ]
    if not verdict.suitable and not out:
        out.append(("judge_unsuitable", "; ".join(verdict.reasons)[:500]))
    return out


class BenchStage(Stage):
    name = "bench"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 16

    def __init__(self, settings: BenchSettings, state: BenchState, out: Path | None = None) -> None:
        """`state`: the bench quotas, shared with the planner of the bench rounds."""
        super().__init__(settings, out)
        self.settings = settings
        self.config = settings.bench
        self.state = state
        self.judge: Judge | None = None
        self._close: Callable[[], None] | None = None

    def setup(self) -> None:
        if self.config.judge.backend == "gemini":
            self.judge, self._close = gemini_judge(self.settings, self.out)
        else:
            self.judge = rules_judge(self.config.judge)

    def teardown(self) -> None:
        if self._close is not None:
            self._close()

    def process_batch(self, groups: list[Group]) -> list[Group]:
        with ThreadPoolExecutor(max_workers=8) as pool:  # judge calls of a batch in parallel
            chosen = list(pool.map(self._choose, groups))
        for group, (sample, rejects, why, usage) in zip(groups, chosen, strict=True):
            cell = self.state.cell(group)
            state = self.state.states[cell.key]
            state.groups += 1
            group.samples = []
            group.pair_rejects.extend(rejects)
            group.api_usage.extend(usage)
            if sample is None:
                state.reasons[why] += 1
                continue
            state.passed += 1
            if state.accepted < cell.quota:
                state.accepted += 1
                group.samples = [sample]
            else:
                group.pair_rejects.append(
                    PairReject(
                        sample.task,
                        sample.meta["lineage"]["target"],
                        "bench_over_quota",
                        f"quota {cell.key} already holds {cell.quota} samples",
                    )
                )
        return groups

    def _choose(
        self, group: Group
    ) -> tuple[Sample | None, list[PairReject], str, list[dict[str, Any]]]:
        """The group's benchmark sample (or None), the samples refused, the first reason
        the group gave nothing, and what each judge verdict cost."""
        by_key = {c.key: c for c in group.candidates}
        rejects: list[PairReject] = []
        usage: list[dict[str, Any]] = []
        chosen: Sample | None = None
        first_reason = ""
        for sample in (s for s in group.samples if s.task == group.task):
            target = by_key[sample.meta["lineage"]["target"]]
            if chosen is not None:
                rejects.append(
                    PairReject(sample.task, target.key, "bench_spare", f"{chosen.key} was taken")
                )
                continue
            if sample.task in self.config.require_masks and not _has_mask(target):
                problems = [("bench_mask_missing", "the target has no subject mask")]
                verdict = None
            else:
                verdict = self.judge(sample, target)
                if verdict.attempts or verdict.cached:  # an API judge (the rules cost nothing)
                    usage.append(
                        {
                            "stage": JUDGE,
                            "attempts": verdict.attempts,
                            "cached": verdict.cached,
                            "usage": verdict.usage,
                        }
                    )
                problems = failed_checks(verdict, self.config.judge.min_scores)
                sample.meta["judge"] = _judge_record(verdict, self.config.judge.backend)
            if problems:
                first_reason = first_reason or problems[0][0]
                scores = {
                    f"judge.{k}": float(v) for k, v in (verdict.scores if verdict else {}).items()
                }
                rejects.extend(
                    PairReject(sample.task, target.key, reason, detail, scores)
                    for reason, detail in problems
                )
                continue
            chosen = sample
        if chosen is None and not first_reason:
            first_reason = _upstream_reason(group)
        return chosen, rejects, first_reason, usage

    def items(self, groups: list[Group]) -> int:
        return len(groups)


def _has_mask(candidate: Candidate) -> bool:
    return candidate.subject_mask is not None and bool(candidate.scores.get("subject.area"))


def _judge_record(verdict: JudgeVerdict, backend: str) -> dict[str, Any]:
    return {
        "backend": backend,
        "suitable": verdict.suitable,
        "scores": verdict.scores,
        "reasons": verdict.reasons,
        "error": verdict.error,
    }


def _upstream_reason(group: Group) -> str:
    """Why a group made no sample of its task: a pair rejection, else a render's."""
    for reject in group.pair_rejects:
        if reject.task == group.task:
            return reject.reason
    for candidate in group.candidates:
        if candidate.verdict is not None and not candidate.verdict.keep:
            return candidate.verdict.reasons[0] if candidate.verdict.reasons else "no_verdict"
    return "no_sample"
