"""The host loop (`categories.hostprobe`): the C table and the Python one give the same answers.

Both are run over the real UT1 index (listed names, their subdomains, unlisted names) and
over odd names (empty labels, trailing dots, non-ASCII, very long, more listed suffixes than
the C code keeps on its stack); the C hashes against zlib's CRC-32 and hashlib's MD5; a
damaged table raises ValueError instead of reading outside the file.
"""
from __future__ import annotations

import hashlib
import random
import shutil
import sysconfig
import tarfile
import zlib
from pathlib import Path

import pytest

from categories import hostprobe, native
from categories.compiler import compile_index
from categories.hashing import name_hash
from categories.hostprobe import OFFSET_MASK, PyHostTable
from categories.index import CategoryIndex
from categories.lists import CategoryLists

from .conftest import need_ut1

try:
    from categories import _hostprobe
except ImportError:  # no C compiler where the package was installed
    _hostprobe = None

need_c = pytest.mark.skipif(_hostprobe is None, reason="categories._hostprobe was not built (no C compiler)")


def tables(index: CategoryIndex) -> tuple[object, PyHostTable]:
    views = index._views
    args = (index._bloom, views["dir"], views["fp"], views["val"], index.bits)
    return _hostprobe.HostTable(*args), PyHostTable(*args)


def test_the_c_parts_are_built_where_there_is_a_compiler() -> None:
    """`make test` installs with a compiler here: the fast paths must not be lost silently."""
    if shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler on this machine: the lookups use their Python twins")
    for name in native.PARTS:
        assert native.built(name) is not None, f"categories/{name}.c was not built by `pip install -e .`"


def test_stats_say_which_lookups_are_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "PURE_PYTHON", False)
    monkeypatch.setattr(native, "built", lambda name: None if name == "_fasturl" else object())
    assert native.describe() == ("Python (not built: categories._fasturl; "
                                 "about half as many URL checks per second)")
    monkeypatch.setattr(native, "PURE_PYTHON", True)
    assert native.describe().startswith("Python (asked for by SCHOOLGATE_PURE_PYTHON")
    monkeypatch.setattr(native, "built", lambda name: object())
    monkeypatch.setattr(native, "PURE_PYTHON", False)
    assert native.describe() == "C (categories._hostprobe, categories._fasturl)"


@need_c
def test_c_hashes_are_zlib_crc32_and_the_head_of_md5() -> None:
    rng = random.Random(5)
    for n in range(0, 300):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert _hostprobe.crc32(data) == zlib.crc32(data), n
        assert _hostprobe.name_hash64(data) == int.from_bytes(hashlib.md5(data).digest()[:8], "big"), n
    assert _hostprobe.name_hash64(b"example.com") == name_hash("example.com")


def ut1_hosts(rng: random.Random) -> list[str]:
    names: list[str] = []
    with tarfile.open(need_ut1()) as tar:
        for member in tar.getmembers():
            if member.isreg() and member.name.endswith("/domains"):
                handle = tar.extractfile(member)
                assert handle is not None
                lines = handle.read().decode("utf-8", "replace").split()
                names += rng.sample(lines, min(300, len(lines)))
    unlisted = [f"{rng.choice(['', 'www.', 'api.'])}{rng.randint(1, 10**6)}x{rng.choice(['com', 'co.uk'])}"
                for _ in range(3000)]
    odd = ["", ".", "..", "a..b", ".example.com", "example.com.", "bücher.de", "ü.ü", "x" * 300 + ".com",
           "a." * 150 + "com", "1.2.3.4", "localhost", "-.-"]
    return names + [f"{rng.choice(['www', 'cdn', 'a.b'])}.{n}" for n in names] + unlisted + odd


