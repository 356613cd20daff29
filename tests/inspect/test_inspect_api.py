"""datapipe.inspect over the quickstart output: counts, samples, tables, pictures, errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

import datapipe.inspect as dpi
from datapipe.errors import OutputError
from datapipe.inspect.draw import MASK_COLOR, overlay_mask


@pytest.fixture(scope="module")
def out(quickstart_run):
    return dpi.open(quickstart_run[0])


@pytest.fixture(scope="module")
def stats(quickstart_run):
    root = quickstart_run[0] / "datasets"
    return {
        p.parent.parent.name: json.loads(p.read_text()) for p in root.glob("train/*/*/stats.json")
    }


def test_iteration_counts_equal_stats(out, stats):
    assert out.splits == ["train"]
    assert out.tasks() == sorted(stats)
    for task, expected in stats.items():
        view = out.task(task)
        samples = list(view)
        assert len(view) == len(samples) == expected["samples"] > 0
        assert Counter(s.language for s in samples) == Counter(expected["by_language"])
        assert len({s.key for s in samples}) == len(samples)


def test_counts_table_equals_stats(out, stats):
    counts = out.counts()
    for task, expected in stats.items():
        row = counts.loc[("train", task)]
        assert row["total"] == expected["samples"]
        for language, n in expected["by_language"].items():
            assert row[language] == n


def test_samples_decode_with_their_metadata(out):
    fill = out.task("fill")
    sample = fill[0]
    assert isinstance(sample.source, Image.Image) and isinstance(sample.target, Image.Image)
    assert sample.mask is not None and sample.mask.size == sample.source.size
    assert sample.task == "fill" and sample.instruction
    assert sample.meta["lineage"]["target"] == sample.meta["lineage"]["sources"][0]
    assert "quality.std" in sample.scores
    assert fill[sample.key].key == sample.key
    assert out["train", "fill"][-1].key == list(fill)[-1].key
    rescale = out["rescale"][0]
    assert rescale.mask is None and "pair.text_match" in rescale.scores


def test_scores_table_columns(out, stats):
    thresholds = json.loads((out.path / "run.json").read_text())["recipe"]["thresholds"]
    for task in ("fill", "rescale"):
        frame = out.task(task).scores()
        assert len(frame) == stats[task]["samples"]
        for column in ("key", "language", "theme", "entity", "style", "shard", "target_key"):
            assert column in frame.columns
        for rule in thresholds.values():
            assert rule["score"] in frame.columns
        assert frame["key"].is_unique
    fill = out.task("fill").scores()
    assert set(fill["param.mask_kind"]) <= {"subject", "text", "freeform"}
    rescale = out.task("rescale")
    assert {"pair.text_match", "pair.color_similarity"} <= set(rescale.scores().columns)
    assert rescale.scores_arrow().num_rows == stats["rescale"]["samples"]


def test_show_returns_a_grid_of_the_expected_size(out):
    grid = out.task("fill").show(3, columns=2, thumb=100)
    assert isinstance(grid, Image.Image)
    assert grid.size == dpi.grid_size(3, columns=2, thumb=100)
    assert np.asarray(grid.convert("L")).std() > 10
    assert out.task("extend").show(8).size == dpi.grid_size(8)
    assert out.task("fill").show(2, seed=3).size == dpi.grid_size(2)
    one = out.task("identity")[0].show(thumb=120)
    assert one.size == dpi.grid_size(1, columns=1, thumb=120)


def test_mask_overlay_tints_only_the_masked_region():
    image = Image.new("RGB", (20, 10), (255, 255, 255))
    mask = Image.new("L", (20, 10), 0)
    mask.paste(255, (0, 0, 10, 10))
    pixels = np.asarray(overlay_mask(image, mask)).astype(int)
    assert (pixels[:, 10:] == 255).all()
    inside = pixels[0, 0]
    assert inside[0] > inside[1] and inside[0] > inside[2]
    assert abs(inside[1] - round(0.55 * 255 + 0.45 * MASK_COLOR[1])) <= 1


def test_repr_html_has_inline_thumbnails(out):
    fill = out.task("fill")
    for html in (
        fill[0]._repr_html_(),
        fill._repr_html_(),
        fill.table(3)._repr_html_(),
        out.split("train")._repr_html_(),
        out.rejects._repr_html_(),
    ):
        assert "<img" in html and "data:image/png;base64," in html
    assert "fill" in out._repr_html_()


def threshold_lines(figure):
    return [
        line
        for ax in figure.axes
        for line in ax.lines
        if (line.get_gid() or "").startswith("threshold:")
    ]


def test_histograms_mark_every_threshold(out):
    recipe = json.loads((out.path / "run.json").read_text())["recipe"]
    rules = recipe["thresholds"]
    scores = list(dict.fromkeys(rule["score"] for rule in rules.values()))
    lines = threshold_lines(out.hist(scores=scores))
    marked = {line.get_gid().split(":")[1] for line in lines}
    assert marked == set(rules)
    for line in lines:
        _, reason, kind = line.get_gid().split(":")
        assert line.get_xdata()[0] == rules[reason][kind]
    assert threshold_lines(out.hist())  # default: the varying scores
    assert threshold_lines(out.rejects.hist())
    pair = {line.get_gid() for line in threshold_lines(out.task("rescale").hist())}
    assert "threshold:rescale_text_mismatch:min" in pair
    with pytest.raises(KeyError, match="no score"):
        out.hist(scores=["no.such_score"])


def test_candidates_and_rejects_agree_with_the_run(out, quickstart_run):
    summary = quickstart_run[1]
    candidates = out.candidates()
    assert len(candidates) == summary.renders
    assert int(candidates["kept"].sum()) == summary.kept
    reasons = Counter(r for rs in candidates["reasons"] for r in rs)
    assert reasons == summary.reject_reasons
    by_reason = out.rejects.by_reason()
    assert by_reason["rows"].sum() == len(out.rejects.table()) == len(out.rejects)
    filter_rows = by_reason[by_reason["stage"] == "filter"]
    assert dict(zip(filter_rows["reason"], filter_rows["rows"], strict=True)) == dict(reasons)


def test_rejects_show_draws_rejected_renders(out):
    grid = out.rejects.show(n=4, columns=2, thumb=80)
    assert grid.size == dpi.grid_size(4, columns=2, thumb=80, sources=0)
    reason = out.rejects.reasons[0]
    assert out.rejects.show(reason=reason, n=2).width > 0
    with pytest.raises(KeyError, match="reasons:"):
        out.rejects.show(reason="no_such_reason")


def test_errors_say_what_exists(out, tmp_path):
    with pytest.raises(OutputError, match="no output directory") as missing:
        dpi.open(out.path.parent / "no-such-output")
    assert out.path.name in str(missing.value)
    with pytest.raises(OutputError, match=r"tasks: extend, fill"):
        out.task("inpaint")
    with pytest.raises(OutputError, match=r"splits: train"):
        out.task("fill", split="bench")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match=r"not a datapipe output.*notes\.txt"):
        dpi.open(tmp_path)
    assert isinstance(dpi.open(out.path, task="fill"), dpi.TaskView)
    assert isinstance(dpi.open(out.path, split="train"), dpi.SplitView)
