"""`datapipe report`: a static gallery whose numbers equal the stats files and rejects.parquet,
checked in headless Chromium opened from the file system."""

from __future__ import annotations

import html
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from fontTools.ttLib import TTFont
from PIL import Image
from typer.testing import CliRunner

from datapipe.cli_inspect import register
from datapipe.fonts import font_path
from datapipe.report import MARKER, build_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PER_PAGE = 40


@pytest.fixture(scope="module")
def report(quickstart_run, tmp_path_factory):
    out = quickstart_run[0]
    dest = tmp_path_factory.mktemp("report") / "html"
    return out, build_report(out, dest, per_page=PER_PAGE)


def stats_files(out: Path) -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted((out / "datasets").glob("*/*/__manifests__/stats.json")):
        stats = json.loads(path.read_text())
        found[(stats["split"], stats["task"])] = stats
    return found


def test_pages_paging_and_relative_links(report):
    out, result = report
    root = result.root
    assert (root / MARKER).is_file() and result.index.is_file()
    for (split, task), stats in stats_files(out).items():
        pages = -(-stats["samples"] // PER_PAGE)
        folder = root / split / task
        expected = {"index.html"} | {f"page-{n}.html" for n in range(2, pages + 1)}
        assert {p.name for p in folder.glob("*.html")} == expected
    assert (root / "rejects.html").is_file()
    for page in root.rglob("*.html"):
        text = page.read_text()
        for link in re.findall(r'(?:href|src)="([^"#][^"]*)"', text):
            assert not re.match(r"^(/|[a-z]+:)", link), f"{page}: absolute link {link}"
            target = (page.parent / link.split("#")[0]).resolve()
            assert target.is_file(), f"{page}: broken link {link}"
    assert any(p.suffix == ".jpg" for p in (root / "thumbs").iterdir())


def test_rebuild_replaces_a_report_but_never_other_files(report, tmp_path):
    out, _ = report
    dest = tmp_path / "r"
    first = build_report(out, dest, per_page=200, max_samples=5)
    stale = dest / "train" / "fill" / "page-9.html"
    stale.write_text("old")
    build_report(out, dest, per_page=200, max_samples=5)
    assert not stale.exists() and first.index.is_file()
    assert not (tmp_path / "r.partial").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["report", str(out), "--html", str(foreign)])
    assert result.exit_code == 2, result.output
    assert "not a datapipe report" in result.output and "Traceback" not in result.output
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_report_command(report, tmp_path):
    out, _ = report
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    result = runner.invoke(
        app, ["report", str(out), "--html", str(tmp_path / "r"), "--max-samples", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "index.html" in result.output
    missing = runner.invoke(app, ["report", str(tmp_path / "nothing-here")])
    assert missing.exit_code == 2
    lines = [line for line in missing.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no output directory" in lines[0]


def latin_only_fontconfig(tmp_path: Path) -> Path:
    """Fontconfig that offers Chromium no CJK font at all (DejaVu, if installed, for Latin):
    Chinese on the pages can then only come from the fonts the report carries."""
    dejavu = Path("/usr/share/fonts/truetype/dejavu")
    dirs = f"<dir>{dejavu}</dir>" if dejavu.is_dir() else ""
    path = tmp_path / "fonts.conf"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"{dirs}<cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>"
    )
    return path


def test_the_report_carries_fonts_for_every_character_it_shows(report):
    _, result = report
    pages = "".join(
        html.unescape(p.read_text(encoding="utf-8")) for p in result.root.rglob("*.html")
    )
    chinese = {c for c in pages if "\u4e00" <= c <= "\u9fff"}
    assert len(chinese) > 50, "the quickstart report should show Chinese text"
    for weight in ("regular", "bold"):
        carried = TTFont(result.root / "fonts" / f"{weight}.otf")
        covered = {chr(code) for code in carried.getBestCmap()}
        assert chinese <= covered, sorted(chinese - covered)[:10]
        assert (result.root / "fonts" / f"{weight}.otf").stat().st_size < 2_000_000
    assert font_path("regular").stat().st_size > 10_000_000  # what a copy would have cost


def read_counts(page) -> list[dict]:
    return page.eval_on_selector_all(
        ".count",
        "els => els.map(e => ({...e.dataset, value: Number(e.textContent)}))",
    )


def test_report_in_headless_chromium(report, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    out, result = report
    root = result.root
    stats = stats_files(out)
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    env = {**os.environ, "FONTCONFIG_FILE": str(latin_only_fontconfig(tmp_path))}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            seen_samples: Counter[tuple[str, str]] = Counter()
            for html in sorted(root.rglob("*.html")):
                page.goto(html.as_uri())
                broken = page.evaluate(
                    "Array.from(document.images)"
                    ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
                )
                assert broken == [], f"{html}: thumbnails not loaded: {broken[:3]}"
                relative = html.relative_to(root)
                if len(relative.parts) == 3:
                    split, task = relative.parts[:2]
                    seen_samples[(split, task)] += page.locator("article.sample").count()

            page.goto(result.index.as_uri())
            shot = tmp_path / "index.png"
            page.screenshot(path=str(shot), full_page=True)
            counts = read_counts(page)

            page.goto((root / "rejects.html").as_uri())
            reject_counts = read_counts(page)

            fill_page = root / "train" / "fill" / "index.html"
            page.goto(fill_page.as_uri())
            page.screenshot(path=str(tmp_path / "fill.png"))
            fill_counts = read_counts(page)
            # The zh instructions are drawn with the carried font, not as tofu boxes.
            loaded = page.evaluate(
                "async () => { await document.fonts.ready; return [...document.fonts]"
                ".filter(f => f.status === 'loaded').map(f => f.family + ' ' + f.weight); }"
            )
            zh = page.locator(".instruction", has_text=re.compile("[\u4e00-\u9fff]")).first
            drawn_with = zh.evaluate("e => getComputedStyle(e).fontFamily")
        finally:
            browser.close()

    assert any(family.strip('"').startswith("datapipe CJK") for family in loaded), loaded
    assert "datapipe CJK" in drawn_with

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 20 and (pixels < 200).mean() > 0.02, "blank screenshot"

    # Index: every split/task/language count equals its stats.json.
    on_index = {(c["split"], c["task"], c["language"]): c["value"] for c in counts if "task" in c}
    expected = {}
    for (split, task), s in stats.items():
        expected[(split, task, "all")] = s["samples"]
        for language, n in s["by_language"].items():
            expected[(split, task, language)] = n
    assert on_index == expected
    totals = {c["total"]: c["value"] for c in counts if "total" in c}
    assert totals["samples"] == sum(s["samples"] for s in stats.values())
    filtered = {r["candidate_key"] for r in rejects if r["stage"] == "filter"}
    assert totals["rejected"] == len(filtered)
    assert totals["renders"] == totals["kept"] + totals["rejected"]
    assert totals["pairs-not-made"] == sum(1 for r in rejects if r["stage"] == "tasks")

    # Task pages: header counts equal stats.json, and the pages list every sample once.
    fill = {c["language"]: c["value"] for c in fill_counts}
    assert fill["all"] == stats[("train", "fill")]["samples"]
    assert {k: v for k, v in fill.items() if k != "all"} == stats[("train", "fill")]["by_language"]
    assert dict(seen_samples) == {key: s["samples"] for key, s in stats.items()}

    # Rejects page: one count per (stage, reason), equal to rejects.parquet's rows.
    by_reason = Counter((r["stage"], r["reason"]) for r in rejects)
    shown = Counter()
    for c in reject_counts:
        if "reason" in c:
            shown[(c["stage"], c["reason"])] = c["value"]
    assert shown == by_reason
    rows = {c["total"]: c["value"] for c in reject_counts if "total" in c}
    assert rows["rows"] == len(rejects) and rows["filter-candidates"] == len(filtered)
