"""Shared fixtures: the real UT1 tarball, a local HTTP server, a session-wide real index."""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from categories.settings import CategorySettings, CategorySource
from categories.updater import update_index

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
UT1 = SHARED / "data" / "ut1-blacklists.tar.gz"


def need_ut1() -> Path:
    if not UT1.exists():
        pytest.skip(f"{UT1} not found: the real UT1 data lives in ../shared/data/ut1-blacklists.tar.gz")
    return UT1


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class FileServer:
    """A real HTTP server on 127.0.0.1 (free port) serving one folder; it counts requests.

    The stdlib handler sends Last-Modified and answers If-Modified-Since with 304.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(_Quiet):
            def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    folder = tmp_path / "www"
    folder.mkdir()
    server = FileServer(folder)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real UT1 tarball, served over loopback HTTP, through the real updater (built once)."""
    tarball = need_ut1()
    folder = tmp_path_factory.mktemp("ut1www")
    (folder / "blacklists.tar.gz").write_bytes(tarball.read_bytes())
    server = FileServer(folder)
    try:
        index_path = tmp_path_factory.mktemp("data") / "categories.idx"
        settings = CategorySettings(sources=(
            CategorySource("ut1", server.url("blacklists.tar.gz"), "ut1"),))
        result = update_index(settings, index_path)
        assert result.ok, result.reason
    finally:
        server.close()
    return index_path
