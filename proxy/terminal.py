"""Text that came from outside (a visitor, a pupil, an MIS export), made safe to print on a terminal."""
from __future__ import annotations

import re

# what a terminal would act on or reorder: C0/C1 controls (escape sequences, CR, NUL), line separators, bidi overrides
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def shown(text: object) -> str:
    """`text` for one line of a terminal: the characters above written as \\uXXXX."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", "" if text is None else str(text))
