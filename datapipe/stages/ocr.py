"""OcrStage: reads the poster's text and compares it with the copy the spec asked for.

For each expected copy line it stores the best-matching recognised text, its
normalised edit similarity (NED) and an exact-match flag; recognised text that
matches no expected line is stored as unexpected. Verdicts are the filter's job.
"""

from __future__ import annotations

from typing import ClassVar

from PIL import Image

from datapipe.backends.ocr_paddle import OcrImageError, PaddleOcrBackend
from datapipe.backends.ocr_rapidocr import OcrLine, RapidOcrBackend
from datapipe.records import Candidate
from datapipe.stages.base import CandidateStage, Resources
from datapipe.text import ned_similarity, normalize


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
    )

    def setup(self) -> None:
        config = self.recipe.stages.ocr
        options = {
            "threads": config.threads,
            "det_limit_side_len": config.det_limit_side_len,
            "det_limit_type": config.det_limit_type,
        }
        if config.backend == "rapidocr":
            self.backend: RapidOcrBackend | PaddleOcrBackend = RapidOcrBackend(**options)
        elif config.backend == "paddleocr":
            self.backend = PaddleOcrBackend(config.paddleocr, **options)
        else:
            raise ValueError(f"stages.ocr.backend: unknown backend {config.backend!r}")
        self.backend.load()
        self.floor = config.match_floor
        self.min_confidence = config.min_confidence

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
        options = reading_candidates(read)
        used: set[int] = set()
        rows = []
        for line in candidate.spec.copy:
            best_text, best_ned, best_idx = "", 0.0, []
            for text, idx in options:
                ned = ned_similarity(line.text, text)
                if ned > best_ned:
                    best_text, best_ned, best_idx = text, ned, idx
            found = best_ned >= self.floor
            if found:
                used.update(best_idx)
            rows.append(
                {
                    "role": line.role,
                    "expected": line.text,
                    "read": best_text,
                    "ned": round(best_ned, 4),
                    "exact": normalize(best_text) == normalize(line.text),
                    "found": found,
                    "box": list(_union([read[i].box for i in best_idx])) if found else None,
                }
            )
        unexpected = [
            line for i, line in enumerate(read) if i not in used and len(normalize(line.text)) >= 2
        ]
        neds = [row["ned"] for row in rows]
        found_neds = [row["ned"] for row in rows if row["found"]]
        s = candidate.scores
        s["ocr.lines_expected"] = float(len(rows))
        s["ocr.lines_found"] = float(len(found_neds))
        s["ocr.missing_lines"] = float(len(rows) - len(found_neds))
        s["ocr.min_line_ned"] = min(neds) if neds else 1.0
        s["ocr.min_found_ned"] = min(found_neds) if found_neds else None
        s["ocr.mean_line_ned"] = round(sum(neds) / len(neds), 4) if neds else 1.0
        s["ocr.exact_fraction"] = (sum(r["exact"] for r in rows) / len(rows)) if rows else 1.0
        s["ocr.unexpected_lines"] = float(len(unexpected))
        s["ocr.unexpected_chars"] = float(sum(len(normalize(u.text)) for u in unexpected))
        candidate.details["ocr"] = {
            "backend": self.backend.version,
            "lines": rows,
            "recognized": [
                {"text": r.text, "confidence": round(r.confidence, 4), "box": list(r.box)}
                for r in read
            ],
            "unexpected": [u.text for u in unexpected],
        }


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
