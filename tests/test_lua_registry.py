"""The Lua registry: preludes inlined once, the log's genesis the same in Lua
and Python, refusals turned into our coded errors."""

import pytest
import redis.asyncio as aioredis

from kernel.errors import NotFound
from kernel.eventlog import GENESIS, LUA_APPEND
from kernel.lua import Scripts, source


def test_the_log_prelude_starts_the_chain_at_pythons_genesis() -> None:
    assert f"'{GENESIS}'" in LUA_APPEND


def test_a_prelude_included_twice_is_inlined_once() -> None:
    text = source("kernel/refuse") + source("kernel/log_append")
    assert text.count("local function refuse(") == 1
    assert source("kernel/log_append").count("local function log_append(") == 1


async def test_a_refusal_is_our_coded_error(redis_url: str) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        scripts = Scripts(redis)
        script = scripts._redis.register_script(
            source("kernel/refuse") + "return refuse('not_found', 'no such thing')"
        )
        scripts._loaded["test/refuses"] = script
        with pytest.raises(NotFound, match="no such thing"):
            await scripts.run("test/refuses", [], [])
    finally:
        await redis.aclose()
