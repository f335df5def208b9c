"""The tone pipeline end to end on real files: sources in every accepted
format are made with PyAV, processed, and every file made is decoded back
and measured with FFmpeg's `ebur128` (codec, rate, channels, duration,
loudness, true peak, fades); the bundle's manifest is checked against the
zip's members; bad sources are refused by `probe`; the pool survives jobs
that crash, hang or eat memory."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from commerce.storage import FORMATS
from kernel.errors import Invalid
from media.tones import (
    MAX_KEEP_S,
    SourceInfo,
    ToneFailed,
    ToneMeta,
    TonePool,
    ToneResult,
    Window,
    check_window,
    probe,
    process,
)
from media.tones.bundle import DEVICES
from media.tones.source import decode_window
from tests.tone_helpers import (
    clicks,
    clipped,
    flac_claiming,
    hear,
    misbehaving_job,
    music,
    silent_film,
    sine,
    wav_header,
    write,
)

META = ToneMeta(title="Morning Chime", creator="Ann Example", tags=("calm", "bright"))
WINDOW = Window(start_s=0.5, length_s=5.0)
# format -> (decoder name, sample rate, mono?)
EXPECTED = {
    "opus": ("opus", 48_000, False),
    "m4r": ("aac", 44_100, False),
    "m4a": ("aac", 44_100, False),
    "mp3": ("mp3float", 44_100, False),
    "3gp": ("amrnb", 8_000, True),
}
# source name -> (encoder, muxer)
SOURCES = {
    "music.wav": ("pcm_s16le", None),
    "music.flac": ("flac", None),
    "music.mp3": ("libmp3lame", None),
    "music.ogg": ("libopus", "ogg"),
    "music.m4a": ("aac", "ipod"),
}


def tolerance(fmt: str) -> float:
    return 2.0 if fmt == "3gp" else 1.0


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    for name, (codec, fmt) in SOURCES.items():
        write(root / name, music(6.0), codec, fmt=fmt)
    write(root / "short.wav", sine(1.5, 880, 0.5), "pcm_s16le")
    write(root / "clipped.wav", clipped(6.0), "pcm_s16le")
    write(root / "quiet.flac", music(6.0) * 0.01, "flac")
    write(root / "long-mono.wav", music(16.0, channels=1), "pcm_s16le")
    write(root / "clicks.wav", clicks(6.0), "pcm_s16le")
    return root


@pytest.fixture(scope="module")
def made_from(
    sources: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], ToneResult]:
    """Each source processed once for the whole module."""
    done: dict[str, ToneResult] = {}

    def get(name: str) -> ToneResult:
        if name not in done:
            done[name] = process(sources / name, tmp_path_factory.mktemp("out"), WINDOW, META)
        return done[name]

    return get


@pytest.fixture(params=list(SOURCES))
def made(request: pytest.FixtureRequest, made_from: Callable[[str], ToneResult]) -> ToneResult:
    return made_from(request.param)


@pytest.fixture
def made_wav(made_from: Callable[[str], ToneResult]) -> ToneResult:
    return made_from("music.wav")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_loudness_and_peak(result: ToneResult, *, short: bool = False) -> None:
    for f in (*result.variants, result.preview):
        heard = hear(f.path)
        level = heard.momentary_max if short else heard.integrated
        fmt = "3gp" if f.format == "3gp" else "other"
        assert abs(level - -16.0) <= tolerance(fmt), (f.format, level)
        assert heard.true_peak <= -1.0, (f.format, heard.true_peak)


def test_every_variant_decodes_back_as_promised(made: ToneResult) -> None:
    assert [f.format for f in made.variants] == ["opus", "m4r", "m4a", "mp3", "3gp"]
    for f in made.variants:
        decoder, rate, mono = EXPECTED[f.format]
        heard = hear(f.path)
        assert (heard.codec, heard.sample_rate) == (decoder, rate), f.format
        assert heard.channels == (1 if mono else 2) == f.channels, f.format
        assert f.sample_rate == rate
        assert abs(heard.duration_s - WINDOW.length_s) < 0.05, (f.format, heard.duration_s)
        assert abs(heard.integrated - -16.0) <= tolerance(f.format), (f.format, heard.integrated)
        assert heard.true_peak <= -1.0, (f.format, heard.true_peak)
        data = f.path.read_bytes()
        assert (f.bytes, f.sha256) == (len(data), sha256(data))
        assert f.path.name == f"{f.sha256}.{f.format}"
    assert made.duration_s == WINDOW.length_s
    assert abs(made.loudness_lufs - -16.0) <= 1.0
    assert made.true_peak_dbtp <= -1.0


def test_variants_fade_in_and_fade_out(made_wav: ToneResult) -> None:
    for f in made_wav.variants:
        heard = hear(f.path)
        body = heard.rms(1.0, heard.duration_s - 1.0)
        assert heard.rms(0.0, 0.003) < 0.3 * body, f.format  # no click at the start
        end = heard.duration_s
        assert heard.rms(end - 0.05, end) < 0.3 * body, f.format  # no cut at the end


def test_the_wire_shape_of_a_variant(made_wav: ToneResult) -> None:
    m4r = made_wav.variants[1]
    assert m4r.wire() == {
        "format": "m4r",
        "codec": "aac",
        "container": "mp4",
        "bytes": m4r.bytes,
        "sha256": m4r.sha256,
        "sample_rate": 44_100,
        "channels": 2,
        "bitrate": m4r.bitrate,
    }
    assert 128_000 <= m4r.bitrate <= 160_000
    audio = made_wav.wire()
    assert audio["variants"] == [f.wire() for f in made_wav.variants]
    assert audio["bundle"] == {"bytes": made_wav.bundle.bytes, "sha256": made_wav.bundle.sha256}
    assert (audio["duration_s"], audio["loudness_lufs"]) == (5.0, made_wav.loudness_lufs)
    assert made_wav.variants[0].wire()["codec"] == "opus"
    assert made_wav.variants[4].wire()["bitrate"] == 12_200


def test_bundle_holds_every_variant_and_a_manifest_that_matches(made_wav: ToneResult) -> None:
    data = made_wav.bundle.path.read_bytes()
    assert (made_wav.bundle.bytes, made_wav.bundle.sha256) == (len(data), sha256(data))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {name: zf.read(name) for name in zf.namelist() if name != "manifest.json"}
    assert (manifest["title"], manifest["creator"], manifest["tags"]) == (
        "Morning Chime",
        "Ann Example",
        ["calm", "bright"],
    )
    assert manifest["loudness_lufs"] == made_wav.loudness_lufs
    assert manifest["true_peak_dbtp"] == made_wav.true_peak_dbtp
    assert manifest["duration_s"] == made_wav.duration_s
    assert [e["format"] for e in manifest["files"]] == ["opus", "m4r", "m4a", "mp3", "3gp"]
    assert sorted(members) == sorted(e["name"] for e in manifest["files"])
    for entry, f in zip(manifest["files"], made_wav.variants, strict=True):
        member = members[entry["name"]]
        assert entry["name"] == f"morning-chime.{f.format}"
        assert (entry["bytes"], entry["sha256"]) == (len(member), sha256(member))
        assert (entry["bytes"], entry["sha256"]) == (f.bytes, f.sha256)
        assert entry["devices"] == list(FORMATS[f.format][2])
        assert {k: entry[k] for k in f.wire()} == f.wire()


def test_the_devices_table_agrees_with_the_storage_formats() -> None:
    assert DEVICES == {
        fmt: devices for fmt, (_ext, _type, devices) in FORMATS.items() if fmt != "bundle"
    }


def test_a_short_sound_is_normalized_by_its_loudest_400_ms(sources: Path, tmp_path: Path) -> None:
    result = process(sources / "short.wav", tmp_path, Window(0.0, 30.0), META)
    assert result.duration_s == 1.5
    for f in result.variants:
        assert abs(hear(f.path).duration_s - 1.5) < 0.05, f.format
    assert_loudness_and_peak(result, short=True)


def test_a_blip_shorter_than_400_ms_is_normalized_over_one_block(tmp_path: Path) -> None:
    src = write(tmp_path / "blip.wav", sine(0.3, 1000, 0.5), "pcm_s16le")
    result = process(src, tmp_path / "out", Window(0.0, 30.0), META)
    assert result.duration_s == 0.3
    assert_loudness_and_peak(result, short=True)


def test_a_loud_clipped_source_comes_down_under_the_ceiling(sources: Path, tmp_path: Path) -> None:
    assert hear(sources / "clipped.wav").integrated > -8.0
    assert_loudness_and_peak(process(sources / "clipped.wav", tmp_path, WINDOW, META))


def test_a_quiet_source_comes_up_to_the_target(sources: Path, tmp_path: Path) -> None:
    assert hear(sources / "quiet.flac").integrated < -40.0
    assert_loudness_and_peak(process(sources / "quiet.flac", tmp_path, WINDOW, META))


def test_a_sound_too_sparse_to_reach_the_target_fails_with_a_reason(
    sources: Path, tmp_path: Path
) -> None:
    with pytest.raises(ToneFailed, match="quiet between sharp peaks"):
        process(sources / "clicks.wav", tmp_path, WINDOW, META)


def test_a_source_gone_before_processing_fails_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ToneFailed, match="could not be read"):
        process(tmp_path / "gone.wav", tmp_path / "out", WINDOW, META)


def test_the_preview_is_at_most_15_s_mono_and_light(sources: Path, tmp_path: Path) -> None:
    result = process(sources / "long-mono.wav", tmp_path, Window(0.0, 30.0), META)
    assert result.duration_s == 16.0
    heard = hear(result.preview.path)
    assert (heard.codec, heard.channels) == ("mp3float", 1)
    assert 14.9 <= heard.duration_s <= 15.0 + 0.05
    assert result.preview.bytes * 8 / heard.duration_s < 70_000  # ~64 kbit/s
    assert abs(heard.integrated - -16.0) <= 1.0 and heard.true_peak <= -1.0
    assert heard.rms(heard.duration_s - 0.05, heard.duration_s) < 0.3 * heard.rms(5.0, 10.0)
    assert result.preview.path.suffix == ".mp3"


def test_the_same_input_gives_the_same_files(sources: Path, tmp_path: Path) -> None:
    first = process(sources / "short.wav", tmp_path / "a", Window(0.0, 30.0), META)
    again = process(sources / "short.wav", tmp_path / "b", Window(0.0, 30.0), META)
    shas = [f.sha256 for f in (*first.variants, first.preview, first.bundle)]
    assert shas == [f.sha256 for f in (*again.variants, again.preview, again.bundle)]
    assert len(set(shas)) == len(shas)  # and no two files alike (.m4r is not .m4a)


# probe and check_window


def test_probe_describes_each_accepted_format(sources: Path) -> None:
    containers = {probe(sources / name).container for name in SOURCES}
    assert {"wav", "flac", "mp3", "ogg"} <= containers
    info = probe(sources / "music.flac")
    assert (info.sample_rate, info.channels, info.codec) == (44_100, 2, "flac")
    assert abs(info.duration_s - 6.0) < 0.05


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: _put(d / "noise.bin", os.urandom(64_000)), "not a sound we can read"),
        (lambda d: _put(d / "list.m3u8", b"#EXTM3U\n#EXTINF:1,\n/etc/passwd\n"), "not a sound"),
        (
            lambda d: _put(d / "mhz.wav", wav_header(1_000_000, 2, 16, 40_000) + bytes(40_000)),
            "1000000 Hz",
        ),
        (
            lambda d: _put(
                d / "long.wav",
                wav_header(8_000, 1, 8, 21 * 60 * 8_000) + b"\x80" * (21 * 60 * 8_000),
            ),
            "21 min",
        ),
        (lambda d: flac_claiming(d / "bomb.flac", 384_000, 600.0), "too much audio"),
        (lambda d: silent_film(d / "film.mp4"), "no audio in it"),
    ],
    ids=["random-bytes", "playlist", "1-MHz-wav", "21-minutes", "flac-bomb", "video-only"],
)
def test_probe_refuses_with_a_clear_message(
    make: Callable[[Path], Path], message: str, tmp_path: Path
) -> None:
    with pytest.raises(Invalid, match=message):
        probe(make(tmp_path))


@pytest.mark.parametrize("name", ["music.mp3", "music.flac", "music.m4a"])
def test_probe_refuses_a_truncated_file(name: str, sources: Path, tmp_path: Path) -> None:
    data = (sources / name).read_bytes()
    cut = _put(tmp_path / name, data[: len(data) // 2])
    with pytest.raises(Invalid, match=r"truncated|damaged|not a sound"):
        probe(cut)


@pytest.mark.parametrize("name", list(SOURCES))
def test_a_late_window_reached_by_a_seek_holds_the_same_sound(name: str, sources: Path) -> None:
    whole = decode_window(sources / name, Window(0.0, 6.0))
    late = decode_window(sources / name, Window(4.5, 1.0))
    assert late.shape == (2, 48_000)
    expected = whole[:, 216_000:264_000]  # 4.5 s to 5.5 s
    middle = slice(9_600, 38_400)  # away from where each decode starts and stops
    a, b = late[:, middle].ravel(), expected[:, middle].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.99


def test_check_window_clamps_to_30_s_and_to_the_end_of_the_sound() -> None:
    info = SourceInfo(
        duration_s=100.0, sample_rate=44_100, channels=2, codec="mp3", container="mp3"
    )
    assert check_window(info, Window(10.0, 45.0)) == Window(10.0, MAX_KEEP_S)
    assert check_window(info, Window(90.0, 30.0)) == Window(90.0, 10.0)
    assert check_window(info, Window()) == Window(0.0, 30.0)


@pytest.mark.parametrize(
    "window",
    [
        Window(100.0, 5.0),
        Window(99.95, 5.0),
        Window(250.0, 5.0),
        Window(-1.0, 5.0),
        Window(5.0, 0.0),
        Window(5.0, 0.05),
        Window(5.0, -3.0),
        Window(float("nan"), 5.0),
    ],
)
def test_check_window_refuses_a_window_outside_the_sound(window: Window) -> None:
    info = SourceInfo(
        duration_s=100.0, sample_rate=44_100, channels=2, codec="mp3", container="mp3"
    )
    with pytest.raises(Invalid):
        check_window(info, window)


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# the pool


async def test_the_pool_runs_a_job_off_the_loop_and_reports_progress(
    sources: Path, tmp_path: Path
) -> None:
    pool = TonePool(job_timeout_s=120)
    seen: list[float] = []
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            await asyncio.sleep(0.02)
            ticks += 1

    try:
        tick_task = asyncio.create_task(ticker())
        result = await pool.run(
            sources / "short.wav", tmp_path, Window(0.0, 30.0), META, seen.append
        )
        running = False
        await tick_task
        pid = pool.worker_pid
        assert pid is not None and pid != os.getpid()
        nice = os.getpriority(os.PRIO_PROCESS, pid)
        limits = await asyncio.to_thread(Path(f"/proc/{pid}/limits").read_text)
    finally:
        await pool.aclose()
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)  # below the server's loop
    address_space = next(line for line in limits.splitlines() if "address space" in line)
    assert address_space.split()[3:5] == [str(1024 * 1024 * 1024)] * 2
    assert [f.format for f in result.variants] == ["opus", "m4r", "m4a", "mp3", "3gp"]
    assert all(f.path.is_file() for f in (*result.variants, result.bundle, result.preview))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 5
    assert ticks >= 10  # the loop kept serving other tasks while the worker worked


async def test_a_crashed_worker_fails_only_its_job(sources: Path, tmp_path: Path) -> None:
    pool = TonePool(job_timeout_s=120, job=misbehaving_job)
    src, window = sources / "short.wav", Window(0.0, 30.0)
    try:
        outcomes = await asyncio.gather(
            pool.run(src, tmp_path, window, ToneMeta("exit", "x")),
            pool.run(src, tmp_path, window, ToneMeta("segfault", "x")),
            pool.run(src, tmp_path, window, META),
            return_exceptions=True,
        )
    finally:
        await pool.aclose()
    exited, crashed, fine = outcomes
    assert isinstance(exited, ToneFailed) and "exit code 3" in exited.reason
    assert isinstance(crashed, ToneFailed) and "SIGSEGV" in crashed.reason
    assert isinstance(fine, ToneResult) and fine.duration_s == 1.5


async def test_a_job_over_its_time_is_stopped_and_the_next_runs(
    sources: Path, tmp_path: Path
) -> None:
    pool = TonePool(job_timeout_s=4, job=misbehaving_job)
    src, window = sources / "short.wav", Window(0.0, 30.0)
    try:
        hung, fine = await asyncio.gather(
            pool.run(src, tmp_path, window, ToneMeta("hang", "x")),
            pool.run(src, tmp_path, window, META),
            return_exceptions=True,
        )
    finally:
        await pool.aclose()
    assert isinstance(hung, ToneFailed) and "longer than 4 s" in hung.reason
    assert isinstance(fine, ToneResult)


async def test_a_job_over_its_memory_fails_with_a_reason(sources: Path, tmp_path: Path) -> None:
    pool = TonePool(job_timeout_s=60, memory_mb=1024, job=misbehaving_job)
    src, window = sources / "short.wav", Window(0.0, 30.0)
    try:
        with pytest.raises(ToneFailed, match="more than the 1024 MB"):
            await pool.run(src, tmp_path, window, ToneMeta("hog", "x"))
        fine = await pool.run(src, tmp_path, window, META)  # the same worker lives on
    finally:
        await pool.aclose()
    assert fine.duration_s == 1.5


async def test_a_worker_dead_while_idle_is_replaced_before_the_next_job(
    sources: Path, tmp_path: Path
) -> None:
    pool = TonePool(job_timeout_s=120)
    src, window = sources / "short.wav", Window(0.0, 30.0)
    try:
        await pool.run(src, tmp_path, window, META)
        first = pool.worker_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        again = await pool.run(src, tmp_path, window, META)  # not failed: it never ran
    finally:
        await pool.aclose()
    assert again.duration_s == 1.5 and pool.worker_pid != first


async def test_cancelling_a_job_stops_its_worker(sources: Path, tmp_path: Path) -> None:
    pool = TonePool(job_timeout_s=120, job=misbehaving_job)
    src, window = sources / "short.wav", Window(0.0, 30.0)
    try:
        hung = asyncio.create_task(pool.run(src, tmp_path, window, ToneMeta("hang", "x")))
        while pool.worker_pid is None:
            await asyncio.sleep(0.05)
        pid = pool.worker_pid
        await asyncio.sleep(0.5)
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        fine = await pool.run(src, tmp_path, window, META)
    finally:
        await pool.aclose()
    assert fine.duration_s == 1.5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


async def test_closing_the_pool_fails_the_running_and_queued_jobs_at_once(
    sources: Path, tmp_path: Path
) -> None:
    pool = TonePool(job_timeout_s=3600, job=misbehaving_job)
    src, window = sources / "short.wav", Window(0.0, 30.0)
    hung = asyncio.create_task(pool.run(src, tmp_path, window, ToneMeta("hang", "x")))
    queued = asyncio.create_task(pool.run(src, tmp_path, window, META))
    while pool.worker_pid is None:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    await pool.aclose()
    for task in (hung, queued):
        with pytest.raises(ToneFailed, match="shut down before this sound was processed"):
            await task


async def test_a_bad_source_fails_in_the_pool_with_the_probe_message(tmp_path: Path) -> None:
    pool = TonePool(job_timeout_s=60)
    try:
        with pytest.raises(ToneFailed, match="not a sound we can read"):
            await pool.run(_put(tmp_path / "x.wav", os.urandom(5000)), tmp_path, WINDOW, META)
    finally:
        await pool.aclose()
