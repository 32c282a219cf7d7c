"""What a report may say about one visit: the illegal tier is never named.

A hit on an `iwf` or `ctiru` list is reported as an event (when, who, that it
was the illegal tier) but its URL, host and search term are withheld
everywhere a report, a CSV, an export or the incident context prints them:
repeating such an address would spread it.
"""
from __future__ import annotations

from collections.abc import Iterable

from config.schema import ILLEGAL_CATEGORIES

WITHHELD = "[withheld: illegal-content list]"
ILLEGAL_RULE = "illegal_tier"


def is_illegal(categories: Iterable[str], rule: str = "") -> bool:
    """Whether a visit with these categories / this rule is an illegal-tier hit."""
    return rule == ILLEGAL_RULE or any(c in ILLEGAL_CATEGORIES for c in categories)


def visit_url(scheme: str, host: str, path: str) -> str:
    """The address of a visit as people read it (CONNECT rows have no path: host only)."""
    if not path or path == "/":
        return f"{scheme}://{host}/" if scheme else host
    return f"{scheme}://{host}{path}"


def shown_url(scheme: str, host: str, path: str, categories: Iterable[str], rule: str = "") -> str:
    """The URL to print, or the withheld marker for the illegal tier."""
    if is_illegal(categories, rule):
        return WITHHELD
    return visit_url(scheme, host, path)


def shown_host(host: str, categories: Iterable[str], rule: str = "") -> str:
    return WITHHELD if is_illegal(categories, rule) else host


def shown_term(term: str | None, categories: Iterable[str], rule: str = "") -> str | None:
    if term is None:
        return None
    return WITHHELD if is_illegal(categories, rule) else term
