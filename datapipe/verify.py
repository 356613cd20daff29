"""`datapipe verify`: prove an output directory is complete, consistent and correct.

It trusts nothing it can recompute: every manifest row against its tar member and
back, keys across all shards, counts against stats and ledgers, the pair invariants
of every sample against the candidate store, and leftovers of interrupted writes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from datapipe.io.atomic import TMP_SUFFIX
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.layout import (
    STAGING,
    OutputLayout,
    manifest_of,
    regenerated_tasks,
    stats_path,
    tar_of,
    task_manifests,
)
from datapipe.io.rejects import reject_parts
from datapipe.io.shard_sink import sample_digest
from datapipe.io.tar import read_tar
from datapipe.plan import bench_cells
from datapipe.recipe import Recipe
from datapipe.records import Candidate
from datapipe.stages.near_duplicates import PhashIndex

MAX_LISTED = 20


@dataclass
class Progress:
    """How far a run that has not finished got: verify checks what it committed."""

    committed: int
    planned: int | None
    """Train blocks the run plans; None when run.json does not say (bench rounds add more)."""

    def __str__(self) -> str:
        of = f" of {self.planned}" if self.planned is not None else ""
        return (
            f"unfinished: {self.committed}{of} blocks committed; what is committed was checked "
            "(rerun the same `datapipe run` to finish)"
        )


def unfinished(out: Path) -> Progress | None:
    """None for a finished run; else the committed and planned block counts."""
    layout = OutputLayout(out)
    try:
        run = json.loads(layout.run_json.read_text())
    except (OSError, ValueError):
        return None
    if run.get("status") == "finished":
        return None
    committed = len(layout.ledgers())
    try:
        recipe = Recipe.model_validate(run["recipe"])
    except (KeyError, ValueError):
        return Progress(committed, None)
    total = sum(recipe.groups.model_dump().values())
    limit = run.get("limit")
    groups = min(total, limit) if isinstance(limit, int) else total
    return Progress(committed, -(-groups // recipe.block_size))


@dataclass
class Check:
    name: str
    checked: int = 0
    faults: list[str] = field(default_factory=list)

    def fault(self, message: str) -> None:
        self.faults.append(message)


class Candidates:
    """Candidates from the store by key, one block loaded at a time."""

    def __init__(self, out: Path) -> None:
        self.store = CandidateStore(out)
        self.block: int | None = None
        self.by_key: dict[str, Candidate] = {}

    def get(self, block: int, key: str) -> Candidate | None:
        if block != self.block:
            self.block = block
            self.by_key = {}
            if self.store.is_committed(block):
                try:
                    groups = self.store.load(block)
                except Exception:  # a damaged store: every sample of it is reported below
                    groups = []
                for group in groups:
                    for candidate in group.candidates:
                        self.by_key[candidate.key] = candidate
        return self.by_key.get(key)


def _array(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _mask(data: bytes) -> np.ndarray:
    return _array(data) > 127


def check_fill(
    files: dict[str, bytes], _meta: dict, _: Candidate, __: list[Candidate]
) -> str | None:
    source, target = _array(files["source.png"]), _array(files["target.png"])
    mask = _mask(files["mask.png"])
    if source.shape != target.shape or mask.shape != target.shape[:2]:
        return "source, target and mask sizes differ"
    if not mask.any():
        return "empty mask"
    if not np.array_equal(source[~mask], target[~mask]):
        return "source differs from target outside the mask"
    return None


def check_extend(
    files: dict[str, bytes], meta: dict, target: Candidate, _: list[Candidate]
) -> str | None:
    x0, y0, x1, y1 = meta["params"]["crop_box"]
    source, image = _array(files["source.png"]), _array(files["target.png"])
    crop = image[y0:y1, x0:x1]
    region = source[y0:y1, x0:x1] if meta["params"]["mode"] == "canvas" else source
    if not np.array_equal(region, crop):
        return "the crop is not the target's pixels"
    box = target.details.get("subject", {}).get("box")
    if not box or not (x0 <= box[0] and y0 <= box[1] and box[2] <= x1 and box[3] <= y1):
        return "the crop does not hold the whole subject"
    return None


def check_identity(
    files: dict[str, bytes], meta: dict, target: Candidate, _: list[Candidate]
) -> str | None:
    if target.subject_mask is None:
        return "the target has no subject mask in the store"
    x0, y0, x1, y1 = meta["params"]["subject_box"]
    pad = meta["params"]["padding"]
    subject = _mask(target.subject_mask)[y0:y1, x0:x1]
    source, image = _array(files["source.png"]), _array(files["target.png"])
    cutout = _mask(files["mask.png"])[pad : pad + y1 - y0, pad : pad + x1 - x0]
    if not np.array_equal(cutout, subject):
        return "the cutout mask is not the target's own subject mask"
    local = source[pad : pad + y1 - y0, pad : pad + x1 - x0]
    if not np.array_equal(local[subject], image[y0:y1, x0:x1][subject]):
        return "the cutout pixels are not the target's"
    return None


def check_rescale(
    _: dict[str, bytes], __: dict, target: Candidate, sources: list[Candidate]
) -> str | None:
    (source,) = sources
    if source.spec.group_id != target.spec.group_id:
        return "source and target come from different groups"
    if source.spec.copy != target.spec.copy:
        return "source and target carry different copy text"
    if source.spec.aspect_ratio == target.spec.aspect_ratio:
        return "source and target have the same aspect ratio"
    return None


def _check_reference(shared: str) -> Callable[..., str | None]:
    def check(
        _: dict[str, bytes], __: dict, target: Candidate, sources: list[Candidate]
    ) -> str | None:
        (reference,) = sources
        if reference.spec.group_id != target.spec.group_id or reference.key == target.key:
            return "the reference is not another poster of the same group"
        if reference.spec.entity_id == target.spec.entity_id:
            return "the reference shows the same entity"
        if getattr(reference.spec, shared) != getattr(target.spec, shared):
            return f"the reference has another {shared}"
        return None

    return check


INVARIANTS: dict[str, Callable[..., str | None]] = {
    "fill": check_fill,
    "extend": check_extend,
    "identity": check_identity,
    "rescale": check_rescale,
    "layout": _check_reference("layout_id"),
    "style": _check_reference("style_id"),
}


def _tars(out: Path) -> Iterator[Path]:
    yield from OutputLayout(out).shards()


def check_manifests(out: Path) -> tuple[Check, Check]:
    """Rows against members and back; keys unique across every shard of a split."""
    manifests, keys = Check("manifests match tars"), Check("keys unique per split")
    seen: dict[str, dict[str, str]] = {}
    for tar in _tars(out):
        manifest = manifest_of(tar)
        if not manifest.is_file():
            manifests.fault(f"{tar}: no manifest")
            continue
        rows = pq.read_table(manifest).to_pylist()
        try:
            members = dict(read_tar(tar))
        except Exception as exc:  # a damaged tar is a finding, not a crash
            manifests.fault(f"{tar}: unreadable ({type(exc).__name__}: {exc})")
            continue
        row_keys = [r["key"] for r in rows]
        for key in set(row_keys) ^ set(members):
            where = "in the manifest only" if key in row_keys else "in the tar only"
            manifests.fault(f"{tar.name}: key {key} {where}")
        for row in rows:
            manifests.checked += 1
            files = members.get(row["key"])
            if files is None:
                continue
            if row["members"] != sorted(f"{row['key']}.{ext}" for ext in files):
                manifests.fault(f"{tar.name}: {row['key']}: members differ from the manifest")
            if row["sha256"] != sample_digest(files):
                manifests.fault(f"{tar.name}: {row['key']}: content differs from its sha256")
        split = tar.parent.parent.name
        for key in members:
            keys.checked += 1
            other = seen.setdefault(split, {}).get(key)
            if other:
                keys.fault(f"{split}: key {key} in {other} and {tar.name}")
            seen[split][key] = tar.name
    for manifest in OutputLayout(out).shard_manifests():
        if not tar_of(manifest).is_file():
            manifests.fault(f"{manifest}: manifest without its tar")
    return manifests, keys


def check_stats(out: Path) -> Check:
    check = Check("stats match manifests")
    for task_dir in OutputLayout(out).task_dirs():
        check.checked += 1
        stats_file = stats_path(task_dir)
        try:
            stats = json.loads(stats_file.read_text())
        except (OSError, ValueError) as exc:
            check.fault(f"{stats_file}: missing or unreadable ({exc})")
            continue
        manifests = task_manifests(task_dir)
        rows = sum(pq.read_metadata(m).num_rows for m in manifests)
        if stats.get("samples") != rows:
            check.fault(f"{stats_file}: {stats.get('samples')} samples, manifests hold {rows}")
        names = [s["name"] for s in stats.get("shards", [])]
        if names != [tar_of(m).name for m in manifests]:
            check.fault(f"{stats_file}: shard list differs from the manifests on disk")
        if sum(stats.get("by_language", {}).values()) != stats.get("samples"):
            check.fault(f"{stats_file}: by_language does not add up to samples")
    return check


def check_blocks(out: Path, finished: bool = True) -> Check:
    """Every stored block has a ledger; ledgers' shards and rejects add up.

    A run still going (or stopped) has a block stored but not yet committed: that is its
    next step, not a fault."""
    check = Check("blocks committed")
    layout = OutputLayout(out)
    regenerated = regenerated_tasks(layout.read_run())
    ledgers = layout.ledgers()
    replaced = {layout.task_dir(s, t).relative_to(out) for s, t in regenerated}
    for parquet in layout.candidate_manifests():
        block = int(parquet.stem.split("-")[1])
        if block not in ledgers and finished:
            check.fault(
                f"{parquet.name}: block {block} has renders but no ledger (rerun to finish)"
            )
    for block, path in ledgers.items():
        check.checked += 1
        try:
            ledger = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            check.fault(f"{path.name}: unreadable ledger ({exc})")
            continue
        split = ledger.get("split", "train")
        for name, size in ledger.get("files", {}).items():
            if replaced.intersection(Path(name).parents):
                continue  # rebuilt by regen (shards and their __manifests__)
            found = (out / name).stat().st_size if (out / name).is_file() else -1
            # shards grow: a task's open shard takes the samples of the blocks after
            if found < size or (found != size and not name.startswith("datasets/")):
                check.fault(f"{path.name}: {name} is missing or not the size committed")
        for shard in ledger["shards"]:
            if (split, shard["task"]) in regenerated:
                continue  # rebuilt by regen: its stats and manifests are the record now
            tar = layout.task_dir(split, shard["task"]) / f"{shard['name']}.tar"
            if not tar.is_file():
                check.fault(f"{path.name}: shard {tar.name} is missing")
        rejects = layout.block_rejects(block)
        if not rejects.is_file():
            check.fault(f"{path.name}: {rejects.name} is missing")
    reject_rows = sum(table.num_rows for _, table in reject_parts(out))
    total = layout.rejects
    if not finished:
        pass  # written when the run finishes
    elif not total.is_file():
        check.fault("rejects.parquet is missing")
    elif pq.read_metadata(total).num_rows != reject_rows:
        check.fault(
            f"rejects.parquet has {pq.read_metadata(total).num_rows} rows, blocks and regen "
            f"{reject_rows}"
        )
    return check


def check_pairs(out: Path) -> Check:
    check = Check("pair invariants")
    candidates = Candidates(out)
    for tar in _tars(out):
        task = tar.parent.name
        invariant = INVARIANTS.get(task)
        try:
            samples = list(read_tar(tar))
        except Exception as exc:  # reported by the manifest check too; never a crash
            check.fault(f"{tar.name}: unreadable ({type(exc).__name__})")
            continue
        for key, files in samples:
            check.checked += 1
            meta: dict[str, Any] = json.loads(files["json"])
            lineage = meta["lineage"]
            target = candidates.get(lineage["block"], lineage["target"])
            sources = [candidates.get(lineage["block"], k) for k in lineage["sources"]]
            if target is None or None in sources:
                check.fault(f"{tar.name}: {key}: lineage points to candidates not in the store")
                continue
            if files["target.png"] != target.image:
                check.fault(f"{tar.name}: {key}: target.png is not the stored render")
            problem = invariant(files, meta, target, sources) if invariant else None
            if problem:
                check.fault(f"{tar.name}: {key}: {problem}")
    return check


def _split_candidates(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Per split, the store rows of every candidate its samples use, in commit order."""
    used: dict[str, set[str]] = {}
    for manifest in OutputLayout(out).shard_manifests():
        split = tar_of(manifest).parent.parent.name
        table = pq.read_table(manifest, columns=["target_key", "source_keys"]).to_pylist()
        keys = used.setdefault(split, set())
        for row in table:
            keys.add(row["target_key"])
            keys.update(row["source_keys"])
    store = CandidateStore(out).read_table()
    rows = [] if store is None else store.select(STORE_COLUMNS).to_pylist()
    return {split: [r for r in rows if r["key"] in keys] for split, keys in sorted(used.items())}


