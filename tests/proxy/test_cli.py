"""The `schoolgate` command line, run in process against a real data dir (the DESIGN.md contract)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_config_check_ok_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str], school_dir: list[str]) -> None:
    code, out, _ = run(capsys, "config", "check", *school_dir)
    assert code == 0 and "OK" in out
    bad = tmp_path / "bad.toml"
    text = Path(school_dir[1]).read_text().replace('port = 25', 'port = "x"').replace('weekday = "mon"', 'weekday = 3')
    bad.write_text(text)
    code, _, err = run(capsys, "config", "check", "--config", str(bad))
    assert code == 2
    assert "smtp.port" in err and "reports.weekday" in err and "bad.toml:" in err


def test_explain_json_contract(capsys: pytest.CaptureFixture[str], school_dir: list[str]) -> None:
    code, out, _ = run(capsys, "explain", "http://www.bet365.com/", "--ip", "127.0.2.5", "--json", *school_dir)
    d = json.loads(out)
    assert code == 0
    assert d["action"] == "block" and d["group"] == "ks2" and d["categories"] == ["gambling"]
    assert d["rule"] == "category.blocked" and d["alert"] is False and d["reason"]
    code, out, _ = run(capsys, "explain", "http://www.bet365.com/", "--ip", "127.0.3.11", "--json", *school_dir)
    assert json.loads(out)["user"] == "teacher"
    at = "2026-11-23T18:00"    # after school: games allowed for KS2
    code, out, _ = run(capsys, "explain", "miniclip.com", "--ip", "127.0.2.5", "--at", at, "--json", *school_dir)
    assert json.loads(out)["action"] == "allow"
    code, out, _ = run(capsys, "explain", "miniclip.com", "--ip", "127.0.2.5", "--at", "2026-11-23T10:00", *school_dir)
    assert out.startswith("BLOCK") and "category.school_hours" in out


def test_register_commands_and_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str], school_dir: list[str]) -> None:
    code, out, _ = run(capsys, "users", "list", *school_dir)
    assert code == 0 and "y5.noconsent" in out and "no_consent" in out
    assert run(capsys, "users", "consent", "y5.noconsent", "--by", "office", *school_dir)[0] == 0
    assert run(capsys, "users", "ban", "y3.pupil", "--until", "2026-12-01", "--reason", "misuse", "--by", "head",
               *school_dir)[0] == 0
    code, out, _ = run(capsys, "explain", "http://example.org/", "--ip", "127.0.4.21", "--at", "2026-11-24T10:00",
                       "--json", *school_dir)
    assert json.loads(out)["rule"] == "register.banned"
    code, out, _ = run(capsys, "explain", "http://example.org/", "--ip", "127.0.4.21", "--at", "2026-12-02T10:00",
                       "--json", *school_dir)
    assert json.loads(out)["action"] == "allow"          # the ban ended by itself
    code, _, err = run(capsys, "users", "revoke", "nobody", "--reason", "x", "--by", "y", *school_dir)
    assert code == 1 and "nobody" in err
    csv = tmp_path / "more.csv"
    csv.write_text("username,full_name,role,group,parental_consent\nnew.pupil,New Pupil,pupil,ks2,yes\n"
                   "bad.pupil,Bad,wizard,ks2,yes\n")
    code, out, err = run(capsys, "users", "import", str(csv), "--by", "office", *school_dir)
    assert code == 0 and "1 added" in out and "1 rejected" in out and "line 3" in err
    code, out, _ = run(capsys, "devices", "list", *school_dir)
    assert "teacher-laptop" in out and "127.0.3.11" in out


def test_override_lists_and_requests(capsys: pytest.CaptureFixture[str], school_dir: list[str]) -> None:
    code, out, _ = run(capsys, "override", "add", "--group", "ks2", "--category", "games", "--minutes", "30",
                       "--by", "teacher", "--reason", "maths games", *school_dir)
    assert code == 0 and "games allowed for ks2" in out
    code, _, err = run(capsys, "override", "add", "--group", "ks2", "--category", "iwf", "--minutes", "30",
                       "--by", "teacher", "--reason", "no", *school_dir)
    assert code == 2 and "illegal tier" in err
    code, out, _ = run(capsys, "explain", "http://example.org/", "--ip", "127.0.1.5", "--json", *school_dir)
    assert json.loads(out)["rule"] == "walled_garden"
    assert run(capsys, "lists", "allow", "example.org", "--category", "local_allow", "--reason", "class topic",
               "--by", "teacher", *school_dir)[0] == 0
    code, out, _ = run(capsys, "explain", "http://www.example.org/", "--ip", "127.0.1.5", "--json", *school_dir)
    assert json.loads(out)["action"] == "allow"
    assert run(capsys, "lists", "deny", "example.net", "--category", "games", "--reason", "distracting",
               "--by", "tech", *school_dir)[0] == 0
    code, out, _ = run(capsys, "explain", "http://example.net/", "--ip", "127.0.2.5", "--at", "2026-11-23T10:00",
                       "--json", *school_dir)
    assert json.loads(out)["categories"] == ["games"]
    code, out, _ = run(capsys, "requests", "list", *school_dir)
    assert code == 0 and "no review requests" in out
    code, _, err = run(capsys, "requests", "approve", "99", *school_dir)
    assert code == 1 and "no review request 99" in err


def test_categories_commands(capsys: pytest.CaptureFixture[str], school_dir: list[str]) -> None:
    code, out, _ = run(capsys, "categories", "lookup", "www.bet365.com", "--json", *school_dir)
    assert code == 0 and json.loads(out)["categories"] == ["gambling"]
    code, out, _ = run(capsys, "categories", "stats", *school_dir)
    assert code == 0 and "gambling" in out


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["override", "add", "--group", "ks2"]) == 2
    assert main(["no-such-command"]) == 2
