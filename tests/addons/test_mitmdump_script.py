"""The same addons load into plain mitmproxy: `mitmdump -s addons/script.py --set schoolgate_config=...`."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from proxy.cli import main
from tests.support.school import write_school

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mitmdump_with_the_schoolgate_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = write_school(tmp_path)
    assert main(["init", "--config", str(ctx.config_path), "--data", str(ctx.data_dir)]) == 0
    capsys.readouterr()
    port = _free_port()
    mitmdump = Path(sys.executable).with_name("mitmdump")
    proc = subprocess.Popen(
        [str(mitmdump), "-q", "--listen-host", "127.0.0.1", "-p", str(port), "--set", f"confdir={ctx.ca_dir}",
         "-s", str(ROOT / "addons" / "script.py"), "--set", f"schoolgate_config={ctx.config_path}",
         "--set", f"schoolgate_data={ctx.data_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get("http://www.bet365.com/", proxy=f"http://127.0.0.1:{port}", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert response is not None, "mitmdump did not start"
        assert response.status_code == 403
        assert response.headers["x-schoolgate-rule"] == "category.blocked"
        assert "gambling" in response.text.lower()
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert b"Traceback" not in out, out.decode(errors="replace")
