"""The hash-chained event log: one Redis stream per owner (a room, the shop).

Each entry holds `type`, `data` (JSON text), `ts`, `prev` and `hash`, where
`hash = sha1(prev + "\\n" + type + "\\n" + data + "\\n" + ts)`. Appends happen
inside the same Lua script as the change they record (`LUA_APPEND` is a
prelude for such scripts), so a change and its log entry are one atomic step.
Verification recomputes the chain in Python, independently of Redis.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from kernel.lua import source

GENESIS = "0" * 40

# Lua prelude: `log_append(stream_key, head_key, etype, data_json, ts)`, kept in
# kernel/lua/log_append.lua (scripts include it as `--@include kernel/log_append`).
LUA_APPEND = source("kernel/log_append")


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    type: str
    data: str
    ts: str
    prev: str
    hash: str


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    checked: int
    bad_entry: str | None = None
    reason: str = ""


def entry_hash(prev: str, etype: str, data: str, ts: str) -> str:
    return hashlib.sha1(f"{prev}\n{etype}\n{data}\n{ts}".encode()).hexdigest()


def verify(entries: Iterable[Entry]) -> Verdict:
    """Check the chain entry by entry; name the first entry that breaks it."""
    prev = GENESIS
    count = 0
    for entry in entries:
        if entry.prev != prev:
            return Verdict(False, count, entry.id, "prev does not match the entry before")
        if entry_hash(entry.prev, entry.type, entry.data, entry.ts) != entry.hash:
            return Verdict(False, count, entry.id, "hash does not match the entry's content")
        prev = entry.hash
        count += 1
    return Verdict(True, count)