STORE_COLUMNS = ["key", "group_id", "entity_id", "style_id", "phash", "split", "block"]


def check_splits(out: Path) -> list[Check]:
    """Near-duplicates within each split; for a recipe with a bench: bench disjoint from
    train (groups, entity x style pairs, near-duplicate images) and its quotas as
    run.json states them."""
    duplicates = Check("no near-duplicates within a split")
    disjoint = Check("bench disjoint from train")
    quotas = Check("bench quotas met")
    run = OutputLayout(out).read_run()
    try:
        recipe = Recipe.model_validate(run["recipe"])
    except (KeyError, ValueError) as exc:
        duplicates.fault(f"run.json: recipe unreadable ({type(exc).__name__})")
        return [duplicates]
    by_split = _split_candidates(out)
    for split, rows in by_split.items():
        distance = recipe.near_duplicate_distance(split)
        if distance is None:
            continue
        index = PhashIndex(distance)
        for row in sorted(rows, key=lambda r: (r["block"], r["key"])):
            duplicates.checked += 1
            value = int(row["phash"], 16)
            match = index.find(value, row["group_id"], distance)
            if match:
                duplicates.fault(f"{split}: {row['key']} is {match[1]} pHash bits from {match[0]}")
            index.add(value, row["key"], row["group_id"])
    bench, train = by_split.get("bench", []), by_split.get("train", [])
    if bench:
        groups = {r["group_id"] for r in train}
        pairs = {(r["entity_id"], r["style_id"]) for r in train}
        distance = recipe.near_duplicate_distance("bench")
        index = PhashIndex(distance or 0)
        for row in train if distance is not None else []:
            index.add(int(row["phash"], 16), row["key"], row["group_id"])
        for row in bench:
            disjoint.checked += 1
            if row["group_id"] in groups:
                disjoint.fault(f"bench {row['key']}: group {row['group_id']} is also in train")
            if (row["entity_id"], row["style_id"]) in pairs:
                disjoint.fault(
                    f"bench {row['key']}: entity x style {row['entity_id']} x "
                    f"{row['style_id']} is also in train"
                )
            match = None if distance is None else index.find(int(row["phash"], 16), "", distance)
            if match:
                disjoint.fault(f"bench {row['key']}: {match[1]} pHash bits from train {match[0]}")
    if recipe.bench is None:
        return [duplicates]
    _check_quotas(out, recipe, run, quotas)
    return [duplicates, disjoint, quotas]


