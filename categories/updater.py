"""Update the compiled index from the configured sources, keeping the last good one.

For each source: download it (URLs: conditional GET with the ETag and
Last-Modified kept in `INDEX.state.json`; the last good download is kept in
`sources/NAME.download` beside the index, so a 304 or an unchanged source
still contributes its lists) or read it (paths), import it, and check that it
did not shrink by more than `max_shrink` against the current index's counts
for that source.  Then the built-in lists and every source are compiled into
a new file that replaces the index atomically.

Any failure of a required source (download, corrupt archive, path escaping
the tree, shrink) stops the update and leaves the current index in place;
the result says why.  With `init=True` (first start), and for sources marked
optional, a source that does not answer is skipped with a warning: its last
good download is used if there is one, and the built-in lists alone still
make a working index.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from categories.compiler import compile_index
from categories.curated import load_builtin
from categories.errors import CategoryError, FetchError, IndexFormatError, UpdateRefused
from categories.fetch import Progress, download, is_url
from categories.index import CategoryIndex
from categories.lists import CategoryLists
from categories.plainlists import load_source
from categories.settings import CategorySource, SettingsLike, SourceLike

logger = logging.getLogger(__name__)


@dataclass
class SourceResult:
    name: str
    status: str          # downloaded | not-modified | read | cached | skipped | failed | refused
    detail: str = ""
    entries: int = 0


@dataclass
class UpdateResult:
    ok: bool
    changed: bool
    reason: str
    sources: list[SourceResult] = field(default_factory=list)
    meta: dict[str, Any] | None = None


def state_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name + ".state.json")


def _load_state(index_path: Path) -> dict[str, Any]:
    try:
        state = json.loads(state_path(index_path).read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_state(index_path: Path, state: dict[str, Any]) -> None:
    path = state_path(index_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _old_totals(index_path: Path) -> dict[str, tuple[int, dict[str, int]]]:
    try:
        with CategoryIndex.open(index_path) as index:
            return {s["name"]: (s["total"], s["counts"]) for s in index.meta.get("sources", [])}
    except IndexFormatError:
        return {}


def with_override(sources: tuple[SourceLike, ...], from_: str | None) -> list[SourceLike]:
    """`--from`: replaces the location of the first UT1 source (or adds one named "ut1")."""
    out = list(sources)
    if not from_:
        return out
    for i, src in enumerate(out):
        if src.format == "ut1":
            out[i] = CategorySource(src.name, from_, src.format, src.category, src.illegal,
                                    src.optional)
            return out
    return out + [CategorySource("ut1", from_, "ut1")]


def check_shrink(lists: CategoryLists, old: tuple[int, dict[str, int]] | None,
                 max_shrink: float) -> None:
    """Refuse a list that lost more than `max_shrink` of its entries (in total or per big category)."""
    if old is None:
        return
    old_total, old_counts = old
    floor = 1.0 - max_shrink
    if old_total and lists.total < old_total * floor:
        raise UpdateRefused(f"{lists.source}: {lists.total} entries against {old_total} in the "
                            f"current index (shrank by more than {max_shrink:.0%})")
    for category, before in old_counts.items():
        now = lists.counts.get(category, 0)
        if before >= 1000 and now < before * floor:
            raise UpdateRefused(f"{lists.source}: {category} has {now} entries against {before} "
                                f"(shrank by more than {max_shrink:.0%})")


class _Run:
    """One update: the sources' files, results and new state."""

    def __init__(self, settings: SettingsLike, index_path: Path, client: httpx.Client,
                 progress: Progress | None, init: bool, force: bool) -> None:
        self.settings = settings
        self.index_path = index_path
        self.client = client
        self.progress = progress
        self.init = init
        self.force = force
        self.cache_dir = index_path.parent / "sources"
        self.state = _load_state(index_path)
        self.new_state: dict[str, Any] = {}
        self.parts: list[tuple[Path, Path]] = []  # (downloaded .part, final cache path)
        self.results: list[SourceResult] = []

    def locate(self, src: SourceLike) -> tuple[Path, bool]:
        """The file to import for a source and whether it changed since the last update."""
        old = self.state.get(src.name, {})
        if not is_url(src.location):
            path = Path(src.location)
            if not path.exists():
                raise FetchError(f"{src.name}: {path} does not exist")
            st = path.stat()
            stamp = f"{st.st_mtime_ns}:{st.st_size}" if path.is_file() else None
            self.new_state[src.name] = {"location": src.location, "stamp": stamp}
            self.results.append(SourceResult(src.name, "read", str(path)))
            return path, stamp is None or old.get("stamp") != stamp or old.get("location") != src.location
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cache = self.cache_dir / f"{src.name}.download"
        usable = cache.exists() and old.get("location") == src.location
        part = cache.with_name(cache.name + ".part")
        try:
            fetched = download(self.client, src.name, src.location, part,
                               max_bytes=self.settings.max_download_mb * 1024 * 1024,
                               etag=old.get("etag") if usable else None,
                               last_modified=old.get("last_modified") if usable else None,
                               progress=self.progress)
        except BaseException:
            part.unlink(missing_ok=True)          # no half download left behind
            raise
        if fetched.not_modified:
            self.new_state[src.name] = old
            self.results.append(SourceResult(src.name, "not-modified", src.location))
            return cache, False
        self.parts.append((part, cache))
        self.new_state[src.name] = {"location": src.location, "etag": fetched.etag,
                                    "last_modified": fetched.last_modified}
        self.results.append(SourceResult(src.name, "downloaded", f"{fetched.size} bytes"))
        return part, True

    def fallback(self, src: SourceLike, exc: CategoryError) -> Path | None:
        """A source failed: its last good download if allowed, else None (skip) or raise."""
        if not (self.init or src.optional):
            self.results.append(SourceResult(src.name, "failed", str(exc)))
            raise exc
        cache = self.cache_dir / f"{src.name}.download"
        if is_url(src.location) and cache.exists():
            logger.warning("%s; using its last good download", exc)
            self.new_state[src.name] = self.state.get(src.name, {})
            self.results.append(SourceResult(src.name, "cached", str(exc)))
            return cache
        logger.warning("%s; skipped", exc)
        self.results.append(SourceResult(src.name, "skipped", str(exc)))
        return None

    def discard_parts(self) -> None:
        for part, _ in self.parts:
            part.unlink(missing_ok=True)

    def commit(self) -> None:
        for part, cache in self.parts:
            os.replace(part, cache)
        _save_state(self.index_path, self.new_state)


