"""Email rendering: plain text and HTML from jinja2 templates (HTML autoescaped).

`Renderer.alert` / `summary` / `digest` / `test` return a `Rendered` email
(subject, text, html).  The illegal tier has its own templates, which have no
place for a URL, host, link or page content at all.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from alerts.hits import Hit
from alerts.views import AlertView, clock_time, group_lines, when

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


class Renderer:
    def __init__(self, school: str, timezone: ZoneInfo) -> None:
        self.school = school
        self.tz = timezone
        self.env = environment()

    def _both(self, name: str, subject: str, **values: object) -> Rendered:
        text = self.env.get_template(f"{name}.txt").render(school=self.school, **values)
        html = self.env.get_template(f"{name}.html").render(school=self.school, subject=subject, **values)
        return Rendered(subject, text, html)

    def alert(self, view: AlertView) -> Rendered:
        return self._both("illegal" if view.illegal else "alert", view.subject, v=view)

    def summary(self, hits: Sequence[tuple[Hit, str]], *, cap: int, since: dt.datetime,
                now: dt.datetime) -> Rendered:
        """The email sent instead of individual alerts once `cap` emails went out in the hour."""
        lines, left_out = group_lines(hits, self.tz, limit=100)
        total = sum(h.attempts for h, _ in hits)
        illegal = sum(1 for h, _ in hits if h.illegal)
        subject = (f"[Schoolgate] IMMEDIATE: summary of {total} more flagged hits "
                   f"({len(lines) + left_out} people or devices)")
        return self._both("summary", subject, lines=lines, left_out=left_out, total=total, cap=cap,
                          illegal=illegal, since=when(since, self.tz), now=when(now, self.tz))

    def digest(self, hits: Sequence[tuple[Hit, str]], *, start: dt.datetime, end: dt.datetime,
               every: str) -> Rendered:
        lines, left_out = group_lines(hits, self.tz, limit=200)
        total = sum(h.attempts for h, _ in hits)
        same_day = start.astimezone(self.tz).date() == end.astimezone(self.tz).date()
        period = f"{when(start, self.tz)} to {clock_time(end, self.tz) if same_day else when(end, self.tz)}"
        subject = f"[Schoolgate] DIGEST: {total} flagged {'hit' if total == 1 else 'hits'}, {period}"
        return self._both("digest", subject, lines=lines, left_out=left_out, total=total, period=period,
                          every=every)

    def test(self, now: dt.datetime, server: str) -> Rendered:
        subject = "[Schoolgate] Test email: alerts reach you"
        text = self.env.get_template("test.txt").render(school=self.school, now=when(now, self.tz), server=server)
        return Rendered(subject, text, "")
