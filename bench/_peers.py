"""Helpers shared by benchmarks: machine description, RSS, free ports, peers (dnsmasq, nginx, mitmdump, e2guardian).

Every server started here listens on 127.0.0.1 only and is stopped by its
process id (`Peer.stop`), also when the benchmark fails half-way.
"""
from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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
    hard_kill: bool = False      # SIGKILL at once (e2guardian ignores SIGTERM)

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def tree_rss_mb(self) -> float:
        """VmRSS of the process and all its descendants, in MB."""
        return tree_rss_mb(self.proc.pid)

    def tree_cpu_s(self) -> float:
        """CPU seconds used so far by the process and its descendants."""
        return tree_cpu_s(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None and self.hard_kill:
            for pid in [self.proc.pid, *descendants(self.proc.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
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


# --- HTTP peers (PEERS.md "HTTP filtering"): process trees, readiness, nginx, mitmdump, e2guardian ---

def descendants(pid: int) -> list[int]:
    """Process ids of every descendant of `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tree_rss_mb(pid: int) -> float:
    """VmRSS of a process and all its descendants, in MB."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            total += rss_mb(each)
        except OSError:
            pass
    return total


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its live descendants."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            total += cpu_s(each)
        except OSError:
            pass
    return total


def http_get_via(proxy_port: int, url: str, host: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET absolute-form `url` through an HTTP proxy on 127.0.0.1:proxy_port: (status, body)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=timeout)
    try:
        conn.request("GET", url, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(peer: Peer, probe: Callable[[], bool], timeout: float, started: float) -> Peer:
    """Poll `probe` until it is true; set `peer.ready_s`.  Stops the peer and raises on failure."""
    try:
        while time.perf_counter() - started < timeout:
            if peer.proc.poll() is not None:
                raise RuntimeError(f"{peer.name} exited with status {peer.proc.returncode}")
            try:
                if probe():
                    peer.ready_s = time.perf_counter() - started
                    return peer
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{peer.name} was not ready after {timeout:.0f} s")
    except BaseException:
        peer.stop()
        raise


def start_nginx(workdir: Path, body: bytes, name: str = "file") -> Peer:
    """nginx as the origin: one worker, no access log, `body` at /NAME, on a free port."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "www").mkdir(exist_ok=True)
    (workdir / "www" / name).write_bytes(body)
    for d in (workdir, workdir / "www"):
        os.chmod(d, 0o755)   # the worker runs as an unprivileged user
    port = free_port(socket.SOCK_STREAM)
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n  access_log off;\n  default_type text/html;\n  keepalive_requests 1000000;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    root {workdir}/www;\n  }}\n}}\n")
    started = time.perf_counter()
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(workdir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    peer = Peer("nginx", proc, 0.0, port)
    url = f"http://127.0.0.1:{port}/{name}"
    return wait_ready(peer, lambda: http_get_via(port, url, f"127.0.0.1:{port}") == (200, body), 10, started)


def start_mitmdump(workdir: Path, probe_url: str, probe_host: str, probe_body: bytes,
                   binary: Path | None = None) -> Peer:
    """Bare mitmdump on a free port, its CA in `workdir`; ready once it proxies the probe."""
    exe = binary or Path(sys.executable).with_name("mitmdump")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(socket.SOCK_STREAM)
    started = time.perf_counter()
    proc = subprocess.Popen([str(exe), "-q", "--listen-host", "127.0.0.1", "-p", str(port),
                             "--set", f"confdir={workdir}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peer = Peer("mitmdump", proc, 0.0, port)
    return wait_ready(peer, lambda: http_get_via(port, probe_url, probe_host) == (200, probe_body), 60, started)


def start_e2guardian(workdir: Path, banned_domains: Path, probe_url: str, probe_host: str, probe_body: bytes,
                     timeout: float = 300.0) -> Peer:
    """e2guardian 5.3 from a copy of /etc/e2guardian, on 127.0.0.1 only, banning every name of `banned_domains`.

    Logs and pid file live under `workdir`; `transparenthttpsport` is commented out (it would listen
    on every interface).  It ignores SIGTERM, so `stop()` sends SIGKILL.
    """
    binary = shutil.which("e2guardian") or "/usr/sbin/e2guardian"
    if not Path(binary).exists() or not Path("/etc/e2guardian").is_dir():
        raise RuntimeError("e2guardian is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    etc = workdir / "etc"
    shutil.copytree("/etc/e2guardian", etc, symlinks=True)
    for path in etc.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if "/etc/e2guardian" in text:
                path.write_text(text.replace("/etc/e2guardian", str(etc)))
    logs = workdir / "log"
    logs.mkdir(exist_ok=True)
    os.chmod(workdir, 0o755)
    os.chmod(logs, 0o777)   # e2guardian drops to its own user after start
    port = free_port(socket.SOCK_STREAM)
    conf = etc / "e2guardian.conf"
    lines = []
    for line in conf.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key in ("filterip", "filterports", "transparenthttpsport"):
            line = "#" + line
        lines.append(line)
    lines += ["filterip = 127.0.0.1", f"filterports = {port}", f"loglocation = '{logs}/access.log'",
              f"pidfilename = '{logs}/e2guardian.pid'"]
    conf.write_text("\n".join(lines) + "\n")
    with open(etc / "lists" / "bannedsitelist", "a") as out:
        out.write(f"\n.Include<{banned_domains}>\n")
    started = time.perf_counter()
    with open(workdir / "stderr.log", "wb") as err:
        proc = subprocess.Popen([binary, "-N", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err)
    peer = Peer("e2guardian", proc, 0.0, port, hard_kill=True)
    return wait_ready(peer, lambda: http_get_via(port, probe_url, probe_host) == (200, probe_body), timeout,
                      started)
