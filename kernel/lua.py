"""Lua scripts as `.lua` files beside the package that owns them, loaded once.

A package keeps its scripts in `<package>/lua/<name>.lua`. A script names the
preludes it needs in lines of its own, before its body:

    --@include kernel/log_append
    --@include commerce/stock

and each prelude is inlined once, in order (a prelude may include others).
Every script starts by naming its KEYS and ARGV as locals, and refuses only
through `refuse(code, message)` (kernel/lua/refuse.lua), which `Scripts.run`
turns into the matching `DomainError`. Must not import anything of ours but
`kernel.errors`.
"""

from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from kernel.errors import DomainError, Invalid, from_code

INCLUDE = "--@include "
REFUSAL_PREFIX = "DR "


def _read(ref: str) -> str:
    package, _, name = ref.partition("/")
    return (files(package) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def _inline(ref: str, seen: set[str]) -> list[str]:
    if ref in seen:
        return []
    seen.add(ref)
    parts: list[str] = []
    body: list[str] = []
    for line in _read(ref).splitlines():
        if line.startswith(INCLUDE):
            parts += _inline(line[len(INCLUDE) :].strip(), seen)
        else:
            body.append(line)
    return [*parts, "\n".join(body)]


@cache
def source(ref: str) -> str:
    """The full text of script `package/name`, its preludes inlined once."""
    return "\n".join(_inline(ref, set())) + "\n"


def as_domain_error(exc: ResponseError) -> DomainError | None:
    """A script's `DR <code> <message>` refusal as our error, else None."""
    text = str(exc)
    if not text.startswith(REFUSAL_PREFIX):
        return None
    _, code, message = [*text.split(" ", 2), "", ""][:3]
    return from_code(code, message)


class Scripts:
    """The scripts of one Redis client, each registered once (EVALSHA)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._loaded: dict[str, AsyncScript] = {}

    def get(self, ref: str) -> AsyncScript:
        script = self._loaded.get(ref)
        if script is None:
            script = self._loaded[ref] = self._redis.register_script(source(ref))
        return script

    async def run(self, ref: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one script; its refusal becomes the matching DomainError."""
        try:
            return await self.get(ref)(keys=list(keys), args=list(args))
        except UnicodeEncodeError:
            # A lone surrogate ("\ud800") decodes from JSON but is not UTF-8.
            raise Invalid("text must be valid Unicode (no lone surrogates)") from None
        except ResponseError as exc:
            error = as_domain_error(exc)
            if error is None:
                raise
            raise error from None
