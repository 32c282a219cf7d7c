"""Block pages: one HTML page per kind of block (`Page`), rendered with jinja2.

Every page is self-contained: inline CSS, inline SVG, no scripts, no fonts,
nothing fetched from anywhere (a meta Content-Security-Policy says so too);
the only address in it is the review form's action.  The top of the page is
for a seven-year-old ("This page is blocked", "Ask your teacher"); the box
below is for the teacher: what was blocked, why, group, rule, who, when, and a
reference number, with a form to ask for the site to be reviewed.

The ILLEGAL page carries the Internet Watch Foundation's recommended wording
and never the URL, host or search term, nor a review form.

References ("SG-3F9K-2Q7M") come from `make_reference(now, counter)`: 40 bits
(the second, and a counter within it) scrambled by an invertible map and
written with 32 unambiguous characters (no 0/O, 1/I).  `parse_reference`
recovers the second and counter.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from proxy.decision import Action, Decision, Page

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
MAX_URL_SHOWN = 500

_TEMPLATES: dict[Page, str] = {
    Page.NONE: "block_category.html",
    Page.CATEGORY: "block_category.html",
    Page.WALLED_GARDEN: "block_walled_garden.html",
    Page.NOT_AUTHORISED: "block_not_authorised.html",
    Page.ACCESS_REMOVED: "block_access_removed.html",
    Page.DEVICE_NOT_ALLOWED: "block_device_not_allowed.html",
    Page.INTERNAL: "block_internal.html",
    Page.REFUSED: "block_refused.html",
    Page.ILLEGAL: "block_illegal.html",
}
_REVIEWABLE = frozenset({Page.NONE, Page.CATEGORY, Page.WALLED_GARDEN})

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_BITS = 40
_MASK = (1 << _BITS) - 1
_MUL = 0x9E3779B97F & _MASK | 1        # odd, so invertible modulo 2**40
_ADD = 0x5DEECE66D & _MASK
_INV = pow(_MUL, -1, 1 << _BITS)
_COUNTER_BITS = 10
_EPOCH = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
_REFERENCE_RE = re.compile(r"^SG-?([2-9A-HJ-NP-Z]{4})-?([2-9A-HJ-NP-Z]{4})$")

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def make_reference(now: dt.datetime, counter: int) -> str:
    """A short, human-friendly reference for one block, e.g. "SG-3F9K-2Q7M"."""
    seconds = (int(now.timestamp()) - _EPOCH) & ((1 << (_BITS - _COUNTER_BITS)) - 1)
    value = (seconds << _COUNTER_BITS) | (counter & ((1 << _COUNTER_BITS) - 1))
    scrambled = (value * _MUL + _ADD) & _MASK
    chars = []
    for _ in range(_BITS // 5):
        chars.append(_ALPHABET[scrambled & 31])
        scrambled >>= 5
    code = "".join(reversed(chars))
    return f"SG-{code[:4]}-{code[4:]}"


def parse_reference(text: str) -> tuple[dt.datetime, int] | None:
    """The (UTC second, counter) a reference was made from, or None if it is not one.

    Lower case, spaces and missing dashes are forgiven.  The second is exact
    for references made within about 34 years of 2024.
    """
    m = _REFERENCE_RE.match(re.sub(r"\s+", "", text).upper())
    if m is None:
        return None
    scrambled = 0
    for ch in m.group(1) + m.group(2):
        scrambled = (scrambled << 5) | _ALPHABET.index(ch)
    value = ((scrambled - _ADD) * _INV) & _MASK
    seconds, counter = value >> _COUNTER_BITS, value & ((1 << _COUNTER_BITS) - 1)
    return dt.datetime.fromtimestamp(_EPOCH + seconds, tz=dt.UTC), counter


def format_when(when: dt.datetime) -> str:
    """School-local time in words: "Monday 23 November 2026 at 09:15"."""
    return (f"{_DAYS[when.weekday()]} {when.day} {_MONTHS[when.month - 1]} {when.year} "
            f"at {when.hour:02d}:{when.minute:02d}")


def _form_source(review_action: str) -> str:
    """The CSP form-action source for the review form's action URL."""
    if review_action.startswith("/") and not review_action.startswith("//"):
        return "'self'"
    parts = urlsplit(review_action)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"review_action must be a path or an http(s) URL, not {review_action!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _why(decision: Decision, describe: Callable[[str], str]) -> str:
    if decision.categories:
        words = [describe(c) for c in decision.categories]
        return ", ".join(dict.fromkeys(w for w in words if w)) or decision.reason
    return decision.reason


def render_block_page(
    decision: Decision,
    *,
    url: str,
    host: str,
    when: dt.datetime,
    reference: str,
    school_name: str,
    describe: Callable[[str], str],
    review_action: str,
    csrf_token: str,
    user: str | None,
    device: str | None,
) -> str:
    """The HTML page for a blocked request (one template per `decision.page`).

    `when` is already in school-local time; `describe` turns a category name
    into plain words.  For `Page.ILLEGAL` nothing about the request but the
    time and reference reaches the template.
    """
    if decision.action is not Action.BLOCK:
        raise ValueError(f"no block page for an allowed request (rule {decision.rule})")
    template = _environment().get_template(_TEMPLATES[decision.page])
    common = {
        "school_name": school_name,
        "reference": reference,
        "when_text": format_when(when),
    }
    if decision.page is Page.ILLEGAL:
        return template.render(common, form_src="'none'")
    show_review = decision.page in _REVIEWABLE
    return template.render(
        common,
        form_src=_form_source(review_action) if show_review else "'none'",
        show_review=show_review,
        review_action=review_action,
        csrf_token=csrf_token,
        host=host,
        url=url if len(url) <= MAX_URL_SHOWN else url[:MAX_URL_SHOWN] + "\u2026",
        why_text=_why(decision, describe),
        reason=decision.reason,
        group=decision.group,
        rule=decision.rule,
        user=user,
        device=device,
    )


def render_review_thanks(reference: str, *, school_name: str = "School") -> str:
    """The page shown after a review request was sent."""
    template = _environment().get_template("review_thanks.html")
    return template.render(school_name=school_name, reference=reference, form_src="'none'")
