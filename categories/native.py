"""The optional C parts of the category lookup, and the switch to do without them.

`setup.py` builds them where there is a C compiler (`categories/_hostprobe.c`: the
host loop; `categories/_fasturl.c`: the common case of `normalise_url`); each has a
Python twin with the same answers, which tests compare.  SCHOOLGATE_PURE_PYTHON=1
(read when `categories` is first imported) makes the lookups use the Python twins,
as a machine without a compiler does.
"""
from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

logger = logging.getLogger(__name__)

PURE_PYTHON = bool(os.environ.get("SCHOOLGATE_PURE_PYTHON"))


def built(name: str) -> ModuleType | None:
    """The C module `categories.<name>`, or None where it was not built."""
    try:
        return importlib.import_module(f"categories.{name}")
    except ImportError:
        return None


PARTS = ("_hostprobe", "_fasturl")


def describe() -> str:
    """One line for `categories stats`: whether this process's lookups use the C parts."""
    missing = [name for name in PARTS if built(name) is None]
    if not missing and not PURE_PYTHON:
        return "C (categories._hostprobe, categories._fasturl)"
    why = ("asked for by SCHOOLGATE_PURE_PYTHON" if PURE_PYTHON
           else "not built: " + ", ".join(f"categories.{name}" for name in missing))
    return f"Python ({why}; about half as many URL checks per second)"
