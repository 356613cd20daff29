"""The dataset card: `datasets/README.md` (the Hugging Face Hub's YAML header and a body a
person reads) and `datasets/croissant.json` (Croissant 1.0 metadata).

Written at the end of every run and every regen, from the committed manifests (so its
counts are the manifests'), rejects.parquet and run.json; never from wall-clock times,
so a rerun writes the same bytes. The YAML `configs:` name one config per task with its
splits, which is what lets `load_dataset(".../datasets", "fill", split="train")` find
the tars and decode the images from the path alone.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from datapipe.io.atomic import write_bytes
from datapipe.io.layout import dataset_manifests, tar_of

CARD = "README.md"
CROISSANT = "croissant.json"
LICENSE = "apache-2.0"
LICENSE_URL = "https://www.apache.org/licenses/LICENSE-2.0"
SPLITS = ("train", "bench")

PAIRS = {
    "extend": "outpainting: the source is the target poster cropped to a region that holds "
    "the subject (40-80% of the area), the target the full poster.",
    "fill": "inpainting: the source is the poster with a region blanked (the subject, a "
    "text block or a free-form stroke), `mask.png` marks it; outside the mask source and "
    "target are pixel-identical.",
    "rescale": "the same poster at another aspect ratio: one spec and seed rendered at two "
    "ratios, kept when OCR text, subject and image similarity agree.",
    "identity": "subject-driven: the source is the subject cut out with its mask onto a "
    "plain background, the target the poster that holds it.",
    "layout": "the source is a reference poster of the same layout group (another entity, "
    "copy and style); the target's text and subject boxes match its layout.",
    "style": "the source is a reference poster of the same style group (another entity and "
    "copy); the target is a new poster in that style, not a near-duplicate.",
}

CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def size_category(n: int) -> str:
    """The Hub's size_categories bucket for n samples."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
    bounds += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]
    return next((label for bound, label in bounds if n < bound), "10M<n<100M")


def counts(datasets: Path) -> dict[tuple[str, str, str, str], int]:
    """(split, task, language, theme) -> samples, from the committed manifests."""
    found: Counter[tuple[str, str, str, str]] = Counter()
    for manifest in dataset_manifests(datasets):
        split = tar_of(manifest).parent.parent.name
        table = pq.read_table(manifest, columns=["task", "language", "theme"])
        for row in table.to_pylist():
            found[(split, row["task"], row["language"], row["theme"])] += 1
    return dict(sorted(found.items()))


def write_card(out: Path) -> None:
    """Write `datasets/README.md` and `datasets/croissant.json` for the output at `out`."""
    datasets = out / "datasets"
    run = json.loads((out / "run.json").read_text())
    table = counts(datasets)
    tasks = sorted({task for _, task, _, _ in table})
    splits = {task: [s for s in SPLITS if (datasets / s / task).is_dir()] for task in tasks}
    datasets.mkdir(parents=True, exist_ok=True)
    write_bytes(datasets / CARD, _card(run, table, tasks, splits, _rejects(out)).encode())
    croissant = json.dumps(_croissant(run, splits), indent=1, ensure_ascii=False) + "\n"
    write_bytes(datasets / CROISSANT, croissant.encode())


def _rejects(out: Path) -> dict[tuple[str, str], int]:
    """(reason, what it rejected for) -> rows: a filter row without a task rejects the
    render for every task; one with a task (a regen's stricter thresholds) for that task."""
    path = out / "rejects.parquet"
    if not path.is_file():
        return {}
    rows = pq.read_table(path, columns=["stage", "task", "reason"]).to_pylist()
    found = Counter((r["reason"], reject_scope(r["stage"], r["task"])) for r in rows)
    return dict(sorted(found.items()))


def reject_scope(stage: str, task: str | None) -> str:
    if stage == "filter":
        return f"the render, for {task} (regen)" if task else "the render, for every task"
    return f"a {task} pair" if task else "a pair"


def _header(run: dict[str, Any], total: int, splits: dict[str, list[str]]) -> list[str]:
    languages = sorted(run["recipe"]["languages"])
    lines = ["---", f"license: {LICENSE}", "language:"]
    lines += [f"- {lang}" for lang in languages]
    lines += ["task_categories:", "- image-to-image", "- text-to-image"]
    lines += ["size_categories:", f"- {size_category(total)}", "tags:", "- webdataset", "configs:"]
    for task, task_splits in splits.items():
        lines += [f"- config_name: {task}", "  data_files:"]
        for split in task_splits:
            lines += [f"  - split: {split}", f"    path: {split}/{task}/*.tar"]
    return [*lines, "---"]


