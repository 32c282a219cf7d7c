from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.school import School, start_school


@pytest.fixture
async def school(tmp_path: Path) -> AsyncIterator[School]:
    s = await start_school(tmp_path)
    try:
        yield s
    finally:
        await s.close()
