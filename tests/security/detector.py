"""A script-free detector of injected markup in a page (a browser's dumped DOM, or raw HTML).

`findings(html, allowed_tags)` parses the page with the standard library's
HTML parser and lists everything a payload could have added: an element
outside the page's own vocabulary (`<script>`, `<iframe>`, `<img>`, `<base>`,
`<object>`, a second form…), any `on*` event-handler attribute, a
`javascript:`/`vbscript:`/`data:text` URL in a link, source or form action,
`srcdoc`, a `<meta http-equiv=refresh>`, a link that leaves the page, and any
attribute value carrying the corpus's markers (PWNED, SGXSS).  The page's
own text may hold every payload: escaped, it is only text.

`console_findings(stderr)` reads Chromium's `--enable-logging=stderr --v=0`
output for console lines a payload would cause: a CSP violation (an inline
script or handler that the page's policy stopped) or a marker.

`terminal_findings(text)` lists control and bidi-override characters that a
terminal would act on, for command-line output.
"""
from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

MARKERS = ("PWNED", "SGXSS")
URL_ATTRS = frozenset({"href", "src", "action", "formaction", "xlink:href", "data", "background", "poster",
                       "codebase", "cite", "ping"})
BAD_SCHEMES = ("javascript:", "vbscript:", "data:text", "data:application", "livescript:")
# every element Schoolgate's own block pages, emails and reports use
PAGE_TAGS = frozenset({
    "html", "head", "body", "meta", "title", "style", "main", "div", "span", "section", "header", "footer", "nav",
    "h1", "h2", "h3", "h4", "p", "small", "em", "strong", "b", "i", "code", "br", "hr", "dl", "dt", "dd", "ul", "ol",
    "li", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "form", "input", "label", "textarea",
    "button", "a", "link", "svg", "circle", "path", "rect", "line", "text", "g", "polyline", "abbr", "sup",
})
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
         "\u200e", "\u200f", "\u061c"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str]]]] = []
        self.text: list[str] = []
        self.title: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, [(k, v or "") for k, v in attrs]))
        self._in_title = tag == "title" and not any(t == "svg" for t, _ in self.elements[:-1])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, [(k, v or "") for k, v in attrs]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.title.append(data)


def parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    c.close()
    return c


def page_text(html: str) -> str:
    """The page's text (what a reader sees, entities decoded)."""
    return "".join(parse(html).text)


def page_title(html: str) -> str:
    c = parse(html)
    return "".join(c.title).strip()


def _scheme(value: str) -> str:
    return re.sub(r"[\x00-\x20]", "", value).lower()


def findings(html: str, *, allowed_tags: frozenset[str] = PAGE_TAGS,
             allowed_forms: tuple[str, ...] = ()) -> list[str]:
    """What in `html` could only have come from an injected payload (empty: nothing)."""
    c = parse(html)
    out: list[str] = []
    forms = 0
    for tag, attrs in c.elements:
        where = f"<{tag} {' '.join(k for k, _ in attrs)}>"
        if tag not in allowed_tags:
            out.append(f"unexpected element {where}")
        names = {k for k, _ in attrs}
        for k, v in attrs:
            if k.startswith("on"):
                out.append(f"event handler {k}= on {where}")
            if k == "srcdoc":
                out.append(f"srcdoc on {where}")
            if k in URL_ATTRS and _scheme(v).startswith(BAD_SCHEMES):
                out.append(f"script URL {k}={v[:60]!r} on {where}")
            if k == "style" and re.search(r"javascript:|expression\(|url\(", v, re.I):
                out.append(f"style {v[:60]!r} on {where}")
            if any(m in v for m in MARKERS):
                out.append(f"marker in attribute {k}={v[:60]!r} on {where}")
        if tag == "meta" and dict(attrs).get("http-equiv", "").lower() == "refresh":
            out.append("meta refresh")
        if tag == "a" and "href" in names and not dict(attrs)["href"].startswith("#"):
            out.append(f"link out of the page: {dict(attrs)['href'][:60]!r}")
        if tag == "link" and not dict(attrs).get("href", "").startswith("data:"):
            out.append(f"link element to {dict(attrs).get('href', '')[:60]!r}")
        if tag == "form":
            forms += 1
            if dict(attrs).get("action", "") not in allowed_forms:
                out.append(f"form posting to {dict(attrs).get('action', '')[:60]!r}")
        if tag in ("input", "textarea", "button") and ("form" in names or "formaction" in names):
            out.append(f"form override on {where}")
    if forms > len(allowed_forms):
        out.append(f"{forms} forms where the page has {len(allowed_forms)}")
    if any(m in "".join(c.title) for m in MARKERS):
        out.append(f"title is {''.join(c.title)!r}")
    return out


def console_findings(stderr: str) -> list[str]:
    """Chromium console lines a payload would cause (CSP stopped a script, or a marker was logged)."""
    out = []
    for line in stderr.splitlines():
        if ":CONSOLE" not in line:
            continue
        if "Content Security Policy" in line or any(m in line for m in MARKERS):
            out.append(line[:300])
    return out


def terminal_findings(text: str) -> list[str]:
    """Characters a terminal would act on or reorder: C0/C1 controls (but newline), DEL, bidi overrides."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\n":
            continue
        if ch in _BIDI or unicodedata.category(ch) == "Cc" or ch in ("\u2028", "\u2029"):
            out.append(f"{unicodedata.name(ch, hex(ord(ch)))} at {i}")
    return out
