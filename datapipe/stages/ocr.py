"""OcrStage: reads the poster's text and verifies it, line by line, against the copy.

A fuzzy similarity cannot tell one wrong digit or a look-alike glyph from OCR noise,
so each expected line is judged on evidence:

- the page read (detector + recogniser) is matched to the copy line (best NED, the
  `found` floor), and compared exactly after `datapipe.text.letters` (written-down
  normalisation) and token by token for numbers (`datapipe.text.numbers`);
- the line is read again from a tight crop of its box turned level by the detected
  tilt, by the recogniser alone, which also gives a confidence per glyph; where that
  read and the page read disagree, or a glyph is weak (`DOUBT_GLYPH`), a third time
  from a looser crop at another scale;
- the line is `ok` when two reads agree with the copy, `wrong` when two agree on
  something else or none agrees, else `doubtful`; its glyph confidence is that of its
  weakest glyph, each glyph taking its best confidence over the crop reads that agree
  with the copy: a damaged glyph is weak in every read, OCR noise in one. Glyphs the
  recogniser confuses on any poster (`AMBIGUOUS`: the letters of O/0, l/1/I, S/5 ...,
  and case pairs) and punctuation do not count: their confidence measures the font,
  not the damage. Digits count: a price must be sure;
- a recogniser reads through most malformed glyphs (a stroke band missing, half
  mirrored, a stroke added) with full confidence, so the glyphs of a line the tight
  crop read as the copy are compared, shape against shape, with their characters in
  reference fonts (`datapipe.backends.ocr_glyphs`), CJK glyphs and Latin letters and
  digits apart: a line's `shape.outlier` (`shape_latin.outlier`) is its worst glyph's
  distance above the line's median, unless another glyph of that character on the
  poster is drawn alike (the font's design); the poster's `ocr.glyph_shape`
  (`ocr.glyph_shape_latin`) the largest of its lines'. A glyph the shape check
  confirms does not set the glyph confidence: the recogniser's doubt about a glyph
  drawn as its character is the recogniser's. Capitals with flat tops and feet are
  compared in height (`ocr.glyph_height`): an l drawn for an I reads as I and has its
  shape, not its height; digits in width against their characters', the poster's
  other digits' taken as the font's (`ocr.glyph_width`): an O drawn for a 0 reads as
  0, and is a third wider; digits against every letter (`ocr.glyph_swap`): an l
  drawn for a 1 reads as 1, and lies nearer an l's references than a 1's; and a
  letter or digit the line holds again against its twins there
  (`ocr.glyph_repeated_latin`): unlike both them and the references, it is damaged
  whatever the font (CJK lines repeat a character too seldom to set a bound on);
- a copy line the detector did not find is looked for again by the reader's detector
  at a coarser scale (very large glyphs escape it at the first); only lines that match
  the copy are taken from that look.

Text the copy did not ask for is scored on its own: a read that repeats a copy line is
a duplicated line; any other read of two glyphs or more, read at least
`unexpected_confidence` sure, is unexpected (every such read is stored with its size,
confidence and whether it looks like words). Every read is stored in details;
verdicts are the filter's job.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from datapipe.backends.ocr_glyphs import check_shapes, lend_medians, match_twins
from datapipe.backends.ocr_paddle import OcrImageError, PaddleOcrBackend
from datapipe.backends.ocr_rapidocr import OcrLine, RapidOcrBackend
from datapipe.records import Candidate, CopyLine
from datapipe.stages.base import CandidateStage, Resources
from datapipe.text import letters, ned_similarity, numbers

VOWELS = set("aeiouy")
DOUBT_GLYPH = 0.97
"""A glyph read less sure than this by the tight crop sends the line to a third read."""
AMBIGUOUS = set("OolIi|SsZzBbCcKkPpUuVvWwXx$")
"""Letters that look alike in many fonts (O/0, l/1/I, S/5), or differ only in case: low
confidence on them is the recogniser's, on any poster, so they never set a line's glyph
confidence."""


def _same_row(a: OcrLine, b: OcrLine) -> bool:
    top, bottom = max(a.box[1], b.box[1]), min(a.box[3], b.box[3])
    return bottom - top > 0.5 * min(a.box[3] - a.box[1], b.box[3] - b.box[1])


def reading_candidates(lines: list[OcrLine]) -> list[tuple[str, list[int]]]:
    """Each line, plus neighbours on one row joined, since OCR may split a line in two."""
    ordered = sorted(range(len(lines)), key=lambda i: (lines[i].box[1], lines[i].box[0]))
    out = [(lines[i].text, [i]) for i in ordered]
    for a in ordered:
        row = sorted(
            (b for b in ordered if b != a and _same_row(lines[a], lines[b])),
            key=lambda b: lines[b].box[0],
        )
        right = [b for b in row if lines[b].box[0] > lines[a].box[0]]
        if right:
            b = right[0]
            out.append((lines[a].text + " " + lines[b].text, [a, b]))
    return out


def crop_pad(box: tuple[int, ...]) -> int:
    """Ground left around a line box in its tight crop."""
    return max(2, round(max(4, box[3] - box[1]) * 0.15))


def line_crops(
    image: Image.Image, box: tuple[int, int, int, int], angle: float
) -> list[tuple[str, Image.Image]]:
    """Two views of a line for the recogniser: tight and levelled; loose at another scale."""
    x0, y0, x1, y1 = box
    h = max(4, y1 - y0)
    pad = crop_pad(box)
    tight = image.crop((x0 - pad, y0 - pad, x1 + pad, y1 + pad))
    if abs(angle) > 0.5:
        edge = tight.getpixel((0, 0))
        tight = tight.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=edge)
    wide = round(h * 0.4)
    loose = image.crop((x0 - wide, y0 - wide, x1 + wide, y1 + wide))
    # The recogniser reads lines 48 px high: a smaller line is scaled up, not down.
    scale = 0.8 if h * 0.8 >= 48 else 2.0
    size = (max(8, round(loose.width * scale)), max(8, round(loose.height * scale)))
    loose = loose.resize(size, Image.Resampling.BILINEAR)
    return [("tight", tight), ("loose", loose)]


def looks_like_words(text: str) -> bool | None:
    """Latin words have vowels; gibberish such as XKQW does not. None for CJK text, where
    glyphs alone cannot tell (no word list ships with the package)."""
    words = ["".join(c for c in w if c.isalpha()) for w in text.casefold().split()]
    words = [w for w in words if len(w) > 1 and w.isascii()]
    if not words:
        return None
    return all(any(c in VOWELS for c in w) for w in words)


def _worst(found: list[dict[str, Any]], check: str, measure: str) -> float | None:
    """The largest `measure` of a shape `check` over the lines found; None where no line
    was scored (the check does not apply, which passes)."""
    values = [r[check][measure] for r in found if r.get(check) and r[check][measure] is not None]
    return max(values) if values else None


def glyph_confidence(
    reads: list[dict[str, Any]], sure: set[tuple[int, str]] | None = None
) -> float | None:
    """The weakest glyph's best confidence over reads of the same text (see the module
    docstring); None when no read aligns glyph for glyph. Glyphs in `sure` ((place
    among the glyphs, white space excluded; character)) had their shape matched to
    their character (`ShapeCheck.confirmed`): they do not count either."""
    aligned = [r for r in reads if len(r["glyphs"]) == len(r["text"])]
    if not aligned:
        return None
    text = aligned[0]["text"]
    same = [r["glyphs"] for r in aligned if r["text"] == text]
    best = [max(column) for column in zip(*same, strict=True)]
    glyphs = [(c, g) for c, g in zip(text, best, strict=True) if not c.isspace()]
    sure = sure or set()
    counted = [
        g
        for place, (c, g) in enumerate(glyphs)
        if c.isalnum() and c not in AMBIGUOUS and (place, c) not in sure
    ]
    return round(min(counted), 4) if counted else None


class OcrStage(CandidateStage):
    name = "ocr"
    resources: ClassVar[Resources] = Resources(cpus=1.0)
    batch_size: ClassVar[int] = 4
    produces: ClassVar[tuple[str, ...]] = (
        "ocr.lines_expected",
        "ocr.lines_found",
        "ocr.missing_lines",
        "ocr.min_line_ned",
        "ocr.min_found_ned",
        "ocr.mean_line_ned",
        "ocr.exact_fraction",
        "ocr.unexpected_lines",
        "ocr.unexpected_chars",
        "ocr.lines_wrong",
        "ocr.lines_doubtful",
        "ocr.number_mismatches",
        "ocr.min_glyph_confidence",
        "ocr.glyph_shape",
        "ocr.glyph_shape_latin",
        "ocr.glyph_height",
        "ocr.glyph_width",
        "ocr.glyph_swap",
        "ocr.glyph_repeated_latin",
        "ocr.duplicated_lines",
    )

    def setup(self) -> None:
        config = self.config
        options = {
            "threads": config.threads,
            "det_limit_side_len": config.det_limit_side_len,
            "det_limit_type": config.det_limit_type,
        }
        if config.backend == "rapidocr":
            self.backend: RapidOcrBackend | PaddleOcrBackend = RapidOcrBackend(**options)
            self.reader = self.backend
        elif config.backend == "paddleocr":
            self.backend = PaddleOcrBackend(config.paddleocr, **options)
            # RapidOCR's recogniser re-reads the lines: a second, independent model.
            self.reader = RapidOcrBackend(**options)
            self.reader.load()
        else:
            raise ValueError(f"stages.ocr.backend: unknown backend {config.backend!r}")
        self.backend.load()
        self.floor = config.match_floor
        self.min_confidence = config.min_confidence
        self.unexpected_confidence = config.unexpected_confidence

    def teardown(self) -> None:
        """The paddleocr backend holds a worker process."""
        close = getattr(getattr(self, "backend", None), "close", None)
        if close is not None:
            close()

    def annotate(self, candidate: Candidate, image: Image.Image) -> None:
        try:
            lines = self.backend.read(image)
        except OcrImageError as fault:
            # No ocr.* scores: the filter rejects the candidate for every OCR rule, and
            # this error says why.
            candidate.details["ocr"] = {"backend": self.backend.version, "error": str(fault)}
            return
        read = [line for line in lines if line.confidence >= self.min_confidence]
        first = len(read)
        copy = candidate.spec.copy
        used: set[int] = set()
        options = reading_candidates(read)
        rows = [self.find(image, line, read, options, used) for line in copy]
        if not all(row["found"] for row in rows):
            # A line the detector missed is looked for again, by the reader's detector at a
            # coarser scale; its new lines count only where they are a copy line.
            more = [
                line
                for line in self.reader.read(image, coarse=True)
                if line.confidence >= self.min_confidence
                and not any(_overlaps(line.box, seen.box) for seen in read)
            ]
            read = read + more
            options = [o for o in reading_candidates(read) if max(o[1]) >= first]
            for k, row in enumerate(rows):
                if not row["found"]:
                    rows[k] = {
                        **self.find(image, copy[k], read, options, used),
                        "detection": "coarse",
                    }
        judge_shapes(rows)
        extra = self.unrequested(
            [line for i, line in enumerate(read) if i not in used and i < first],
            [line.text for line in copy],
            image.height,
        )
        self.record(candidate, rows, read, extra)

    def find(
        self,
        image: Image.Image,
        line: CopyLine,
        read: list[OcrLine],
        options: list[tuple[str, list[int]]],
        used: set[int],
    ) -> dict[str, Any]:
        """The read that best matches a copy line (`used` gains its lines), and the
        evidence on it (`verify`); `found` when it is at least `match_floor` alike."""
        expected = line.text
        best_text, best_ned, best_idx = "", 0.0, []
        for text, idx in options:
            ned = ned_similarity(expected, text)
            if ned > best_ned:
                best_text, best_ned, best_idx = text, ned, idx
        found = best_ned >= self.floor
        row: dict[str, Any] = {
            "role": line.role,
            "expected": expected,
            "detection": "first",
            "read": best_text,
            "ned": round(best_ned, 4),
            "exact": letters(best_text) == letters(expected),
            "found": found,
            "box": None,
            "status": "missing",
        }
        if found:
            used.update(best_idx)
            box = _union([read[i].box for i in best_idx])
            row["box"] = list(box)
            row.update(self.verify(image, expected, best_text, box, read[best_idx[0]].angle))
        return row

    def verify(
        self, image: Image.Image, expected: str, page: str, box: tuple[int, ...], angle: float
    ) -> dict[str, Any]:
        """The evidence on one found line: every read, the status, numbers, glyphs."""
        want = letters(expected)
        reads: list[dict[str, Any]] = [{"view": "page", "text": page}]
        shapes = None
        for view, crop in line_crops(image, box, angle):
            if len(reads) == 2 and not self.in_doubt(reads, want):
                break
            got = self.reader.recognize(crop)
            if view == "tight" and letters(got.text) == want:
                shapes = check_shapes(
                    np.asarray(crop.convert("RGB")), got.text, got.places, crop_pad(box)
                )
            reads.append(
                {
                    "view": view,
                    "text": got.text,
                    "confidence": round(got.confidence, 4),
                    "min_glyph": round(min(got.glyphs), 4) if got.glyphs else None,
                    "glyphs": [round(g, 4) for g in got.glyphs],
                }
            )
        votes = Counter(letters(r["text"]) for r in reads)
        agree = votes.pop(want, 0)
        other, n_other = votes.most_common(1)[0] if votes else ("", 0)
        if agree >= 2:
            status, consensus = "ok", expected
        elif n_other >= 2 or agree == 0:
            status = "wrong"
            consensus = next(r["text"] for r in reads if letters(r["text"]) == other)
        else:
            status, consensus = "doubtful", page
        return {
            "status": status,
            "reads": reads,
            "numbers_expected": numbers(expected),
            "numbers_read": numbers(consensus),
            "glyph_confidence": None,  # set by judge_shapes, once twins are known
            "shapes": shapes,
        }

    @staticmethod
    def in_doubt(reads: list[dict[str, Any]], want: str) -> bool:
        """After the page read and the tight re-read: is a third read needed? Yes when the
        two disagree, or agree with the copy but a glyph is weak (noise or damage)."""
        page, tight = (letters(r["text"]) for r in reads)
        if page != tight:
            return True
        if tight != want:
            return False
        weak = glyph_confidence(reads[1:])
        return weak is not None and weak < DOUBT_GLYPH

    @staticmethod
    def unrequested(left: list[OcrLine], copy: list[str], height: int) -> list[dict[str, Any]]:
        """Reads no copy line claimed: a repeat of a copy line, or text of its own."""
        wanted = [letters(t) for t in copy]
        out = []
        for line in left:
            got = letters(line.text)
            if len(got) < 2:
                continue
            repeat = any(ned_similarity(w, got) >= 0.9 for w in wanted if w)
            out.append(
                {
                    "text": line.text,
                    "confidence": round(line.confidence, 4),
                    "height": round((line.box[3] - line.box[1]) / max(1, height), 4),
                    "kind": "duplicate" if repeat else "unexpected",
                    "words": looks_like_words(line.text),
                }
            )
        return out

    def record(
        self,
        candidate: Candidate,
        rows: list[dict[str, Any]],
        read: list[OcrLine],
        extra: list[dict[str, Any]],
    ) -> None:
        neds = [row["ned"] for row in rows]
        found = [row for row in rows if row["found"]]
        found_neds = [row["ned"] for row in found]
        glyphs = [row["glyph_confidence"] for row in found if row["glyph_confidence"] is not None]
        unexpected = [
            u
            for u in extra
            if u["kind"] == "unexpected" and u["confidence"] >= self.unexpected_confidence
        ]
        s = candidate.scores
        s["ocr.lines_expected"] = float(len(rows))
        s["ocr.lines_found"] = float(len(found_neds))
        s["ocr.missing_lines"] = float(len(rows) - len(found_neds))
        s["ocr.min_line_ned"] = min(neds) if neds else 1.0
        s["ocr.min_found_ned"] = min(found_neds) if found_neds else None
        s["ocr.mean_line_ned"] = round(sum(neds) / len(neds), 4) if neds else 1.0
        s["ocr.exact_fraction"] = (sum(r["exact"] for r in rows) / len(rows)) if rows else 1.0
        s["ocr.unexpected_lines"] = float(len(unexpected))
        s["ocr.unexpected_chars"] = float(sum(len(letters(u["text"])) for u in unexpected))
        s["ocr.lines_wrong"] = float(sum(r["status"] == "wrong" for r in found))
        s["ocr.lines_doubtful"] = float(sum(r["status"] == "doubtful" for r in found))
        s["ocr.number_mismatches"] = float(
            sum(r["numbers_read"] != r["numbers_expected"] for r in found)
        )
        s["ocr.min_glyph_confidence"] = min(glyphs) if glyphs else None
        s["ocr.glyph_shape"] = _worst(found, "shape", "outlier")
        s["ocr.glyph_shape_latin"] = _worst(found, "shape_latin", "outlier")
        s["ocr.glyph_height"] = _worst(found, "shape_latin", "height")
        s["ocr.glyph_width"] = _worst(found, "shape_latin", "width")
        s["ocr.glyph_swap"] = _worst(found, "shape_latin", "swap")
        s["ocr.glyph_repeated_latin"] = _worst(found, "shape_latin", "repeated")
        s["ocr.duplicated_lines"] = float(sum(u["kind"] == "duplicate" for u in extra))
        candidate.details["ocr"] = {
            "backend": self.backend.version,
            "reader": self.reader.version,
            "lines": rows,
            "recognized": [
                {"text": r.text, "confidence": round(r.confidence, 4), "box": list(r.box)}
                for r in read
            ],
            "unexpected": [u["text"] for u in unexpected],
            "unrequested": extra,
        }


def judge_shapes(rows: list[dict[str, Any]]) -> None:
    """Turn each row's shape checks (`verify`) into its stored `shape` (CJK glyphs) and
    `shape_latin` (letters and digits), after matching each glyph with its twins on the
    other lines of the poster (`match_twins`) and lending a short Latin line (a price)
    the poster's median (`lend_medians`), and set its glyph confidence: a glyph
    confirmed only by a twin on another line is confirmed too, so it waits for them."""
    checked = [row["shapes"] for row in rows if row.get("shapes")]
    for script in ("cjk", "latin"):
        match_twins([shapes[script] for shapes in checked])
    # A two-glyph CJK line is mostly a large title (婚礼), where one bad cut is no damage.
    lend_medians([shapes["latin"] for shapes in checked])
    for row in rows:
        shapes = row.pop("shapes", None)
        if row["found"]:
            row["shape"] = shapes["cjk"].summary() if shapes else None
            row["shape_latin"] = shapes["latin"].summary() if shapes else None
            want = letters(row["expected"])
            sure = set().union(*(c.confirmed() for c in shapes.values())) if shapes else set()
            row["glyph_confidence"] = glyph_confidence(
                [r for r in row["reads"] if r["view"] != "page" and letters(r["text"]) == want],
                sure,
            )


def _overlaps(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Do two boxes share over half of the smaller one's area?"""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return False
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h > 0.5 * max(1, smaller)


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
