"""The opt-in departure counter of the RTP wires (issue 15's audio bench):
how long after leaving the mixer each packet left on a listener's wire,
read by the bench at the server instead of timed by its own receivers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from media.config import MediaConfig
from media.engine import MediaEngine
from media.wire import Departures, RtpWire, count_departures, percentile_ms
from tests.media_helpers import AudioListener, wait_connected

ROOM = "r1"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[MediaEngine]:
    eng = MediaEngine(MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",), record=False))
    yield eng
    await eng.aclose()


@pytest.fixture(autouse=True)
def counting_off() -> Iterator[None]:
    yield
    count_departures(None)


def test_departures_are_a_histogram_in_ms() -> None:
    now = [100.0]
    departures = Departures(clock=lambda: now[0], limit_ms=50)
    for sent_at in (99.999, 99.990, 99.990, 99.970, 90.0, 100.5):
        departures.note(sent_at)
    counts = departures.counts
    assert counts[1] == 1 and counts[10] == 2 and counts[30] == 1
    assert counts[50] == 1  # 10 s late: the last bucket
    assert counts[0] == 1  # stamped "after" now (another clock's jitter): 0 ms
    assert departures.total == 6
    assert percentile_ms(counts, 0.5) == 10.0
    assert percentile_ms(counts, 0.95) == 50.0
    assert departures.take() == counts and departures.total == 0
    assert percentile_ms(departures.counts, 0.5) != percentile_ms(departures.counts, 0.5)  # nan


async def test_wires_count_departures_only_while_switched_on(engine: MediaEngine) -> None:
    departures = Departures()
    assert count_departures(departures) is None

    async def exchange(sdp: str) -> str:
        return (await engine.listen(ROOM, "bob", sdp))[1]

    lis = await AudioListener.start(exchange, decode=False)
    await wait_connected(lis.pc)
    await asyncio.sleep(0.5)
    ((_, outlet),) = engine.rooms[ROOM].listeners.values()
    wire = outlet.wire
    assert isinstance(wire, RtpWire)
    counted, sent = departures.total, wire.packets
    assert counted > 5 and abs(counted - sent) <= 1  # every packet the wire wrote
    assert departures.counts[-1] == 0  # the mixer's stamp and the wire share a clock
    assert count_departures(None) is departures
    await asyncio.sleep(0.3)
    assert wire.packets > sent + 5
    assert departures.total <= counted + 1  # off: nothing more noted
    await lis.close()