def _check_quotas(out: Path, recipe: Recipe, run: dict[str, Any], check: Check) -> None:
    """Counted from the bench manifests: every quota exactly full, or as short as
    run.json reports it (an unfilled quota is reported, never hidden)."""
    counts: dict[str, int] = {}
    for manifest in OutputLayout(out).shard_manifests("bench"):
        for row in pq.read_table(manifest, columns=["task", "language", "theme"]).to_pylist():
            key = f"{row['task']}/{row['language']}/{row['theme']}"
            counts[key] = counts.get(key, 0) + 1
    regenerated = {t for s, t in regenerated_tasks(run) if s == "bench"}
    reported = {
        f"{q['task']}/{q['language']}/{q['theme']}": q["accepted"]
        for q in (run.get("bench") or {}).get("quotas", [])
    }
    for cell in bench_cells(recipe):
        check.checked += 1
        found = counts.pop(cell.key, 0)
        if found > cell.quota:
            check.fault(f"bench {cell.key}: {found} samples, quota {cell.quota}")
        elif (
            found < cell.quota and cell.task not in regenerated and reported.get(cell.key) != found
        ):
            check.fault(
                f"bench {cell.key}: {found} of {cell.quota} samples, run.json reports "
                f"{reported.get(cell.key)}"
            )
    for key, found in counts.items():
        check.fault(f"bench {key}: {found} samples of no quota in the recipe")


def check_leftovers(out: Path) -> Check:
    check = Check("no temporary files")
    for path in out.rglob(f"*{TMP_SUFFIX}"):
        check.fault(f"{path}: left by an interrupted write")
    for path in sorted((out / STAGING).glob("*")):
        check.fault(f"{path}: left by an interrupted regen (the next regen or run recovers it)")
    check.checked = 1
    return check


def verify(out: Path) -> list[Check]:
    """Run every check; an empty fault list everywhere means the output is sound.

    An unfinished run (see `unfinished`) is checked as far as it committed: its stats
    files, rejects table and bench quotas are written when it finishes, so they are not
    checked, and its temporary files are those of the block it was writing."""
    run_json = OutputLayout(out).run_json
    if not run_json.is_file():
        missing = Check("run.json present")
        missing.fault(f"{run_json} is missing: not a datapipe output, or never started")
        return [missing]
    manifests, keys = check_manifests(out)
    if unfinished(out) is not None:
        return [manifests, keys, check_blocks(out, finished=False), check_pairs(out)]
    return [
        manifests,
        keys,
        check_stats(out),
        check_blocks(out),
        check_pairs(out),
        *check_splits(out),
        check_leftovers(out),
    ]
