"""The configuration the category engine reads, as Protocols.

`config/schema.py` (the lead's) provides `CategorySource` and
`CategorySettings` frozen dataclasses with these attribute names; the engine
only reads attributes, so any object with them works.  The dataclasses here
are stand-ins with the same shape, for tests and for callers without a
config file.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)


class SourceLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def category(self) -> str | None: ...
    @property
    def illegal(self) -> bool: ...
    @property
    def optional(self) -> bool: ...


class SettingsLike(Protocol):
    @property
    def sources(self) -> tuple[SourceLike, ...]: ...
    @property
    def max_shrink(self) -> float: ...
    @property
    def max_download_mb(self) -> int: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def update_hours(self) -> int: ...


@dataclass(frozen=True)
class CategorySource:
    name: str
    location: str
    format: str = "ut1"
    category: str | None = None
    illegal: bool = False
    optional: bool = False


@dataclass(frozen=True)
class CategorySettings:
    sources: tuple[CategorySource, ...] = ()
    max_shrink: float = 0.5
    max_download_mb: int = 300
    timeout_s: float = 60.0
    update_hours: int = 24
