"""Fixtures of the command-line tests in this folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import main
from tests.support.school import write_school


@pytest.fixture
def school_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`--config ... --data ...` of the demo school, after `schoolgate init` (its output swallowed)."""
    ctx = write_school(tmp_path)
    args = ["--config", str(ctx.config_path), "--data", str(ctx.data_dir)]
    assert main(["init", *args]) == 0
    capsys.readouterr()
    return args
