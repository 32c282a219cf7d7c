"""Find the line of every key in a TOML file, so errors can name it.

`tomllib` parses but forgets positions.  This scanner reads the same text and
records, for each key path (`("networks", 2, "cidr")`), the line where the key
was written; a table's own path maps to its header line.  It understands
table headers, arrays of tables, dotted keys, inline tables on one line and
skips multi-line strings and arrays; that covers what a config file holds.
"""
from __future__ import annotations

import re

KeyPath = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")
_INLINE_KEY = re.compile(r"""[{,]\s*([A-Za-z0-9_\-]+|"[^"]*")\s*=""")


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path to its 1-based line number."""
    lines: dict[KeyPath, int] = {}
    counters: dict[KeyPath, int] = {}
    table: KeyPath = ()
    in_multiline: str | None = None
    bracket_depth = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        if bracket_depth > 0:
            bracket_depth += _bracket_balance(line)
            continue
        header = _HEADER.match(line)
        if header and bracket_depth == 0 and not _KEY.match(line):
            names: KeyPath = tuple(_split_dotted(header.group(2)))
            if header.group(1) == "[[":
                index = counters.get(names, 0)
                counters[names] = index + 1
                table = names + (index,)
                lines.setdefault(names, number)
            else:
                table = names
            lines[table] = number
            continue
        key = _KEY.match(line)
        if not key:
            continue
        path = table + tuple(_split_dotted(key.group(1)))
        lines[path] = number
        value = line[key.end():]
        for quote in ('"""', "'''"):
            if value.count(quote) == 1:
                in_multiline = quote
        if value.lstrip().startswith("{"):
            for sub in _INLINE_KEY.finditer(value):
                lines[path + (sub.group(1).strip('"'),)] = number
        bracket_depth = max(0, _bracket_balance(value))
    return lines


def _bracket_balance(text: str) -> int:
    """Open minus closed square brackets outside strings and comments."""
    depth = 0
    quote: str | None = None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    return depth


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, else of its nearest ancestor that has one."""
    probe = path
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return None


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"
