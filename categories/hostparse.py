"""Turn the host part of a URL (already split from userinfo and port) into a lookup key.

`parse_host(raw)` returns `(kind, host, problem)` where kind is "name", "ipv4",
"ipv6" or "invalid"; it never raises.  The rules follow what browsers do (the
WHATWG URL standard) so that the filter sees the same host the browser
connects to:

- ASCII case is folded and one trailing dot is dropped;
- percent-escapes are decoded before anything else (`%65xample.com`);
- non-ASCII names become punycode with UTS 46 / IDNA 2008 (the `idna`
  package, which httpx already depends on), falling back to the standard
  library's IDNA 2003 codec;
- a name whose last label is a number is an IPv4 address in any of the forms
  `inet_aton` accepts: `3232235777`, `0x7f.1`, `0177.0.0.1`, `192.168.1`;
  one that does not parse (`example.123`, `1.2.3.4.5`) is invalid;
- IPv6 literals are compressed; an IPv4-mapped one (`::ffff:10.0.0.1`) is
  reported as the IPv4 address it really is;
- labels are 1-63 characters of `a-z 0-9 - _`, names at most 253.
"""
from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import unquote_to_bytes

try:  # IDNA 2008 + UTS 46, as browsers do; httpx depends on it
    import idna as _idna
except ImportError:  # pragma: no cover - the stdlib codec below still works
    _idna = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

HostParse = tuple[str, str, str]

MAX_NAME = 253
MAX_LABEL = 63
# Labels of 1-63 LDH/underscore characters; the last one starts with a letter
# (or "_"), so a name that could be an IPv4 number always takes the slow path.
_FAST = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z_][a-z0-9_-]{0,62}")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f#%/:<>?@\[\\\]^|\"]")
_HEX = frozenset("0123456789abcdef")


def parse_host(raw: str) -> HostParse:
    """Normalise a host name or IP literal; see the module docstring."""
    # Fast path: plain lower-case-able ASCII names (nearly every request).
    if raw.isascii():
        h = raw.lower()
        if len(h) <= MAX_NAME and _FAST.fullmatch(h) is not None:
            return ("name", h, "")
    return _parse_slow(raw)


def _parse_slow(raw: str) -> HostParse:
    if not raw:
        return ("invalid", "", "empty host")
    if raw.startswith("["):
        if not raw.endswith("]"):
            return ("invalid", raw, "unterminated IPv6 literal")
        return parse_ipv6(raw[1:-1])
    if "%" in raw:
        try:
            raw = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return ("invalid", raw, "percent-encoding that is not UTF-8")
    if ":" in raw:
        return parse_ipv6(raw)
    if _FORBIDDEN.search(raw):
        return ("invalid", raw, "forbidden character in host")
    name = raw
    if not name.isascii():
        converted = to_ascii(name)
        if converted is None:
            return ("invalid", raw, "not a valid international domain name")
        name = converted
    name = name.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        return ("invalid", raw, "empty host")
    labels = name.split(".")
    last = labels[-1]
    if last and (last.isdigit() or (last.startswith("0x") and set(last[2:]) <= _HEX)):
        return parse_ipv4(labels, raw)
    if len(name) > MAX_NAME:
        return ("invalid", raw, f"name longer than {MAX_NAME} characters")
    for label in labels:
        if not label:
            return ("invalid", raw, "empty label")
        if len(label) > MAX_LABEL:
            return ("invalid", raw, f"label longer than {MAX_LABEL} characters")
        if _LABEL.fullmatch(label) is None:
            return ("invalid", raw, f"bad character in label {label!r}")
    return ("name", name, "")


def to_ascii(name: str) -> str | None:
    """Punycode a Unicode name (UTS 46 first, IDNA 2003 second); None if neither accepts it."""
    if _idna is not None:
        try:
            return str(_idna.encode(name, uts46=True, transitional=False).decode("ascii"))
        except (_idna.IDNAError, UnicodeError, ValueError):
            logger.debug("UTS 46 refused %r, trying IDNA 2003", name)
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _ipv4_part(part: str) -> int | None:
    base = 10
    digits = part
    if part.startswith("0x"):
        base, digits = 16, part[2:]
        if not digits:
            return 0
        if not set(digits) <= _HEX:
            return None
    elif len(part) > 1 and part.startswith("0"):
        base, digits = 8, part[1:]
        if not set(digits) <= set("01234567"):
            return None
    elif not part.isdigit() or not part.isascii():
        return None
    return int(digits, base)


def parse_ipv4(labels: list[str], raw: str) -> HostParse:
    """IPv4 in the forms browsers accept (decimal, hex, octal, 1 to 4 parts)."""
    if len(labels) > 4:
        return ("invalid", raw, "IPv4 address with more than four parts")
    numbers: list[int] = []
    for part in labels:
        if not part:
            return ("invalid", raw, "empty part in IPv4 address")
        value = _ipv4_part(part)
        if value is None:
            return ("invalid", raw, f"name ending in a number that is not an IPv4 address ({part!r})")
        numbers.append(value)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return ("invalid", raw, "IPv4 address part out of range")
    address = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        address += n << (8 * (3 - i))
    return ("ipv4", str(ipaddress.IPv4Address(address)), "")


def parse_ipv6(text: str) -> HostParse:
    """A compressed IPv6 literal, or the IPv4 address an IPv4-mapped one stands for."""
    if "%" in text:
        return ("invalid", text, "IPv6 zone identifiers are not allowed")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return ("invalid", text, "not a valid IPv6 address")
    if address.ipv4_mapped is not None:
        return ("ipv4", str(address.ipv4_mapped), "")
    return ("ipv6", address.compressed, "")
