"""Payload readers: each returns a typed value or raises `Invalid` naming the
field. Handlers read every field through these before touching state."""

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from kernel.errors import Invalid

ID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def as_payload(value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid("payload must be an object")
    return value


# Letters and symbols by category that draw nothing (Hangul fillers, the
# blank Braille pattern): text made only of them is blank too.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_blank(value: str) -> bool:
    """Nothing a reader would see: only spaces, format characters (category
    Cf: zero-width spaces and joiners, BOM, direction marks), combining marks
    or fillers."""
    return not any(unicodedata.category(c)[0] in "LNPS" and c not in _FILLERS for c in value)


def text(p: Mapping[str, Any], key: str, *, max_len: int, min_len: int = 1) -> str:
    """Text as stored: NFC, stripped; refused when blank to a reader."""
    value = p.get(key)
    if not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    value = _nfc(value, key).strip()
    if value and is_blank(value):
        if min_len > 0:
            raise Invalid(f"{key} must have visible characters")
        return ""
    if not min_len <= len(value) <= max_len:
        raise Invalid(f"{key} must be {min_len} to {max_len} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise Invalid(f"{key} has control characters")
    return value


def _nfc(value: str, key: str) -> str:
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no such text exists
        raise Invalid(f"{key} is not valid Unicode text") from None
    return unicodedata.normalize("NFC", value)


def opt_text(p: Mapping[str, Any], key: str, *, max_len: int, default: str = "") -> str:
    if p.get(key) is None:
        return default
    return text(p, key, max_len=max_len, min_len=0)


def ident(p: Mapping[str, Any], key: str) -> str:
    value = p.get(key)
    if not isinstance(value, str) or not ID_RE.match(value):
        raise Invalid(f"{key} must be an id of letters, digits and _ . @ - (1 to 64)")
    return value


SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def slug(p: Mapping[str, Any], key: str) -> str:
    """An id that also names files and URL segments (rooms)."""
    value = p.get(key)
    if not isinstance(value, str) or not SLUG_RE.match(value):
        raise Invalid(f"{key} must be 1 to 64 letters, digits, '_' or '-'")
    return value


def integer(p: Mapping[str, Any], key: str, *, lo: int, hi: int) -> int:
    value = p.get(key)
    # bool is an int in Python; a client sending true means something else.
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{key} must be an integer")
    if not lo <= value <= hi:
        raise Invalid(f"{key} must be between {lo} and {hi}")
    return value


def opt_integer(p: Mapping[str, Any], key: str, *, lo: int, hi: int) -> int | None:
    return None if p.get(key) is None else integer(p, key, lo=lo, hi=hi)


def number(p: Mapping[str, Any], key: str, *, lo: float, hi: float) -> float:
    value = p.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{key} must be a number")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise Invalid(f"{key} must be between {lo} and {hi}")
    return float(value)


def boolean(p: Mapping[str, Any], key: str) -> bool:
    value = p.get(key)
    if not isinstance(value, bool):
        raise Invalid(f"{key} must be true or false")
    return value


def opt_boolean(p: Mapping[str, Any], key: str, *, default: bool) -> bool:
    return default if p.get(key) is None else boolean(p, key)
