"""FFmpeg's own WHIP muxer (PyAV's `whip` output) publishes into a room with
a P-256 certificate; it never answers consent checks, so this proves ingest
does not depend on them. The listener hears the tone throughout, and the
recording holds it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from media.certificate import write_p256_pair
from server.audio.routes import MEDIA
from tests.harness import Harness
from tests.media_helpers import AudioListener, band_energy, wait_connected
from tests.test_media_http import Signal

ROOM = "ffroom"
SECONDS = float(os.environ.get("DROPROOM_FFMPEG_TEST_S", "65"))

pytestmark = pytest.mark.slow


async def test_ffmpeg_whip_publish_holds_and_is_heard(server: Harness, tmp_path: Path) -> None:
    await server.create_room(id=ROOM, title="ffmpeg")
    cert = write_p256_pair(tmp_path / "cert")
    token = server.token(ROOM, "obs", "host")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.media_helpers",
        "whip",
        f"{server.url}/whip/{ROOM}",
        token,
        str(cert.cert_file),
        str(cert.key_file),
        "440",
        str(SECONDS),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(Path(__file__).parent.parent),
    )
    try:
        engine = server.app[MEDIA]
        async with asyncio.timeout(15):
            while not engine.publishers(ROOM):
                await asyncio.sleep(0.1)
        lis = await AudioListener.start(Signal(server, "whep", server.token(ROOM, "lenny"), ROOM))
        await wait_connected(lis.pc)
        loop = asyncio.get_running_loop()
        t_start = loop.time() + 2.0
        windows = int((SECONDS - 6) // 5)
        for i in range(windows):  # every 5 s window: the tone, at full rate, no gap
            await asyncio.sleep(t_start + (i + 1) * 5 - loop.time())
            t0, t1 = t_start + i * 5, t_start + (i + 1) * 5
            audio = np.concatenate([p for t, p in lis.frames if t0 <= t < t1])
            energy, rate, gap = band_energy(audio, 440), lis.rate(t0, t1), lis.max_gap(t0, t1)
            # a real-time child process on a shared 2-core box: allow 200 ms of jitter
            assert energy > 0.8 and rate > 45 and gap < 0.2, (i, energy, rate, gap)
        assert engine.publishers(ROOM) == ["obs"]  # still up after the consent window
        out, _ = await asyncio.wait_for(child.communicate(), SECONDS)
        assert child.returncode == 0 and int(out) > (SECONDS - 1) * 50
        await lis.close()
    finally:
        if child.returncode is None:
            child.terminate()
            await child.wait()
    async with asyncio.timeout(15):  # FFmpeg's DELETE or RTP inactivity ends it
        while engine.publishers(ROOM):
            await asyncio.sleep(0.2)
    (replay,) = engine.replays(ROOM)
    # decoding a minute of audio takes seconds on a busy box: not on the loop
    pcm = await asyncio.to_thread(decode_mono, engine.replay_path(ROOM, replay.name))
    assert pcm.size > 48000 * (SECONDS - 10)
    assert band_energy(pcm[48000 * 3 : 48000 * 60].astype(np.float32), 440) > 0.8


def decode_mono(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
