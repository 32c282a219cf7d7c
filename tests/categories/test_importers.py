from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from categories.errors import CategoryImportError
from categories.hashing import name_hash
from categories.plainlists import load_source
from categories.safetar import Limits
from categories.ut1 import read_ut1


def make_tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None,
             extra: list[tarfile.TarInfo] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
        for info in extra or []:
            tar.addfile(info)
    return path


GOOD = {
    "blacklists/global_usage": b"NAME:\tgames\nDESC EN: games sites\n\nNAME: adult\nDESC EN: adult\n",
    "blacklists/games/domains": b"play.example\nwww.fun.example\n",
    "blacklists/games/urls": b"portal.example/games\n",
    "blacklists/adult/domains": b"# comment\nxxx.example\n\nbad..name\n",
    "blacklists/adult/expressions": b"(sexy|nude)pics\n",
    "blacklists/README": b"hello",
}


def test_ut1_tarball(tmp_path: Path) -> None:
    lists = read_ut1(make_tar(tmp_path / "t.tar.gz", GOOD, {"blacklists/porn": "adult"}))
    assert lists.categories() == {"games", "adult"}
    assert lists.aliases == {"porn": "adult"}
    assert lists.descriptions["games"] == "games sites"
    assert list(lists.domains["games"]) == [name_hash("play.example"), name_hash("www.fun.example")]
    assert list(lists.exact["games"]) == [name_hash("fun.example")]
    assert lists.urls["games"] == [("portal.example", "/games")]
    assert lists.expressions["adult"] == ["(sexy|nude)pics"]
    assert lists.counts == {"games": 3, "adult": 2}
    assert lists.skipped == 1 and "bad..name" in lists.problems[0]


def test_ut1_folder_with_symlink_alias(tmp_path: Path) -> None:
    root = tmp_path / "tree" / "blacklists"
    for name, data in GOOD.items():
        path = tmp_path / "tree" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    os.symlink("adult", root / "porn")
    lists = read_ut1(tmp_path / "tree")
    assert lists.aliases == {"porn": "adult"}
    assert lists.counts["games"] == 3


def test_folder_symlink_escaping_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tree" / "blacklists" / "games").mkdir(parents=True)
    (tmp_path / "tree" / "blacklists" / "games" / "domains").write_text("a.example\n")
    os.symlink("/etc", tmp_path / "tree" / "blacklists" / "evil")
    with pytest.raises(CategoryImportError, match="symlink escaping"):
        read_ut1(tmp_path / "tree")


@pytest.mark.parametrize(("name", "message"), [
    ("../evil/domains", r"outside the archive"),
    ("blacklists/../../evil", r"outside the archive"),
    ("/etc/passwd", r"absolute path"),
])
def test_path_escapes_are_refused(tmp_path: Path, name: str, message: str) -> None:
    files = dict(GOOD)
    files[name] = b"x.example\n"
    with pytest.raises(CategoryImportError, match=message) as info:
        read_ut1(make_tar(tmp_path / "t.tar.gz", files))
    assert info.value.member == name


@pytest.mark.parametrize("target", ["../../etc", "/etc", "../.."])
def test_symlink_escapes_are_refused(tmp_path: Path, target: str) -> None:
    with pytest.raises(CategoryImportError, match="symlink") as info:
        read_ut1(make_tar(tmp_path / "t.tar.gz", GOOD, {"blacklists/evil": target}))
    assert info.value.member == "blacklists/evil"


def test_hard_links_and_devices_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("blacklists/hard")
    link.type = tarfile.LNKTYPE
    link.linkname = "blacklists/games/domains"
    with pytest.raises(CategoryImportError, match="hard links"):
        read_ut1(make_tar(tmp_path / "a.tar.gz", GOOD, extra=[link]))
    dev = tarfile.TarInfo("blacklists/dev")
    dev.type = tarfile.CHRTYPE
    with pytest.raises(CategoryImportError, match="not a file"):
        read_ut1(make_tar(tmp_path / "b.tar.gz", GOOD, extra=[dev]))


def test_limits(tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "t.tar.gz", GOOD)
    with pytest.raises(CategoryImportError, match="more than 3 members"):
        read_ut1(tar, limits=Limits(max_members=3))
    with pytest.raises(CategoryImportError, match="over the limit") as info:
        read_ut1(tar, limits=Limits(max_member_bytes=40))
    assert info.value.member == "blacklists/global_usage"
    with pytest.raises(CategoryImportError, match="archive over the limit"):
        read_ut1(tar, limits=Limits(max_total_bytes=100))


def test_corrupt_and_truncated_gzip(tmp_path: Path) -> None:
    data = make_tar(tmp_path / "t.tar.gz", GOOD).read_bytes()
    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CategoryImportError, match="corrupt or truncated"):
        read_ut1(truncated)
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(data[:20] + bytes(b ^ 0x55 for b in data[20:]))
    with pytest.raises(CategoryImportError, match="corrupt or truncated"):
        read_ut1(corrupt)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"<html>not found</html>")
    with pytest.raises(CategoryImportError):
        read_ut1(junk)


def test_no_lists_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CategoryImportError, match="no CATEGORY"):
        read_ut1(make_tar(tmp_path / "t.tar.gz", {"README": b"x"}))


def test_plain_domain_list(tmp_path: Path) -> None:
    path = tmp_path / "iwf.txt"
    path.write_text("# licensed feed\nabuse.example   # note\nhttp://www.host.example/a/b.html\n\n"
                    ".dot.example\n*.star.example\nnot a name\n")
    lists = load_source(path, "domains", "iwf", "iwf", illegal=True)
    assert lists.illegal and lists.counts == {"iwf": 4}
    assert set(lists.domains["iwf"]) == {name_hash(n) for n in
                                         ("abuse.example", "dot.example", "star.example")}
    assert lists.urls["iwf"] == [("host.example", "/a/b.html")]
    assert lists.skipped == 1


def test_hosts_file_gzipped(tmp_path: Path) -> None:
    path = tmp_path / "hosts.gz"
    path.write_bytes(gzip.compress(b"127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
                                   b"0.0.0.0 ads.example tracker.example # x\n# 0.0.0.0 no.example\n"))
    lists = load_source(path, "hosts", "hosts", "publicite")
    assert set(lists.domains["publicite"]) == {name_hash("ads.example"), name_hash("tracker.example")}


def test_truncated_gzip_list(tmp_path: Path) -> None:
    path = tmp_path / "list.gz"
    path.write_bytes(gzip.compress(b"a.example\n" * 1000)[:-30])
    with pytest.raises(CategoryImportError, match="truncated|corrupt"):
        load_source(path, "domains", "x", "x")


def test_plain_list_needs_category(tmp_path: Path) -> None:
    (tmp_path / "l").write_text("a.example\n")
    with pytest.raises(CategoryImportError, match="needs a category"):
        load_source(tmp_path / "l", "domains", "x")
    with pytest.raises(CategoryImportError, match="unknown list format"):
        load_source(tmp_path / "l", "csv", "x", "c")
