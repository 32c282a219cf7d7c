from __future__ import annotations

import io
import os
import socket
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from categories.fetch import download
from categories.errors import FetchError
from categories.index import CategoryIndex
from categories.normalise import normalise_url
from categories.settings import CategorySettings, CategorySource
from categories.updater import update_index

from .conftest import FileServer


def test_real_ut1_through_http(real_index: Path) -> None:
    with CategoryIndex.open(real_index) as ix:
        assert ix.lookup_host("0000100.com") == {"games"}
        assert ix.lookup_host("www.0000100.com") == {"games"}
        assert ix.lookup_host("x0000100.com") == frozenset()
        assert "gambling" in ix.lookup_host("1075bets10.com")
        assert "social_networks" in ix.lookup_host("www.flickr.com")
        assert "vpn" in ix.lookup_host("aesvpn.tk")
        assert "drogue" in ix.lookup_host("asam.org")
        assert "drogue" in ix.lookup_host("216.104.145.194")
        assert {"child", "educational_games"} <= ix.lookup_host("primarygames.com")
        assert "adult" in ix.lookup_url(normalise_url("http://020sextoy.com/sk/page"))
        assert "adult" not in ix.lookup_url(normalise_url("http://020sextoy.com/other"))
        assert "games" in ix.lookup_url(normalise_url("http://www.1001cocktails.com/javanoid/x"))
        assert "strict_redirector" in ix.lookup_url(
            normalise_url("http://images.google.com/images?q=tbn:abc"))
        assert ix.aliases["porn"] == "adult" and ix.aliases["proxy"] == "redirector"
        assert "vpn" in ix.lookup_host("nordvpn.com")  # built-in lists are merged in
        assert ix.descriptions["games"].startswith("games sites")
        ut1 = next(s for s in ix.meta["sources"] if s["name"] == "ut1")
        assert ut1["counts"]["games"] > 30000 and ix.meta["entries"] > 300000


def small_tar(path: Path, domains: list[str], extra: dict[str, bytes] | None = None,
              links: dict[str, str] | None = None, mtime_shift: int = 0) -> Path:
    files = {"blacklists/games/domains": "\n".join(domains).encode() + b"\n",
             "blacklists/games/urls": b"portal.example/games\n", **(extra or {})}
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
    t = time.time() + mtime_shift
    os.utime(path, (t, t))
    return path


GAMES = [f"game{i}.example" for i in range(20)]


def settings_for(url: str, **kwargs: object) -> CategorySettings:
    return CategorySettings(sources=(CategorySource("ut1", url, "ut1"),), **kwargs)  # type: ignore[arg-type]


def test_conditional_get(file_server: FileServer, tmp_path: Path) -> None:
    small_tar(file_server.folder / "bl.tar.gz", GAMES, mtime_shift=-100)
    index = tmp_path / "data" / "idx"
    settings = settings_for(file_server.url("bl.tar.gz"))
    first = update_index(settings, index)
    assert first.ok and first.changed and first.sources[0].status == "downloaded"
    inode = os.stat(index).st_ino
    second = update_index(settings, index)
    assert second.ok and not second.changed
    assert second.sources[0].status == "not-modified"
    assert "If-Modified-Since" in file_server.requests[-1][1]
    assert os.stat(index).st_ino == inode
    forced = update_index(settings, index, force=True)  # rebuild from the kept download
    assert forced.ok and forced.changed
    with CategoryIndex.open(index) as ix:
        assert ix.lookup_host("game3.example") == {"games"}


@pytest.mark.parametrize("variant", ["corrupt", "truncated", "dotdot", "absolute", "symlink",
                                     "shrunk", "html", "http404"])
def test_bad_download_keeps_old_index(file_server: FileServer, tmp_path: Path, variant: str) -> None:
    served = file_server.folder / "bl.tar.gz"
    small_tar(served, GAMES, mtime_shift=-100)
    index = tmp_path / "data" / "idx"
    settings = settings_for(file_server.url("bl.tar.gz"))
    assert update_index(settings, index).ok
    inode = os.stat(index).st_ino
    good = served.read_bytes()
    if variant == "corrupt":
        served.write_bytes(good[:40] + bytes(b ^ 0xA5 for b in good[40:]))
    elif variant == "truncated":
        served.write_bytes(good[: len(good) - 40])
    elif variant == "dotdot":
        small_tar(served, GAMES, {"blacklists/../../evil/domains": b"x.example\n"})
    elif variant == "absolute":
        small_tar(served, GAMES, {"/etc/cron.d/evil": b"x\n"})
    elif variant == "symlink":
        small_tar(served, GAMES, links={"blacklists/evil": "../../../etc"})
    elif variant == "shrunk":
        small_tar(served, GAMES[:3])
    elif variant == "html":
        served.write_bytes(b"<html>maintenance</html>")
    else:
        served.unlink()
    t = time.time() + 100
    if served.exists():
        os.utime(served, (t, t))
    result = update_index(settings, index)
    assert not result.ok and not result.changed, result
    assert result.sources[-1].status in ("failed", "refused")
    assert os.stat(index).st_ino == inode
    with CategoryIndex.open(index) as ix:
        assert ix.lookup_host("game19.example") == {"games"}
    assert not list((index.parent / "sources").glob("*.part"))