@need_c
def test_c_and_python_agree_on_the_real_lists(real_index: Path) -> None:
    with CategoryIndex.open(real_index) as index:
        c_table, py_table = tables(index)
        hosts = ut1_hosts(random.Random(6))
        listed = 0
        for host in hosts:
            got = c_table.hits(host)
            assert got == py_table.hits(host), host
            assert isinstance(got, tuple)
            listed += bool(got)
            for hit in got:  # each hit is a listed suffix, exactly where it starts
                at = hit & OFFSET_MASK
                assert at == 0 or host.encode()[at - 1:at] == b"."
                assert index._probe(host.encode()[at:]) == hit >> 32
        assert listed > len(hosts) // 3
        c_table.close()
        py_table.close()


@need_c
def test_more_listed_suffixes_than_the_stack_holds(tmp_path: Path) -> None:
    lists = CategoryLists("test")
    labels = [f"l{i}" for i in range(12)]
    names = [".".join(labels[i:]) + ".com" for i in range(len(labels))]  # l0.l1...com, l1...com, ...
    lists.add_domains("games", names)
    compile_index([lists], tmp_path / "idx")
    with CategoryIndex.open(tmp_path / "idx") as index:
        c_table, py_table = tables(index)
        host = "www." + names[0]
        got = c_table.hits(host)
        assert got == py_table.hits(host)
        assert len(got) == 12 and [hit & OFFSET_MASK for hit in got] == sorted(hit & OFFSET_MASK for hit in got)
        assert index.lookup_host(host) == {"games"}
        c_table.close()
        py_table.close()


@need_c
def test_closed_and_wrong_input_raise(tmp_path: Path) -> None:
    lists = CategoryLists("test")
    lists.add_domains("games", ["example.com"])
    compile_index([lists], tmp_path / "idx")
    with CategoryIndex.open(tmp_path / "idx") as index:
        c_table, _py = tables(index)
        with pytest.raises(TypeError):
            c_table.hits(b"example.com")
        c_table.close()
        c_table.close()  # twice is harmless
        with pytest.raises(ValueError, match="closed"):
            c_table.hits("example.com")
        _py.close()


@need_c
def test_a_damaged_table_raises_instead_of_reading_outside() -> None:
    bits = 2
    bloom = memoryview(b"\xff")  # every name may be listed
    fp = memoryview(bytes(4 * 3))
    val = memoryview(bytes(2 * 3))
    # every bucket says it runs to entry 1000, past the 3 entries there are
    bad_dir = memoryview((1000).to_bytes(4, "little") * ((1 << bits) + 1))
    table = _hostprobe.HostTable(bloom, bad_dir, fp, val, bits)
    with pytest.raises(ValueError, match="damaged"):
        table.hits("example.com")
    table.close()
    with pytest.raises(ValueError, match="dir"):
        _hostprobe.HostTable(bloom, memoryview(bytes(8)), fp, val, bits)
    with pytest.raises(ValueError, match="power of two"):
        _hostprobe.HostTable(memoryview(b"\xff" * 3), bad_dir, fp, val, bits)
    with pytest.raises(ValueError, match="bits"):
        _hostprobe.HostTable(bloom, bad_dir, fp, val, 40)


def test_the_pure_python_loop_can_be_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SCHOOLGATE_PURE_PYTHON (read at import) and `IMPLEMENTATION` choose the Python loop: same answers."""
    lists = CategoryLists("test")
    lists.add_domains("games", ["example.com", "www.fun.example"])
    compile_index([lists], tmp_path / "idx")
    monkeypatch.setattr(hostprobe, "IMPLEMENTATION", "Python")
    with CategoryIndex.open(tmp_path / "idx") as index:
        assert isinstance(index._names, PyHostTable)
        assert index.lookup_host("a.example.com") == {"games"}
        assert index.lookup_host("a.fun.example") == frozenset()  # `www.` entries: the name alone
        assert index.check_url("https://www.fun.example/x") == {"games"}
    index_closed = CategoryIndex.open(tmp_path / "idx")
    index_closed.close()
    with pytest.raises(ValueError):
        index_closed.lookup_host("a.example.com")
