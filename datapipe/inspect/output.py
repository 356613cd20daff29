"""Open a run's output directory and walk it: splits, tasks, samples, candidates, rejects.

    import datapipe.inspect as dpi

    out = dpi.open("out/quickstart")       # Output: splits, counts, candidates, rejects
    fill = out.task("fill")                # TaskView (split "train" by default)
    len(fill), fill.stats                  # the numbers of stats.json
    for sample in fill: sample.source, sample.mask, sample.target, sample.instruction
    fill.show(8)                           # PIL grid: source (mask in red) -> target
    fill.scores()                          # pandas DataFrame, one row per sample
    fill.hist()                            # matplotlib figure, thresholds as vertical lines
    out.rejects.by_reason(), out.rejects.show(reason="blank")

Reading needs only the core dependencies; tables and histograms need the `inspect`
extra (pandas, matplotlib).
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from datapipe.errors import MissingDependencyError, OutputError
from datapipe.inspect import html as views
from datapipe.inspect.draw import THUMB, Cell, decode_image, draw_grid
from datapipe.inspect.rules import (
    Threshold,
    candidate_thresholds,
    pair_thresholds,
)
from datapipe.io.candidate_store import SCORE_PREFIX
from datapipe.io.layout import (
    DATASETS,
    RUN_JSON,
    OutputLayout,
    stats_path,
    tar_of,
    task_manifests,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from datapipe.inspect.rejects import RejectsView

DEFAULT_SPLIT = "train"
_SHARD = re.compile(r"-(\d+)(?:-(\d+))?$")


def require_pandas() -> Any:
    try:
        import pandas
    except ModuleNotFoundError:
        raise MissingDependencyError(
            "tables need pandas", fix="pip install 'datapipe[inspect]'"
        ) from None
    return pandas


def shard_order(path: Path) -> tuple[int, int, str]:
    """Shards in block order, each block's parts in order (`-000003` before `-000003-1`)."""
    match = _SHARD.search(path.stem)
    if not match:
        return (1 << 62, 0, path.name)
    return (int(match[1]), int(match[2] or 0), path.name)