def test_shrink_can_be_forced_and_limit_is_configurable(file_server: FileServer, tmp_path: Path) -> None:
    served = small_tar(file_server.folder / "bl.tar.gz", GAMES, mtime_shift=-100)
    index = tmp_path / "idx"
    assert update_index(settings_for(file_server.url("bl.tar.gz")), index).ok
    small_tar(served, GAMES[:3], mtime_shift=100)
    assert update_index(settings_for(file_server.url("bl.tar.gz"), max_shrink=0.9), index).ok


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/blacklists.tar.gz"


def test_init_skips_sources_that_do_not_answer(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    settings = settings_for(closed_port_url(), timeout_s=2)
    failed = update_index(settings, index)
    assert not failed.ok and not index.exists()
    result = update_index(settings, index, init=True)
    assert result.ok and result.sources[0].status == "skipped"
    with CategoryIndex.open(index) as ix:
        assert "doh" in ix.lookup_host("dns.google")


def test_optional_source_falls_back_to_last_download(file_server: FileServer, tmp_path: Path) -> None:
    small_tar(file_server.folder / "extra.tar.gz", GAMES, mtime_shift=-100)
    index = tmp_path / "idx"
    src = CategorySource("extra", file_server.url("extra.tar.gz"), "ut1", optional=True)
    assert update_index(CategorySettings(sources=(src,)), index).ok
    (file_server.folder / "extra.tar.gz").unlink()
    result = update_index(CategorySettings(sources=(src,)), index)
    assert result.ok and result.sources[0].status == "cached"
    with CategoryIndex.open(index) as ix:
        assert ix.lookup_host("game1.example") == {"games"}


def test_illegal_tier_and_from_path(tmp_path: Path) -> None:
    feed = tmp_path / "iwf.txt"
    feed.write_text("abuse.example\nhost.example/bad/page.html\n")
    tree = small_tar(tmp_path / "local.tar.gz", GAMES)
    settings = CategorySettings(sources=(
        CategorySource("iwf", str(feed), "domains", "iwf", illegal=True),))
    result = update_index(settings, tmp_path / "idx", from_=str(tree))
    assert result.ok, result.reason
    with CategoryIndex.open(tmp_path / "idx") as ix:
        assert ix.illegal == {"iwf"}
        assert ix.lookup_host("www.abuse.example") == {"iwf"}
        assert ix.lookup_url(normalise_url("http://host.example/bad/page.html")) == {"iwf"}
        assert ix.lookup_host("game0.example") == {"games"}
    again = update_index(settings, tmp_path / "idx", from_=str(tree))
    assert again.ok and not again.changed  # same files, same stamps


def test_download_limits(file_server: FileServer, tmp_path: Path) -> None:
    (file_server.folder / "big").write_bytes(b"x" * 5000)
    seen: list[int] = []
    with httpx.Client() as client:
        with pytest.raises(FetchError, match="over the limit"):
            download(client, "big", file_server.url("big"), tmp_path / "out", max_bytes=1000)
        fetched = download(client, "big", file_server.url("big"), tmp_path / "out", max_bytes=10000,
                           progress=lambda name, done, total: seen.append(done))
    assert fetched.size == 5000 and seen[-1] == 5000 and fetched.last_modified


def test_injected_transport(tmp_path: Path) -> None:
    body = small_tar(tmp_path / "t.tar.gz", GAMES).read_bytes()
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=body, headers={"ETag": '"v1"'})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    settings = settings_for("https://lists.invalid/blacklists.tar.gz")
    assert update_index(settings, tmp_path / "idx", client=client).changed
    assert not update_index(settings, tmp_path / "idx", client=client).changed
    assert calls[-1].headers["If-None-Match"] == '"v1"'
