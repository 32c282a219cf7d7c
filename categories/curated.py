"""The built-in curated lists (`categories/builtin/CATEGORY.txt`).

Written for Schoolgate (facts, not copied lists): search engines, DNS-over-HTTPS
resolvers, VPNs and web proxies, social networks, and children's and
educational sites for the KS1 walled garden.  They make a working index with
no download, and are merged with downloaded lists when compiling.  Each file
is a plain list (`categories.plainlists`): the file name is the category, a
line with a `/` is a URL entry.
"""
from __future__ import annotations

import logging
from pathlib import Path

from categories.lists import CategoryLists, text_lines

logger = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
SOURCE = "builtin"


def builtin_categories(folder: Path = BUILTIN_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.txt"))


def load_builtin(folder: Path = BUILTIN_DIR) -> CategoryLists:
    """All the built-in lists as one source named "builtin"."""
    lists = CategoryLists(SOURCE)
    for path in sorted(folder.glob("*.txt")):
        lists.add_domains(path.stem, text_lines(path.read_bytes()), path.name)
    if lists.problems:
        logger.warning("built-in lists: %d bad lines: %s", lists.skipped, lists.problems[:3])
    return lists
