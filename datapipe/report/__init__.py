"""Static HTML report of a run's output (`datapipe report OUT`)."""

from __future__ import annotations

from datapipe.report.build import MARKER, ReportResult, build_report

__all__ = ["MARKER", "ReportResult", "build_report"]
