"""Sign-in codes and where a link may lead. Must not import any framework.

A code carries 256 random bits (`secrets.token_urlsafe(32)`); only its
sha256 is stored, for SIGNIN_TTL_S, and the exchange reads it with GETDEL:
a code works once, whoever races for it. The code travels in the link's
fragment (`/signin#code=...`), which browsers never send to the server, so
no access log holds it; nothing here logs it either.
"""

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis.asyncio as aioredis

from accounts import keys
from kernel.errors import Invalid, Unauthorized

SIGNIN_TTL_S = 15 * 60
MAX_NEXT = 512
MAX_CODE = 128
_CODE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


@dataclass(frozen=True, slots=True)
class Pending:
    email: str
    next: str | None


def safe_next(value: object) -> str | None:
    """A same-origin path for after sign-in, or `Invalid`. Refused: anything
    not starting with exactly one `/` (`//host` is another origin to a
    browser), schemes, backslashes (read as `/` by browsers), control
    characters."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_NEXT:
        raise Invalid("next must be a path on this site (at most 512 characters)")
    if not value.startswith("/") or value.startswith("//"):
        raise Invalid("next must be a path on this site, starting with a single /")
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise Invalid("next must be a path on this site (no backslashes, spaces or controls)")
    if ":" in value.split("?", 1)[0].split("#", 1)[0].split("/", 2)[1]:
        raise Invalid("next must be a path on this site, not a URL")
    return value


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def link(public_url: str, code: str, next_path: str | None) -> str:
    tail = "" if next_path is None else "&next=" + quote(next_path, safe="/?=")
    return f"{public_url.rstrip('/')}/signin#code={code}{tail}"


async def issue(redis: aioredis.Redis, email: str, next_path: str | None) -> str:
    """A fresh code for `email`; only its hash is kept."""
    code = secrets.token_urlsafe(32)
    value = json.dumps({"email": email, "next": next_path})
    await redis.set(keys.signin_code(code_hash(code)), value, ex=SIGNIN_TTL_S)
    return code


def parse_code(value: object) -> str:
    if not isinstance(value, str) or not _CODE.match(value):
        raise Invalid("code must be the code of a sign-in link")
    return value


async def redeem(redis: aioredis.Redis, code: str) -> Pending:
    """The sign-in the code stood for; the code is gone from now on."""
    r: Any = redis  # redis-py types its async answers loosely
    raw = await r.getdel(keys.signin_code(code_hash(code)))
    if raw is None:
        raise Unauthorized("this sign-in link was used already or has expired; ask for a new one")
    found = json.loads(raw)
    return Pending(str(found["email"]), found.get("next"))
