"""The injection corpus (`injections.txt`) and the ways a payload is put into a request.

`payloads()` decodes the file (see its header for the format).  The helpers
turn a payload into what can travel in each place of an HTTP/1.1 request:
the request target keeps every printable ASCII character as it is (so `<`,
`"` and `'` arrive raw) and percent-encodes the rest; header values keep
everything but CR, LF and NUL, which would end the header.
"""
from __future__ import annotations

import codecs
import functools
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

CORPUS = Path(__file__).resolve().parent / "injections.txt"
_REPEAT = re.compile(r"^\*(\d+) (.*)$")

# printable ASCII that may stay raw in a request target (not space, '#' or '?', which change its meaning)
_RAW_IN_PATH = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#?%")
_RAW_IN_QUERY = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#&+%")


@functools.cache
def payloads() -> tuple[str, ...]:
    out = []
    for line in CORPUS.read_text(encoding="ascii").splitlines():
        if not line or line == "#" or line.startswith("# "):
            continue
        m = _REPEAT.match(line)
        if m:
            line = m.group(2) * int(m.group(1))
        out.append(codecs.decode(line, "unicode_escape"))
    return tuple(out)


def for_path(payload: str) -> str:
    """The payload as one path segment of a request target: raw where HTTP allows, else %XX.

    A '%' is kept only where it starts a valid %XX escape (the corpus's percent-encoded forms).
    """
    parts = re.split(r"(%[0-9A-Fa-f]{2})", payload)
    return "".join(p if i % 2 else quote(p, safe=_RAW_IN_PATH) for i, p in enumerate(parts))


def for_query(payload: str) -> str:
    parts = re.split(r"(%[0-9A-Fa-f]{2})", payload)
    return "".join(p if i % 2 else quote(p, safe=_RAW_IN_QUERY) for i, p in enumerate(parts))


def for_search(payload: str) -> str:
    """A query-string value the way a search box sends it (form encoding)."""
    return quote_plus(payload)


def for_header(payload: str) -> str:
    """A header value: CR, LF and NUL percent-encoded (they cannot travel raw), the rest as it is."""
    return payload.replace("\r", "%0D").replace("\n", "%0A").replace("\x00", "%00")


def for_login(payload: str) -> str | None:
    """A user name an htpasswd file and Basic auth can carry (no ':', line breaks or NUL), else None."""
    if any(ch in payload for ch in ":\r\n\x00") or len(payload) > 200 or not payload.strip():
        return None
    return payload


def batches(items: list[str], limit: int) -> list[list[str]]:
    """Consecutive groups whose joined length (with one separator each) stays within `limit`."""
    out: list[list[str]] = [[]]
    size = 0
    for item in items:
        if out[-1] and size + len(item) + 1 > limit:
            out.append([])
            size = 0
        out[-1].append(item)
        size += len(item) + 1
    return [b for b in out if b]