def read_members(
    path: Path, wanted: set[str] | None = None, keys: set[str] | None = None
) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) of a WebDataset tar in file order, reading only the
    extensions in `wanted` and the keys in `keys` (all when None)."""
    current_key: str | None = None
    current: dict[str, bytes] = {}
    with tarfile.open(path, "r") as archive:
        for member in archive:
            if not member.isfile():
                continue
            key, _, ext = member.name.partition(".")
            if key != current_key:
                if current_key is not None and (keys is None or current_key in keys):
                    yield current_key, current
                current_key, current = key, {}
            if (wanted is not None and ext not in wanted) or (keys is not None and key not in keys):
                continue
            handle = archive.extractfile(member)
            current[ext] = handle.read() if handle else b""
    if current_key is not None and (keys is None or current_key in keys):
        yield current_key, current


def _available(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


class Sample:
    """One training pair from a shard, decoded on demand.

    `sources` (list) / `source` (the first), `target` and `mask` (or None) are PIL
    images; `instruction` is the text; `meta` is the sample's JSON; `scores` is one
    flat dict of the target's scores and the pair scores.
    """

    def __init__(self, key: str, files: dict[str, bytes], shard: str | None = None) -> None:
        self.key = key
        self.files = files
        self.shard = shard

    def __repr__(self) -> str:
        return f"Sample({self.key!r}, task={self.task!r}, language={self.language!r})"

    @cached_property
    def meta(self) -> dict[str, Any]:
        return json.loads(self.files["json"]) if "json" in self.files else {}

    @property
    def task(self) -> str:
        return self.meta.get("task", "")

    @property
    def split(self) -> str:
        return self.meta.get("split", "")

    @property
    def language(self) -> str:
        return self.meta.get("language", "")

    @property
    def theme(self) -> str:
        return self.meta.get("theme", "")

    @property
    def instruction(self) -> str:
        data = self.files.get("txt")
        return data.decode("utf-8") if data is not None else self.meta.get("instruction", "")

    @property
    def params(self) -> dict[str, Any]:
        return self.meta.get("params", {})

    @property
    def source_names(self) -> list[str]:
        if "source.png" in self.files:
            return ["source.png"]
        numbered = [k for k in self.files if re.fullmatch(r"source_\d+\.png", k)]
        return sorted(numbered, key=lambda k: int(k[7:-4]))

    @cached_property
    def sources(self) -> list[Image.Image | None]:
        return [decode_image(self.files[name]) for name in self.source_names]

    @property
    def source(self) -> Image.Image | None:
        return self.sources[0] if self.sources else None

    @cached_property
    def target(self) -> Image.Image | None:
        return decode_image(self.files.get("target.png"))

    @cached_property
    def mask(self) -> Image.Image | None:
        return decode_image(self.files.get("mask.png"))

    @property
    def scores(self) -> dict[str, float | None]:
        scores = self.meta.get("scores", {})
        return {**scores.get("target", {}), **scores.get("pair", {})}

    def cell(self) -> Cell:
        header = f"{self.task} · {self.language} · {self.key}"
        return Cell(
            target=self.target,
            sources=list(self.sources),
            mask=self.mask,
            header=header,
            text=self.instruction,
        )

    def show(self, thumb: int = 256) -> Image.Image:
        """This sample as a one-cell grid: source(s) (mask in red) -> target, instruction."""
        return draw_grid([self.cell()], columns=1, thumb=thumb)

    def _repr_html_(self) -> str:
        return views.sample_html(self)


class TaskView:
    """The samples of one task in one split: counts, iteration, scores, pictures."""

    def __init__(self, output: Output, split: str, task: str) -> None:
        self.output = output
        self.split = split
        self.task = task
        self.root = output.layout.task_dir(split, task)

    def __repr__(self) -> str:
        return f"TaskView({self.split}/{self.task}: {len(self)} samples)"

    @property
    def manifests(self) -> list[Path]:
        """Committed shards' manifests (a tar without its manifest is not committed)."""
        return sorted(task_manifests(self.root), key=shard_order)

    @property
    def shards(self) -> list[Path]:
        return [tar_of(m) for m in self.manifests]

    @cached_property
    def stats(self) -> dict[str, Any]:
        """stats.json as the run wrote it (empty when the task has none yet)."""
        path = stats_path(self.root)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def __len__(self) -> int:
        if "samples" in self.stats:
            return int(self.stats["samples"])
        return sum(pq.read_metadata(m).num_rows for m in self.manifests)

    def manifest(self) -> pa.Table:
        """Every manifest row (key, shard, language, instruction, params_json ...)."""
        tables = [pq.read_table(m) for m in self.manifests]
        if not tables:
            from datapipe.io.shard_sink import MANIFEST_SCHEMA

            return MANIFEST_SCHEMA.empty_table()
        return pa.concat_tables(tables)

    def __iter__(self) -> Iterator[Sample]:
        return self.samples()

    def samples(
        self, limit: int | None = None, language: str | None = None, keys: set[str] | None = None
    ) -> Iterator[Sample]:
        """Samples in shard order; `language` and `keys` select, `limit` stops early."""
        count = 0
        for tar in self.shards:
            for key, files in read_members(tar, keys=keys):
                sample = Sample(key, files, tar.name)
                if language is not None and sample.language != language:
                    continue
                yield sample
                count += 1
                if limit is not None and count >= limit:
                    return

    def __getitem__(self, item: int | str) -> Sample:
        """By position in shard order, or by sample key."""
        if isinstance(item, str):
            for sample in self.samples(keys={item}):
                return sample
            raise KeyError(f"no sample {item!r} in {self.split}/{self.task}")
        index = item if item >= 0 else len(self) + item
        if index < 0:
            raise IndexError(item)
        for i, sample in enumerate(self.samples()):
            if i == index:
                return sample
        raise IndexError(item)

    def pick(self, n: int, seed: int | None = None, language: str | None = None) -> list[Sample]:
        """n samples: the first ones, or a seeded random choice over the manifests."""
        if seed is None:
            return list(self.samples(limit=n, language=language))
        import random

        table = self.manifest()
        rows = table.select(["key", "language"]).to_pylist()
        keys = [r["key"] for r in rows if language is None or r["language"] == language]
        chosen = set(random.Random(seed).sample(keys, min(n, len(keys))))
        found = {s.key: s for s in self.samples(keys=chosen)}
        return [found[k] for k in keys if k in found]

    def show(
        self,
        n: int = 8,
        columns: int = 2,
        thumb: int = THUMB,
        seed: int | None = None,
        language: str | None = None,
    ) -> Image.Image:
        """A grid of n samples: source(s) -> target, the mask tinted red on the source,
        the instruction under each. Returns a PIL image (Jupyter shows it inline)."""
        cells = [s.cell() for s in self.pick(n, seed=seed, language=language)]
        return draw_grid(cells, columns=columns, thumb=thumb)

    def score_rows(self) -> list[dict[str, Any]]:
        """One flat dict per sample, read from the shards' JSON members only."""
        rows = []
        for tar in self.shards:
            for key, files in read_members(tar, wanted={"json"}):
                meta = json.loads(files["json"])
                rows.append(score_row(key, tar.name, meta))
        return rows

    def scores(self) -> pd.DataFrame:
        """One row per sample: ids, language, entity, style, every target score under its
        recipe name (`quality.std` ...), pair scores (`pair.*`) and params (`param.*`)."""
        return require_pandas().DataFrame(self.score_rows())

    def scores_arrow(self) -> pa.Table:
        return pa.Table.from_pylist(self.score_rows())

    @property
    def thresholds(self) -> list[Threshold]:
        """The candidate thresholds and this task's pair checks, as the run applied them."""
        recipe = self.output.recipe
        return candidate_thresholds(recipe) + pair_thresholds(recipe, self.task)

    def table(self, limit: int = 20) -> views.ScoresTable:
        """The first `limit` rows of the scores table with thumbnails, for Jupyter."""
        return views.ScoresTable(self, limit)

    def hist(self, scores: list[str] | None = None, bins: int = 30, columns: int = 3) -> Figure:
        """Histograms of the samples' scores with the thresholds as vertical lines.

        Default scores: those a candidate threshold uses that vary over the samples (a
        score every kept sample shares says nothing), and every pair check of the task.
        """
        from datapipe.inspect.charts import default_scores, score_histograms

        frame = self.scores()
        if scores is None:
            pairs = pair_thresholds(self.output.recipe, self.task)
            scores = default_scores(frame, candidate_thresholds(self.output.recipe))
            scores += [
                s for s in dict.fromkeys(t.score for t in pairs) if s in frame and s not in scores
            ]
        return score_histograms(
            frame,
            self.thresholds,
            scores=scores,
            groups=None,
            bins=bins,
            columns=columns,
            title=f"{self.split}/{self.task}: {len(frame)} samples",
        )

    def _repr_html_(self) -> str:
        return views.task_html(self)


