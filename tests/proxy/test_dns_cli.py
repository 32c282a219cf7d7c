"""`schoolgate dns` as technical support runs it: a real process, real queries, stopped by SIGTERM."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from dnslib import RCODE

from tests.proxy.test_dns_support import FakeUpstream, addresses, ask, school_data

ROOT = Path(__file__).resolve().parents[2]


async def test_schoolgate_dns_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    ctx = await asyncio.get_running_loop().run_in_executor(None, school_data, tmp_path)
    fake = FakeUpstream()
    fake.add("www.example.test", "192.0.2.10")
    await fake.start()
    text = ctx.config_path.read_text().replace('upstreams = ["127.0.0.53"]', f'upstreams = ["127.0.0.1:{fake.port}"]')
    config = ctx.config_path.with_name("dns.toml")
    config.write_text(text)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", "dns", "--config", str(config), "--data", str(ctx.data_dir),
        "--port", "0", cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = 0
        while not port:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "schoolgate dns exited before listening"
            if "listening:" in line:
                port = int(line.split(" port ")[1].split()[0])
        assert addresses(await ask(port, "bet365.com", src="127.0.2.5")) == ["127.0.0.1"]
        assert addresses(await ask(port, "www.example.test", src="127.0.2.5", tcp=True)) == ["192.0.2.10"]
        assert (await ask(port, "use-application-dns.net")).header.rcode == RCODE.NXDOMAIN
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await fake.stop()


async def test_schoolgate_dns_without_an_index_says_so(tmp_path: Path) -> None:
    from tests.support.school import write_school

    ctx = write_school(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", "dns", "--config", str(ctx.config_path), "--data", str(tmp_path / "empty"),
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"schoolgate init" in err
