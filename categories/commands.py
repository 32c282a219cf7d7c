"""`schoolgate categories update | lookup | stats`: the command functions the CLI calls.

Each returns the exit code (0 done, 1 operational error, 2 bad usage) and
writes to `out` (this is CLI code: it prints).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TextIO

import httpx

from categories import native
from categories.errors import IndexFormatError
from categories.index import CategoryIndex
from categories.normalise import normalise_url
from categories.settings import SettingsLike
from categories.taxonomy import describe, uk_categories
from categories.updater import UpdateResult, update_index

logger = logging.getLogger(__name__)


def _progress_printer(out: TextIO):  # type: ignore[no-untyped-def]
    tty = out.isatty() if hasattr(out, "isatty") else False
    last: dict[str, int] = {}

    def show(name: str, done: int, total: int | None) -> None:
        mb = done // (1024 * 1024)
        if not tty or last.get(name) == mb:
            return
        last[name] = mb
        of = f" / {total / 1048576:.1f}" if total else ""
        out.write(f"\r{name}: {done / 1048576:.1f}{of} MB")
        out.flush()

    return show


def update(settings: SettingsLike, index_path: Path, from_: str | None = None,
           out: TextIO = sys.stdout, *, client: httpx.Client | None = None,
           init: bool = False, force: bool = False) -> int:
    """Download, check and compile the lists; print what happened per source."""
    result: UpdateResult = update_index(settings, index_path, from_, client=client,
                                       progress=_progress_printer(out), init=init, force=force)
    if out.isatty() if hasattr(out, "isatty") else False:
        out.write("\n")
    for src in result.sources:
        entries = f", {src.entries} entries" if src.entries else ""
        out.write(f"{src.name}: {src.status}{entries}" + (f" ({src.detail})" if src.detail else "")
                  + "\n")
    if not result.ok:
        out.write(f"update failed, the current index is kept: {result.reason}\n")
        return 1
    if result.changed and result.meta:
        out.write(f"index rebuilt: {result.meta['entries']} names, "
                  f"{len(result.meta['categories'])} categories -> {index_path}\n")
    else:
        out.write(f"{result.reason}; index not rebuilt\n")
    return 0


def lookup(index_path: Path, host_or_url: str, as_json: bool = False,
           out: TextIO = sys.stdout) -> int:
    """Which categories is this host or URL in (and which entries matched)?"""
    if not host_or_url.strip():
        out.write("lookup needs a host name or URL\n")
        return 2
    text = host_or_url.strip()
    if "/" not in text:  # a bare host, host:port or IPv6 literal
        text = f"http://[{text}]/" if text.count(":") > 1 and "[" not in text else f"http://{text}/"
    url = normalise_url(text)
    try:
        with CategoryIndex.open(index_path) as index:
            categories = sorted(index.lookup_url(url))
            matched = index.explain_url(url)
    except IndexFormatError as exc:
        out.write(f"{exc}\n")
        return 1
    if as_json:
        out.write(json.dumps({
            "input": host_or_url, "host": url.host, "kind": url.kind,
            "categories": categories, "uk_categories": uk_categories(categories),
            "matched": matched, **({"problem": url.problem} if url.problem else {}),
        }) + "\n")
        return 0
    if url.kind == "invalid":
        out.write(f"{host_or_url}: not a valid host ({url.problem})\n")
        return 0
    if not categories:
        out.write(f"{url.host}: in no category\n")
        return 0
    out.write(f"{url.host}: " + ", ".join(f"{c} ({describe(c)})" for c in categories) + "\n")
    for m in matched:
        out.write(f"  {m['category']}: {m['list']} entry {m['entry']}\n")
    return 0


def stats(index_path: Path, out: TextIO = sys.stdout) -> int:
    """What the current index holds: when built, from which sources, counts per category."""
    try:
        with CategoryIndex.open(index_path) as index:
            meta = index.meta
    except IndexFormatError as exc:
        out.write(f"{exc}\n")
        return 1
    out.write(f"index: {index_path}\nbuilt: {meta['built_at']}\n"
              f"names: {meta['entries']}  URL hosts: {meta['url_hosts']}  "
              f"categories: {len(meta['categories'])}\n"
              f"lookups in: {native.describe()}\n")
    if meta.get("illegal"):
        out.write("illegal tier: " + ", ".join(meta["illegal"]) + "\n")
    for src in meta["sources"]:
        out.write(f"source {src['name']}: {src['total']} entries, {src['skipped']} skipped"
                  + (" (illegal tier)" if src["illegal"] else "") + "\n")
    for category, n in sorted(meta["category_counts"].items()):
        out.write(f"  {category:24} {n:>9}  {describe(category)}\n")
    for alias, target in meta.get("aliases", {}).items():
        out.write(f"  alias {alias} -> {target}\n")
    return 0
