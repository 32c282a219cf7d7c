"""A weekly report on disk: `<dir>/weekly-2026-W47/report.html`, `report.txt` and the CSV files."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from config.schema import RetentionSettings
from reports.csvout import write_weekly_csvs
from reports.files import private_dir, write_text
from reports.model import WeeklyReport
from reports.render import render

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    html: Path
    text: Path
    csvs: list[Path]


def render_weekly(report: WeeklyReport, retention: RetentionSettings) -> tuple[str, str]:
    """(HTML, plain text) of a weekly report."""
    html = render("weekly.html", r=report, retention=retention)
    text = render("weekly.txt", r=report)
    return html, text


def write_weekly(report: WeeklyReport, base: Path, retention: RetentionSettings,
                 rendered: tuple[str, str] | None = None) -> ReportFiles:
    folder = private_dir(private_dir(base) / f"weekly-{report.period.label}")
    html, text = rendered or render_weekly(report, retention)
    files = ReportFiles(folder, write_text(folder / "report.html", html), write_text(folder / "report.txt", text),
                        write_weekly_csvs(report, folder))
    logger.info("weekly report %s written to %s", report.period.label, folder)
    return files
