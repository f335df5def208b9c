"""Shoppable moments of a replay: the pins, drops and polls of a room's
hash-chained event log, placed at their offset into one recording.

Pure: `moments` turns log entries and the recording's window into moments
that name ids only; `moment_view` fills in what a listener sees (the
product's title and price, the drop's state now) from facts the caller
read. The shell reads the log bounded by time (`RoomStore.log_between`),
never the whole stream. Must not import any framework or `commerce/`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kernel.eventlog import Entry

# Entries a little older than the window still fall inside it: the stream
# ids (Redis's clock) and `ts` (the server's clock) may differ by this much.
LOG_SLACK_S = 5.0
_DROP_ENTRIES = ("drop.scheduled", "drop.live")
_PRODUCT_FACTS = ("title", "price", "currency", "kind")
_DROP_FACTS = ("state", "starts_at", "ends_at", "remaining")
_ENTRIES = frozenset(("slot.pinned", "poll.created", *_DROP_ENTRIES))


class MomentType(StrEnum):
    PIN = "pin"
    DROP = "drop"
    POLL = "poll"


@dataclass(frozen=True, slots=True)
class Window:
    """Where a recording sits on the server's clock: `opened_at` when it
    started, `audio_at` its first audio (offset 0), `end` its end (now
    while it is still live)."""

    opened_at: float
    audio_at: float
    end: float

    def offset(self, ts: float) -> float | None:
        """Seconds into the recording of a change at `ts`, or None outside it.
        A change between the opening and the first audio is at 0."""
        if ts < self.opened_at or ts > self.end:
            return None
        return round(max(0.0, ts - self.audio_at), 2)


@dataclass(frozen=True, slots=True)
class Moment:
    t: float
    type: MomentType
    ids: dict[str, Any] = field(default_factory=dict)  # what the log entry named


def moments(entries: Iterable[Entry], window: Window) -> list[Moment]:
    """The pins, drops and polls of `entries` inside `window`, by offset
    (log order among equals). A drop is one moment, at its first entry
    (scheduled or live) inside the window; every pin is its own moment."""
    found: list[Moment] = []
    drops_seen: set[str] = set()
    for entry in entries:
        moment = _moment(entry, window)
        if moment is None:
            continue
        if moment.type is MomentType.DROP:
            if moment.ids["drop_id"] in drops_seen:
                continue
            drops_seen.add(moment.ids["drop_id"])
        found.append(moment)
    return sorted(found, key=lambda m: m.t)  # stable: log order among equals


def _moment(entry: Entry, window: Window) -> Moment | None:
    if entry.type not in _ENTRIES:
        return None
    try:
        t = window.offset(float(entry.ts))
        data = json.loads(entry.data)
    except ValueError:
        return None
    if t is None or not isinstance(data, dict):
        return None
    return _parse(entry.type, t, data)


def _parse(etype: str, t: float, data: dict[str, Any]) -> Moment | None:
    if etype == "slot.pinned" and data.get("product_id"):
        ids = {"product_id": str(data["product_id"]), "slot": data.get("slot")}
        return Moment(t, MomentType.PIN, {**ids, "note": str(data.get("note") or "")})
    if etype in _DROP_ENTRIES and data.get("drop_id"):
        return Moment(t, MomentType.DROP, {"drop_id": str(data["drop_id"])})
    if etype == "poll.created" and data.get("id"):
        ids = {"poll_id": str(data["id"]), "question": str(data.get("question") or "")}
        return Moment(t, MomentType.POLL, {**ids, "options": list(data.get("options") or [])})
    return None


def product_ids(found: Iterable[Moment]) -> set[str]:
    return {m.ids["product_id"] for m in found if "product_id" in m.ids}


def drop_ids(found: Iterable[Moment]) -> set[str]:
    return {m.ids["drop_id"] for m in found if "drop_id" in m.ids}


def moment_view(
    moment: Moment,
    products: Mapping[str, Mapping[str, Any]],
    drops: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any] | None:
    """The moment as the replay list shows it, or None when what it shows
    no longer exists. `products` by id (`id`, `title`, `price`, `currency`,
    `kind`); `drops` by id as the drop object says them now."""
    view: dict[str, Any] = {"t": moment.t, "type": str(moment.type), **moment.ids}
    if moment.type is MomentType.POLL:
        return view
    drop = drops.get(moment.ids.get("drop_id", ""))
    if moment.type is MomentType.DROP:
        if drop is None:
            return None
        view["product_id"] = str(drop["product_id"])
        view.update({k: drop[k] for k in _DROP_FACTS})
    product = products.get(view["product_id"])
    if product is None:
        return None
    view.update({k: product.get(k) for k in _PRODUCT_FACTS})
    if drop is not None:  # a drop sells at its own price
        view.update(price=drop["price"], currency=drop["currency"])
    return view