def _card(
    run: dict[str, Any],
    table: dict[tuple[str, str, str, str], int],
    tasks: list[str],
    splits: dict[str, list[str]],
    rejects: dict[tuple[str, str], int],
) -> str:
    recipe = run["recipe"]
    total = sum(table.values())
    lines = _header(run, total, splits)
    lines += [
        "",
        f"# {recipe['name']}: poster editing and creation pairs",
        "",
        f"{total} synthetic poster pairs for six image-to-poster tasks, built by datapipe "
        f"from the recipe `{recipe['name']}` (recipe hash `{run['recipe_hash']}`, generation "
        f"hash `{run['generation_hash']}`). Each sample is a WebDataset member set: "
        "`source.png` (or `source_0.png`, ...), `target.png`, `mask.png` for fill, `txt` "
        "(the instruction in the sample's language) and `json` (task, language, entity, "
        "style, prompt, seeds, models, scores, lineage).",
        "",
        "```python",
        "from datasets import load_dataset",
        'fill = load_dataset("path/to/datasets", "fill", split="train")',
        "```",
        "",
        "## Samples per task, language and theme",
        "",
        "| split | task | language | theme | samples |",
        "|---|---|---|---|---:|",
    ]
    lines += [f"| {s} | {t} | {lang} | {theme} | {n} |" for (s, t, lang, theme), n in table.items()]
    lines += ["", "## How each task's pairs are built", ""]
    lines += [f"- `{task}`: {PAIRS.get(task, 'see the datapipe design notes.')}" for task in tasks]
    lines += [
        "",
        "## Filters and thresholds",
        "",
        "A render is kept when every score is inside its rule's bounds; each failed rule is "
        "recorded as a reason in `rejects.parquet` beside this folder.",
        "",
        "| reason | score | min | max |",
        "|---|---|---|---|",
    ]
    for reason, rule in sorted(recipe.get("thresholds", {}).items()):
        lines.append(
            f"| {reason} | `{rule['score']}` | {_bound(rule['min'])} | {_bound(rule['max'])} |"
        )
    lines += ["", "## Rejections by reason", "", "| reason | rejects | rows |", "|---|---|---:|"]
    lines += [f"| {reason} | {scope} | {n} |" for (reason, scope), n in rejects.items()] or [
        "| (none) | | 0 |"
    ]
    lines += ["", "## Models and versions", "", "| stage | backend or model |", "|---|---|"]
    lines += [f"| {stage} | {what} |" for stage, what in _models(recipe)]
    lines += ["", "| package | version |", "|---|---|"]
    lines += [f"| {name} | {version} |" for name, version in sorted(run["versions"].items())]
    lines += [
        "",
        "## Licence",
        "",
        f"The pairs are released under {LICENSE} (the licence of datapipe); the renders also "
        "fall under the terms of the image model named above.",
        "",
    ]
    return "\n".join(lines)


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _models(recipe: dict[str, Any]) -> list[tuple[str, str]]:
    """Each stage's backend, and the model it names where it names one."""
    found = []
    for stage, config in sorted(recipe.get("stages", {}).items()):
        if not isinstance(config, dict) or config.get("enabled") is False:
            continue
        backend = config.get("backend")
        detail = config.get(backend) if isinstance(backend, str) else None
        model = config.get("model") or (detail.get("model") if isinstance(detail, dict) else None)
        if backend or model:
            found.append((stage, " / ".join(str(x) for x in (backend, model) if x)))
    return found


def _croissant(run: dict[str, Any], splits: dict[str, list[str]]) -> dict[str, Any]:
    recipe = run["recipe"]
    files = [
        {
            "@type": "cr:FileSet",
            "@id": f"{split}-{task}",
            "name": f"{split}-{task}",
            "description": f"WebDataset shards of the {task} task, {split} split",
            "encodingFormat": "application/x-tar",
            "includes": f"{split}/{task}/*.tar",
        }
        for task, task_splits in splits.items()
        for split in task_splits
    ]
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "name": recipe["name"],
        "description": f"Synthetic poster pairs for image-to-poster tasks ({', '.join(splits)}), "
        f"built by datapipe; recipe hash {run['recipe_hash']}.",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "license": LICENSE_URL,
        "url": "https://github.com/datapipe/datapipe",
        "version": run["versions"]["datapipe"],
        "inLanguage": sorted(recipe["languages"]),
        "keywords": ["poster", "image editing", "webdataset", *splits],
        "distribution": files,
    }
