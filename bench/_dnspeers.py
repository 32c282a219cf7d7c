"""The servers `bench.dns` measures, started and stopped by pid: a fake upstream, dnsmasq,
Schoolgate's resolver; dnsperf; CPU and memory of a process.  All on 127.0.0.1 only."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench._peers import Peer, dns_answers, free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_ready(proc: subprocess.Popen[bytes], port: int, probe: str, start: float, timeout: float = 120) -> float:
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"exited early: {err.strip()[-500:]}")
        if dns_answers(port, probe, timeout=0.05):
            return time.perf_counter() - start
        time.sleep(0.005)
    raise RuntimeError("did not answer in time")


def start_fake_upstream(work: Path) -> Peer:
    port = free_port()
    conf = work / "upstream.conf"
    conf.write_text(f"port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
                    f"address=/#/192.0.2.1\npid-file={work / 'upstream.pid'}\n")
    return _spawn_dnsmasq("fake-upstream", conf, port, "ready.example", 30)


def start_dnsmasq(work: Path, domains: Path, upstream: int, probe: str) -> Peer:
    port = free_port()
    conf = work / "dnsmasq.conf"
    with open(conf, "w") as out, open(domains) as names:
        out.write(f"port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
                  f"server=127.0.0.1#{upstream}\ncache-size=10000\npid-file={work / 'dnsmasq.pid'}\n")
        for name in names:
            out.write(f"address=/{name.strip()}/0.0.0.0\n")
    return _spawn_dnsmasq("dnsmasq", conf, port, probe, 300)


def _spawn_dnsmasq(name: str, conf: Path, port: int, probe: str, timeout: float) -> Peer:
    binary = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
    if binary is None:
        raise SystemExit("bench.dns: dnsmasq is not installed (apt-get install dnsmasq)")
    start = time.perf_counter()
    proc = subprocess.Popen([binary, "-k", f"--conf-file={conf}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peer = Peer(name, proc, 0.0, port)
    try:
        peer.ready_s = wait_ready(proc, port, probe, start, timeout)
    except BaseException:
        peer.stop()
        raise
    return peer


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the resolver listens on both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for UDP and TCP")


def start_schoolgate(work: Path, config: Path, data: Path, probe: str) -> Peer:
    port = free_udp_tcp_port()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "proxy.cmd_dns", "--config", str(config), "--data", str(data),
                             "--port", str(port)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peer = Peer("schoolgate", proc, 0.0, port)
    try:
        peer.ready_s = wait_ready(proc, port, probe, start)
    except BaseException:
        peer.stop()
        raise
    return peer


def dnsperf(port: int, queries: Path, seconds: int) -> dict[str, float]:
    binary = shutil.which("dnsperf")
    if binary is None:
        raise SystemExit("bench.dns: dnsperf is not installed (apt-get install dnsperf)")
    out = subprocess.run([binary, "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    latency = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    return {"qps": qps, "lost": float(lost.group(1)) if lost else 0.0,
            "latency_ms": float(latency.group(1)) * 1000 if latency else 0.0}


def logged_rows(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM dns_queries").fetchone()[0])


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
