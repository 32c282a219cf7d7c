"""`LiveIndex`: the handle a long-running process (proxy, resolver) holds.

`.current` returns the open index and reopens it when the file at the path
has been replaced (the updater's atomic rename gives it a new inode), checked
with one `os.stat` at most once per `check_interval` seconds.  A new file that
cannot be opened is logged and the previous index stays in use.  The old
index is closed a minute after it was replaced (`RETIRE_AFTER_S`; a lookup
running in another thread may still hold it for a moment, none for a minute),
at the next check: its mapping is released then, and closing breaks the
reference cycle between an index and its check closures, so it is freed even
where the cyclic garbage collector never looks at it (`proxy.heap`).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from categories.errors import IndexFormatError
from categories.index import CategoryIndex

logger = logging.getLogger(__name__)

FileId = tuple[int, int, int, int]
RETIRE_AFTER_S = 60.0


def _file_id(path: Path) -> FileId | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class LiveIndex:
    """Hold an index open and follow replacements of its file."""

    def __init__(self, path: Path, check_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._file_id = _file_id(self.path)
        self._index = CategoryIndex.open(self.path)
        self._checked = clock()
        self._retired: list[tuple[float, CategoryIndex]] = []  # (replaced at, index), oldest first
        self.reloads = 0

    @property
    def current(self) -> CategoryIndex:
        """The open index, reopened first if the file was replaced (checked once a second)."""
        now = self._clock()
        if now - self._checked >= self.check_interval:
            self._checked = now
            if self._retired:
                self._close_retired(now)
            self._maybe_reload(now)
        return self._index

    def _close_retired(self, now: float) -> None:
        with self._lock:
            while self._retired and now - self._retired[0][0] >= RETIRE_AFTER_S:
                self._retired.pop(0)[1].close()

    def _maybe_reload(self, now: float) -> None:
        file_id = _file_id(self.path)
        if file_id is None or file_id == self._file_id:
            return
        with self._lock:
            if file_id == self._file_id:
                return
            try:
                new = CategoryIndex.open(self.path)
            except IndexFormatError as exc:
                logger.error("new category index not loaded, keeping the old one: %s", exc)
                self._file_id = file_id  # do not retry the same broken file every second
                return
            self._retired.append((now, self._index))
            self._index = new
            self._file_id = file_id
            self.reloads += 1
            logger.info("category index reloaded from %s (%s)", self.path,
                        new.meta.get("built_at", "?"))

    def close(self) -> None:
        with self._lock:
            for _replaced, index in self._retired:
                index.close()
            self._retired = []
        self._index.close()

    def __enter__(self) -> LiveIndex:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