def update_index(settings: SettingsLike, index_path: Path, from_: str | None = None, *,
                 client: httpx.Client | None = None, progress: Progress | None = None,
                 init: bool = False, force: bool = False) -> UpdateResult:
    """Update the index at `index_path`; see the module docstring.  Never raises CategoryError."""
    index_path = Path(index_path)
    own_client = client is None
    http = client or httpx.Client(timeout=settings.timeout_s, follow_redirects=True)
    run = _Run(settings, index_path, http, progress, init, force)
    try:
        result = _update(run, with_override(tuple(settings.sources), from_))
    except (CategoryError, OSError) as exc:
        run.discard_parts()
        logger.error("category update failed, keeping the current index: %s", exc)
        result = UpdateResult(False, False, str(exc), run.results)
    finally:
        if own_client:
            http.close()
    _record_last(index_path, result)
    return result


def _record_last(index_path: Path, result: UpdateResult) -> None:
    """Keep the outcome of this update in the state file (`_last_update`) for status and reports."""
    state = _load_state(index_path)
    state["_last_update"] = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "ok": result.ok, "changed": result.changed,
        "reason": result.reason, "sources": {s.name: s.status for s in result.sources}}
    try:
        _save_state(index_path, state)
    except OSError as exc:
        logger.warning("could not record the update's outcome in %s: %s", state_path(index_path), exc)


def _update(run: _Run, sources: list[SourceLike]) -> UpdateResult:
    located: list[tuple[SourceLike, Path]] = []
    changed = not run.index_path.exists() or run.force
    for src in sources:
        try:
            path, src_changed = run.locate(src)
        except FetchError as exc:
            fallback = run.fallback(src, exc)
            if fallback is None:
                changed = True
                continue
            path, src_changed = fallback, True
        located.append((src, path))
        changed = changed or src_changed
    if not changed:
        run.commit()
        return UpdateResult(True, False, "every source is unchanged", run.results)
    old = _old_totals(run.index_path)
    lists = [load_builtin()]
    for src, path in located:
        try:
            imported = load_source(path, src.format, src.name, src.category, src.illegal)
        except CategoryError as exc:
            if not (run.init or src.optional):
                run.results.append(SourceResult(src.name, "failed", str(exc)))
                raise
            logger.warning("%s: %s; skipped", src.name, exc)
            run.results.append(SourceResult(src.name, "skipped", str(exc)))
            continue
        if not run.force:
            try:
                check_shrink(imported, old.get(src.name), run.settings.max_shrink)
            except UpdateRefused as exc:
                run.results.append(SourceResult(src.name, "refused", str(exc)))
                raise
        for result in run.results:
            if result.name == src.name:
                result.entries = imported.total
        lists.append(imported)
    meta = compile_index(lists, run.index_path)
    run.commit()
    return UpdateResult(True, True, "index rebuilt", run.results, meta)
