"""bench.soak kept working: its whole logic for ~9 s at a tiny rate, on a tiny list (figures not judged).

Real parts: nginx, dnsmasq (the fake upstream), `schoolgate run` as a subprocess, an SMTP sink,
all on loopback.  Skipped when nginx or dnsmasq is not installed.
"""
from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

from bench._soakload import build_mix
from bench._soaksetup import build_data_dir, check_mix, grant_overrides, soak_config
from bench._soakwatch import slope_per_hour, summary
from bench.soak import SoakOptions, run_soak

LISTS = {"gambling": ["bet365.com"], "social_networks": ["facebook.com"], "adult": ["pornhub.com"]}


def _missing(name: str) -> bool:
    return shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()


def tiny_tree(path: Path) -> Path:
    """A UT1-layout tarball with the names the soak's mix expects blocked."""
    with tarfile.open(path, "w:gz") as tar:
        for category, names in LISTS.items():
            data = ("\n".join(names) + "\n").encode()
            info = tarfile.TarInfo(f"blacklists/{category}/domains")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


async def template(tmp_path: Path) -> tuple[Path, Path]:
    config = soak_config(tmp_path / "t", proxy_port=1, dns_port=2, upstream_port=3, metrics_port=4, smtp_port=5)
    data = tmp_path / "template"
    await build_data_dir(tiny_tree(tmp_path / "tiny.tar.gz"), config, data)
    return config, data


@pytest.mark.skipif(_missing("nginx") or _missing("dnsmasq"), reason="nginx or dnsmasq is not installed "
                    "(apt-get install nginx dnsmasq): the soak needs them as origin and fake upstream")
async def test_soak_runs_end_to_end(tmp_path: Path) -> None:
    _, data = await template(tmp_path)
    work = Path(tempfile.mkdtemp(prefix="sg-soak-smoke-"))   # not under tmp_path: nginx's worker must read it
    opts = SoakOptions(minutes=9 / 60, rps=8, qps=10, sample_s=3, warmup_s=3)
    said: list[str] = []
    try:
        result = await run_soak(opts, template=data, listed=[n for names in LISTS.values() for n in names],
                                workdir=work, say=said.append)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert result["requests"] == result["requests_answered"] >= 60, result
    assert result["http_errors"] == {} and result["bad_bodies"] == 0
    by_item = result["by_item"]
    assert isinstance(by_item, dict)
    for item in build_mix(1, 2):   # every kind of request was sent and got what the policy says
        wanted = {"allow": "200/200" if item.connect else "200", "block": "403"}[item.expect]
        assert by_item.get(f"{item.name} {wanted}", 0) > 0, (item.name, by_item)
    assert result["visit_rows"] == result["requests_answered"] and result["lost_visit_rows"] == 0
    assert result["dns_queries"] == result["dns_answered"] == result["dns_rows"] > 50
    assert result["lost_dns_rows"] == 0 and result["dns_dropped_meta"] == 0
    assert result["service_exit_code"] == 0 and result["service_log_errors"] == 0
    samples = result["samples"]
    assert isinstance(samples, list) and len(samples) == 4   # t = 0, 3, 6, 9
    assert all(s["rss_mb"] > 20 and s["fds"] > 5 for s in samples)
    assert samples[-1]["dns_answered"] > samples[1]["dns_answered"] > 0
    assert {"rss_start_mb", "rss_end_mb", "rss_growth_pct", "fds_start", "fds_end"} <= set(result)
    assert any("ready in" in line for line in said)


async def test_the_mix_check_refuses_what_would_leave_the_machine(tmp_path: Path) -> None:
    config, data = await template(tmp_path)
    await grant_overrides(config, data, 60)
    items = build_mix(8081, 8443)
    await check_mix(config, data, items)   # the mix as it is passes
    outside = items[0].__class__("out", "ks2", "http://example.com/", "allow", 1)
    with pytest.raises(RuntimeError, match="leave the machine"):
        await check_mix(config, data, [outside])
    named = items[0].__class__("named", "guest", "http://127.0.0.1.nip.io/", "allow", 1)
    with pytest.raises(RuntimeError, match="internet-only"):
        await check_mix(config, data, [named])


def test_summary_measures_from_the_warm_up_sample() -> None:
    base = {"rss_anon_mb": 50.0, "threads": 5.0}
    samples = [{**base, "t_s": 0.0, "rss_mb": 80.0, "fds": 19.0}, {**base, "t_s": 60.0, "rss_mb": 100.0, "fds": 40.0},
               {**base, "t_s": 120.0, "rss_mb": 110.0, "fds": 42.0}, {**base, "t_s": 180.0, "rss_mb": 121.0, "fds": 42.0}]
    got = summary(samples, warmup_s=120)
    assert (got["rss_start_mb"], got["rss_end_mb"], got["rss_growth_pct"]) == (110.0, 121.0, 10.0)
    assert (got["fds_first"], got["fds_start"], got["fds_end"], got["fds_slope_per_h"]) == (40.0, 42.0, 42.0, 0.0)
    assert slope_per_hour([(0.0, 1.0), (1800.0, 2.0)]) == pytest.approx(2.0)