class SplitView:
    """The tasks of one split."""

    def __init__(self, output: Output, split: str) -> None:
        self.output = output
        self.split = split

    def __repr__(self) -> str:
        return f"SplitView({self.split}: {', '.join(self.tasks)})"

    @property
    def tasks(self) -> list[str]:
        return self.output.tasks(self.split)

    def task(self, task: str) -> TaskView:
        return self.output.task(task, self.split)

    __getitem__ = task

    def __iter__(self) -> Iterator[TaskView]:
        return (self.task(t) for t in self.tasks)

    def _repr_html_(self) -> str:
        return views.split_html(self)


def score_row(key: str, shard: str, meta: dict[str, Any]) -> dict[str, Any]:
    lineage = meta.get("lineage", {})
    row: dict[str, Any] = {
        "key": key,
        "task": meta.get("task"),
        "split": meta.get("split"),
        "language": meta.get("language"),
        "theme": meta.get("theme"),
        "entity": meta.get("entity", {}).get("name"),
        "entity_id": meta.get("entity", {}).get("id"),
        "style": meta.get("style", {}).get("name"),
        "style_id": meta.get("style", {}).get("id"),
        "layout": meta.get("layout"),
        "aspect_ratio": meta.get("aspect_ratio"),
        "shard": shard,
        "block": lineage.get("block"),
        "group_id": lineage.get("group_id"),
        "target_key": lineage.get("target"),
        "instruction": meta.get("instruction"),
    }
    scores = meta.get("scores", {})
    for name, value in sorted(scores.get("target", {}).items()):
        row[name] = value
    for name, value in sorted(scores.get("pair", {}).items()):
        row[name if name.startswith("pair.") else f"pair.{name}"] = value
    for name, value in sorted(meta.get("params", {}).items()):
        if isinstance(value, list | dict):
            value = json.dumps(value, ensure_ascii=False)
        row[f"param.{name}"] = value
    return row


