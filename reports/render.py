"""Render reports with jinja2 (autoescaped): HTML for people, plain text for the email's first part.

The HTML is one self-contained file: styles inline in the head, charts as
inline SVG, no scripts, and a Content-Security-Policy that forbids fetching
anything, so opening it (in a browser or a mail client) makes no request.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

from reports import charts

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"
HTML_LIMIT = 200        # rows of a long table shown in the HTML; the CSV beside it has them all


def _num(value: int | float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def _when(value: dt.datetime | None, fmt: str = "%a %d %b %H:%M") -> str:
    return "–" if value is None else value.strftime(fmt)


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


_ENV: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                                 autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
                                 undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters.update(num=_num, when=_when, plural=_plural)
        env.globals.update(hbars=charts.hbars, columns=charts.columns, heatmap=charts.heatmap, csp=CSP,
                           limit=HTML_LIMIT, weekdays=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
        _ENV = env
    return _ENV


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
