"""Reading list files a block at a time gives exactly the entries of reading them whole."""
from __future__ import annotations

import random

import pytest

from categories.lists import iter_text_lines, text_lines

PIECES = [b"example.com", b"www.a.org", b"b.net/path#x", b" ", b"\t", b"\n", b"\r\n", b"# comment\n",
          b" # after\n", b"\xe2\x82", b"\xc3\xa9.fr", b"\xe2\x80\xa8", b"\xc2\x85", b"x\ty", b"##", b"\n\n"]


def reference(data: bytes) -> list[str]:
    """The whole-file reading, as it was written first."""
    text = data.decode("utf-8", errors="replace")
    if "#" not in text:
        return text.split()
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for mark in (" #", "\t#"):
            if mark in line:
                line = line.split(mark, 1)[0].rstrip()
        if line:
            out.append(line)
    return out


def test_known_cases() -> None:
    data = b"a.com\n# note\nb.org # why\nc.net/#page\n\n  d.fr  \n"
    assert text_lines(data) == ["a.com", "b.org", "c.net/#page", "d.fr"]
    assert text_lines(b"a.com b.org\r\nc.net") == ["a.com", "b.org", "c.net"]


@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
def test_blocks_equal_whole(chunk: int) -> None:
    rng = random.Random(chunk)
    for _ in range(300):
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.5:
            data = data.replace(b"#", b"")
        assert list(iter_text_lines(data, chunk)) == reference(data) == text_lines(data), data