class Output:
    """A run's output directory: `run.json`, `datasets/`, `candidates/`, `rejects.parquet`."""

    def __init__(self, path: str | Path) -> None:
        root = Path(path)
        if not root.is_dir():
            raise OutputError(f"no output directory at {root}{_nearby_outputs(root)}")
        if not OutputLayout(root).is_output():
            inside = sorted(p.name for p in root.iterdir())[:12]
            raise OutputError(
                f"{root} is not a datapipe output: it has no {RUN_JSON} and no {DATASETS}/ "
                f"(it holds: {_available(inside)})",
                fix="pass the --out directory of `datapipe run`",
            )
        self.path = root
        self.layout = OutputLayout(root)

    def __repr__(self) -> str:
        return f"Output({str(self.path)!r})"

    @cached_property
    def run(self) -> dict[str, Any]:
        """run.json (empty while a run has not finished)."""
        path = self.layout.run_json
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    @property
    def recipe(self) -> dict[str, Any]:
        """The resolved recipe the run used."""
        return self.run.get("recipe", {})

    @property
    def thresholds(self) -> list[Threshold]:
        return candidate_thresholds(self.recipe)

    @property
    def splits(self) -> list[str]:
        root = self.layout.datasets
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def tasks(self, split: str = DEFAULT_SPLIT) -> list[str]:
        self._check_split(split)
        root = self.layout.split_dir(split)
        return sorted(p.name for p in root.iterdir() if p.is_dir())

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise OutputError(
                f"no split {split!r} in {self.layout.datasets} (splits: {_available(self.splits)})"
            )

    def split(self, split: str = DEFAULT_SPLIT) -> SplitView:
        self._check_split(split)
        return SplitView(self, split)

    def task(self, task: str, split: str = DEFAULT_SPLIT) -> TaskView:
        tasks = self.tasks(split)
        if task not in tasks:
            raise OutputError(
                f"no task {task!r} in split {split!r} of {self.path} (tasks: {_available(tasks)})"
            )
        return TaskView(self, split, task)

    def __getitem__(self, item: str | tuple[str, str]) -> TaskView | SplitView:
        """out["fill"] (split train), out["train", "fill"], or out["train"] for a split."""
        if isinstance(item, tuple):
            split, task = item
            return self.task(task, split)
        if item in self.splits:
            return self.split(item)
        return self.task(item)

    def stats(self) -> list[dict[str, Any]]:
        """Every stats.json, split by split, task by task."""
        return [self.task(t, s).stats for s in self.splits for t in self.tasks(s)]

    def count_rows(self) -> list[dict[str, Any]]:
        """split, task, language, samples: from stats.json (language "all" is the total)."""
        rows = []
        for stats in self.stats():
            base = {"split": stats["split"], "task": stats["task"]}
            rows.append({**base, "language": "all", "samples": stats["samples"]})
            for language, n in stats.get("by_language", {}).items():
                rows.append({**base, "language": language, "samples": n})
        return rows

    def counts(self) -> pd.DataFrame:
        """Samples per split and task (rows) and language (columns), plus the total."""
        pandas = require_pandas()
        rows = self.count_rows()
        if not rows:
            return pandas.DataFrame(columns=["split", "task", "total"])
        frame = pandas.DataFrame(rows).pivot_table(
            index=["split", "task"], columns="language", values="samples", fill_value=0
        )
        frame = frame.astype(int).rename(columns={"all": "total"})
        ordered = [c for c in frame.columns if c != "total"] + ["total"]
        frame.columns.name = None
        return frame[ordered]

    @cached_property
    def reject_rows(self) -> list[dict[str, Any]]:
        """rejects.parquet as dicts; while a run is not finished, the committed blocks'
        parts (`blocks/block-NNNNNN.rejects.parquet`) that it is built from."""
        path = self.layout.rejects
        parts = self.layout.all_block_rejects()
        if path.is_file() and (self.run.get("status", "finished") == "finished" or not parts):
            return pq.read_table(path).to_pylist()
        return [row for part in parts for row in pq.read_table(part).to_pylist()]

    def candidate_rows(self) -> list[dict[str, Any]]:
        """One dict per render in the candidate store with its verdict: `kept` and
        `reasons` as rejects.parquet recorded them, scores under their recipe names."""
        files = self.layout.candidate_manifests()
        if not files:
            return []
        table = pa.concat_tables(
            [pq.read_table(f) for f in files], promote_options="default"
        ).drop_columns(["meta_json"])
        reasons: dict[str, list[str]] = {}
        for row in self.reject_rows:
            if row["stage"] == "filter" and row["task"] is None:  # with a task: regen's, for it
                reasons.setdefault(row["candidate_key"], []).append(row["reason"])
        rows = []
        for row in table.to_pylist():
            out = {k: v for k, v in row.items() if not k.startswith(SCORE_PREFIX)}
            out["kept"] = row["key"] not in reasons
            out["reasons"] = reasons.get(row["key"], [])
            for name, value in row.items():
                if name.startswith(SCORE_PREFIX):
                    out[name[len(SCORE_PREFIX) :]] = value
            rows.append(out)
        return rows

    def candidates(self) -> pd.DataFrame:
        """Every render (kept or not) with its scores and verdict, as a DataFrame."""
        return require_pandas().DataFrame(self.candidate_rows())

    def candidate_files(self, keys: list[str] | set[str]) -> dict[str, dict[str, bytes]]:
        """{key: {"png": image, "mask.png": mask, "json": metadata}} from the candidate
        store, reading each block's tar once and only the wanted members."""
        wanted = set(keys)
        blocks: dict[int, set[str]] = {}
        for row in self._key_blocks:
            if row["key"] in wanted:
                blocks.setdefault(row["block"], set()).add(row["key"])
        found: dict[str, dict[str, bytes]] = {}
        for block, block_keys in sorted(blocks.items()):
            tar = self.layout.candidate_files(block)[0]
            if tar.is_file():
                found.update(read_members(tar, keys=block_keys))
        return found

    @cached_property
    def _key_blocks(self) -> list[dict[str, Any]]:
        files = self.layout.candidate_manifests()
        return [r for f in files for r in pq.read_table(f, columns=["key", "block"]).to_pylist()]

    @property
    def rejects(self) -> RejectsView:
        from datapipe.inspect.rejects import RejectsView

        return RejectsView(self)

    def hist(self, scores: list[str] | None = None, bins: int = 30, columns: int = 3) -> Figure:
        """Every render's scores, kept and rejected stacked, thresholds as vertical lines."""
        from datapipe.inspect.charts import score_histograms

        frame = self.candidates()
        groups = {"kept": frame["kept"], "rejected": ~frame["kept"]} if len(frame) else None
        return score_histograms(
            frame,
            self.thresholds,
            scores=scores,
            groups=groups,
            bins=bins,
            columns=columns,
            title=f"{len(frame)} renders in the candidate store",
        )

    def _repr_html_(self) -> str:
        return views.output_html(self)


def _nearby_outputs(root: Path) -> str:
    """Name the outputs that do exist next to a missing one."""
    parent = root.parent
    if not parent.is_dir():
        return f" (and {parent} does not exist either)"
    outputs = sorted(p.name for p in parent.iterdir() if p.is_dir() and OutputLayout(p).is_output())
    if outputs:
        return f" (outputs in {parent}: {', '.join(outputs[:12])})"
    return f" ({parent} holds no datapipe output)"


def open_output(path: str | Path, split: str | None = None, task: str | None = None) -> Any:
    """An Output; with `task`, that task's TaskView (split "train" unless given); with
    only `split`, that split's SplitView."""
    output = Output(path)
    if task is not None:
        return output.task(task, split or DEFAULT_SPLIT)
    if split is not None:
        return output.split(split)
    return output
