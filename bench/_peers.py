"""Helpers shared by benchmarks: machine description, RSS, free ports, dnsmasq as a peer.

Every server started here listens on 127.0.0.1 only and is stopped by its
process id (`Peer.stop`), also when the benchmark fails half-way.
"""
from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dnslib import DNSRecord


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release()}


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory (VmRSS) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dns_answers(port: int, name: str, timeout: float = 0.2) -> bool:
    """Does a DNS server on 127.0.0.1:port answer an A query for `name`?"""
    query = DNSRecord.question(name).pack()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(query, ("127.0.0.1", port))
            s.recvfrom(4096)
            return True
        except OSError:
            return False


@dataclass
class Peer:
    name: str
    proc: subprocess.Popen[bytes]
    ready_s: float
    port: int

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_dnsmasq(domains_file: Path, workdir: Path, probe: str, timeout: float = 120.0) -> Peer:
    """dnsmasq blocking every domain of `domains_file` (one per line), as PEERS.md describes.

    Ready = it answers a query for `probe`.  Raises RuntimeError if dnsmasq is missing
    or does not answer in time (after stopping it).
    """
    binary = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
    if binary is None:
        raise RuntimeError("dnsmasq is not installed")
    port = free_port()
    conf = workdir / "dnsmasq.conf"
    with open(conf, "w") as out, open(domains_file) as names:
        out.write(f"port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
                  f"pid-file={workdir / 'dnsmasq.pid'}\ncache-size=0\n")
        for name in names:
            out.write(f"address=/{name.strip()}/0.0.0.0\n")
    start = time.perf_counter()
    proc = subprocess.Popen([binary, "-k", f"--conf-file={conf}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    peer = Peer("dnsmasq", proc, 0.0, port)
    try:
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"dnsmasq exited: {err.strip()[:300]}")
            if dns_answers(port, probe):
                peer.ready_s = time.perf_counter() - start
                return peer
            time.sleep(0.02)
        raise RuntimeError("dnsmasq did not answer in time")
    except BaseException:
        peer.stop()
        raise
