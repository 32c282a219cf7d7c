"""Import a UT1 / squidGuard category tree, from a folder or a tarball.

Layout: `[prefix/]blacklists/CATEGORY/{domains,urls,expressions,usage}` and
`blacklists/global_usage` (NAME / DESC EN blocks describing each category).
A category folder that is a symlink to another (`porn -> adult`) becomes an
alias.  The tree's root is the folder holding the most category folders, so
a `README` or a stray copy elsewhere in the archive does not confuse it.
Tarballs are read with `categories.safetar` (nothing is extracted); folders
are walked without following symlinks, and a symlink leaving the tree is an
error in both cases.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from categories.errors import CategoryImportError
from categories.lists import CategoryLists, iter_text_lines, text_lines
from categories.safetar import DEFAULT_LIMITS, Entry, Limits, iter_tar

logger = logging.getLogger(__name__)

LIST_FILES = ("domains", "urls", "expressions")
_WANTED = frozenset(LIST_FILES) | {"global_usage", "usage"}
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def _wanted(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in _WANTED


def iter_tree(root: Path, limits: Limits = DEFAULT_LIMITS) -> Iterator[Entry]:
    """Walk a folder like `iter_tar` reads an archive: same checks, same entries."""
    real_root = root.resolve()
    count = 0
    total = 0
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in sorted(dirnames) + sorted(filenames):
            full = base / name
            rel = full.relative_to(root).as_posix()
            count += 1
            if count > limits.max_members:
                raise CategoryImportError(f"more than {limits.max_members} files", rel)
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(real_root):
                    raise CategoryImportError(
                        f"symlink escaping the tree ({os.readlink(full)!r})", rel)
                yield Entry(rel, "symlink", target=target.relative_to(real_root).as_posix())
            elif full.is_dir():
                yield Entry(rel, "dir")
            elif full.is_file():
                size = full.stat().st_size
                if size > limits.max_member_bytes:
                    raise CategoryImportError(f"file of {size} bytes, over the limit", rel)
                total += size
                if total > limits.max_total_bytes:
                    raise CategoryImportError("tree over the size limit", rel)
                yield Entry(rel, "file", data=full.read_bytes() if _wanted(rel) else None)
            else:
                raise CategoryImportError("not a file, folder or symlink", rel)


def parse_global_usage(data: bytes) -> dict[str, str]:
    """Category -> English description, from `global_usage` NAME / DESC EN blocks."""
    out: dict[str, str] = {}
    name = None
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.startswith("NAME:"):
            name = line[5:].strip()
        elif line.startswith("DESC EN:") and name:
            out[name] = line[8:].strip()
    return out


def read_ut1(location: Path, source: str = "ut1", illegal: bool = False,
             limits: Limits = DEFAULT_LIMITS) -> CategoryLists:
    """Import a UT1 tree (folder) or tarball into one `CategoryLists`."""
    if not location.exists():
        raise CategoryImportError("no such file or folder", str(location))
    entries = iter_tree(location, limits) if location.is_dir() else iter_tar(location, _wanted, limits)
    per_root: dict[str, CategoryLists] = {}
    links: list[tuple[str, str, str]] = []  # (root, alias, target path)
    usage: dict[str, bytes] = {}
    for entry in entries:
        root, _, leaf = entry.path.rpartition("/")
        if entry.kind == "symlink":
            links.append((root, leaf, entry.target or ""))
            continue
        if entry.kind != "file" or entry.data is None:
            continue
        if leaf == "global_usage":
            usage[root] = entry.data
            continue
        tree, _, category = root.rpartition("/")
        if leaf not in LIST_FILES or not _CATEGORY.fullmatch(category):
            continue
        lists = per_root.setdefault(tree, CategoryLists(source, illegal=illegal))
        where = f"{category}/{leaf}"
        if leaf == "domains":  # millions of lines: a block at a time
            lists.add_domains(category, iter_text_lines(entry.data), where)
        elif leaf == "urls":
            lists.add_urls(category, text_lines(entry.data), where)
        else:
            lists.add_expressions(category, text_lines(entry.data))
    if not per_root:
        raise CategoryImportError("no CATEGORY/domains, urls or expressions files found",
                                  str(location.name))
    tree = max(per_root, key=lambda r: len(per_root[r].categories()))
    lists = per_root[tree]
    for other in per_root:
        if other != tree:
            lists.problem(f"ignored lists outside the main tree: {other or '(top)'}/")
    lists.descriptions.update(parse_global_usage(usage.get(tree, b"")))
    for root, alias, target in links:
        if root != tree:
            continue
        target_root, _, target_name = target.rpartition("/")
        if target_root == tree and target_name in lists.categories():
            lists.aliases[alias] = target_name
        else:
            lists.problem(f"symlink {alias} -> {target} is not a category alias; ignored")
    logger.info("imported %s: %d categories, %d entries, %d aliases, %d skipped",
                source, len(lists.categories()), lists.total, len(lists.aliases), lists.skipped)
    return lists
