"""Read a (gzipped) tarball safely, member by member, without extracting it.

Nothing is written to disk.  Every member is checked before its data is read:
- its name is relative, has no `..` component and no backslash;
- it is a regular file, a directory or a symlink (hard links, devices and
  FIFOs are refused); a symlink's target, resolved from the link's folder,
  stays inside the archive;
- the member count, each member's size and the total size are limited.
Anything else, and a corrupt or truncated archive, raises
`CategoryImportError` naming the member and what is wrong.
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from categories.errors import CategoryImportError

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_members: int = 20_000
    max_member_bytes: int = 512 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 * 1024 * 1024


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Entry:
    """One checked member: `path` is normalised and relative (`a/b/c`)."""

    path: str
    kind: str                 # "file" | "dir" | "symlink"
    data: bytes | None = None  # file contents, when the caller asked for them
    target: str | None = None  # symlink target, normalised relative to the archive root


def safe_name(name: str, member: str) -> str:
    """Normalise a member name; refuse absolute paths, `..` and backslashes."""
    if "\\" in name or "\x00" in name:
        raise CategoryImportError("backslash or NUL in member name", member)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise CategoryImportError("absolute path in archive", member)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise CategoryImportError("path outside the archive ('..')", member)
    return "/".join(parts)


def resolve_link(path: str, linkname: str, member: str) -> str:
    """The target of a symlink at `path`, relative to the archive root; refuse escapes."""
    if linkname.startswith("/") or "\\" in linkname:
        raise CategoryImportError(f"symlink to an absolute path ({linkname!r})", member)
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), linkname))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        raise CategoryImportError(f"symlink escaping the archive ({linkname!r})", member)
    return "" if joined == "." else joined


def _decompressed(raw: BinaryIO) -> BinaryIO:
    """The archive's bytes, decompressed by sniffing gzip, bzip2 or xz magic."""
    magic = raw.read(6)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if magic[:3] == b"BZh":
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    return contextlib.nullcontext(raw)  # type: ignore[return-value]


def iter_tar(path: Path, want: Callable[[str], bool], limits: Limits = DEFAULT_LIMITS) -> Iterator[Entry]:
    """Yield the checked members of the tarball at `path` (any compression tarfile knows)."""
    count = 0
    total = 0
    name = "(archive header)"
    try:
        with open(path, "rb") as raw, _decompressed(raw) as stream, \
                tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                count += 1
                name = info.name
                if count > limits.max_members:
                    raise CategoryImportError(f"more than {limits.max_members} members", name)
                rel = safe_name(info.name, name)
                if info.issym():
                    yield Entry(rel, "symlink", target=resolve_link(rel, info.linkname, name))
                elif info.isdir():
                    yield Entry(rel, "dir")
                elif info.isreg():
                    if info.size > limits.max_member_bytes:
                        raise CategoryImportError(
                            f"member of {info.size} bytes, over the limit of "
                            f"{limits.max_member_bytes}", name)
                    total += info.size
                    if total > limits.max_total_bytes:
                        raise CategoryImportError(
                            f"archive over the limit of {limits.max_total_bytes} bytes", name)
                    data = None
                    if want(rel):
                        handle = tar.extractfile(info)
                        data = handle.read() if handle is not None else b""
                        if len(data) != info.size:
                            raise CategoryImportError("member data truncated", name)
                    yield Entry(rel, "file", data=data)
                elif info.islnk():
                    raise CategoryImportError("hard links are not accepted", name)
                else:
                    raise CategoryImportError("not a file, folder or symlink", name)
            name = "(end of archive)"
            while stream.read(CHUNK):  # tar stops at its end blocks: read on to check the
                pass                   # compressed stream's trailer (a truncated download)
    except CategoryImportError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
        where = f"{path.name} after {count} members" if count else path.name
        raise CategoryImportError(f"corrupt or truncated archive ({exc})", where) from exc
