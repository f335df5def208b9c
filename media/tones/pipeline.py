"""The tone pipeline, one synchronous call: decode the window, fade, bring
it to -16 LUFS with true peak <= -1 dBTP (pass 1 measures, pass 2 applies a
linear gain and a limiter), encode every variant, decode each back, measure
it and correct it (lossy codecs move loudness and overshoot peaks), then
the preview and the bundle. Runs in the pool's worker process, never on
the event loop.

Must not import aiohttp, socketio or commerce.
"""

from __future__ import annotations

import hashlib
import logging
import os
import resource
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from kernel.errors import Invalid
from media.tones.bundle import manifest, write_bundle
from media.tones.codecs import (
    AMR,
    M4A,
    M4R,
    MP3,
    OPUS,
    PREVIEW,
    Decoded,
    Spec,
    decode_file,
    encode,
    remux,
)
from media.tones.loudness import (
    SILENCE_LUFS,
    Loudness,
    fade,
    gain_and_limit,
    measure,
    run_chain,
)
from media.tones.model import (
    CEILING_DBTP,
    PREVIEW_S,
    TARGET_LUFS,
    ToneFailed,
    ToneFile,
    ToneMeta,
    ToneResult,
    Window,
)
from media.tones.source import WORK_RATE, check_window, decode_window, probe

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]
AIM_LU = 0.5  # how close each file is brought to the target before it is kept
CONTRACT_LU = {"3gp": 2.0}  # what the product promises; 1 LU for the others
PEAK_MARGIN_DB = 0.3  # true peak kept this far under the ceiling
ATTEMPTS = 5
QUIETEST_LUFS = SILENCE_LUFS + 5  # quieter than this, the window is silence


def process(
    src: Path, out_dir: Path, window: Window, meta: ToneMeta, progress: Progress | None = None
) -> ToneResult:
    """Every product file of a source sound, in `out_dir` as `<sha256>.<ext>`;
    ToneFailed with a reason a person understands when it cannot be done."""
    try:
        return _process(src, out_dir, window, meta, progress or (lambda _p: None))
    except Invalid as exc:
        raise ToneFailed(exc.message) from exc
    except MemoryError as exc:  # PyAV's MemoryError is also an FFmpegError
        raise ToneFailed(memory_reason()) from exc
    except av.FFmpegError as exc:
        logger.warning("tone from %s failed in FFmpeg: %s", src.name, exc)
        raise ToneFailed("the sound could not be decoded or encoded (it may be damaged)") from exc
    except OSError as exc:
        logger.warning("tone from %s failed: %s", src.name, exc)
        raise ToneFailed("the sound's file could not be read or its files written") from exc
    finally:
        for leftover in out_dir.glob(".work-*"):
            leftover.unlink(missing_ok=True)


def _process(
    src: Path, out_dir: Path, window: Window, meta: ToneMeta, report: Progress
) -> ToneResult:
    kept = check_window(probe(src), window)
    report(0.05)
    master = normalize(fade(decode_window(src, kept)))
    report(0.25)
    out_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, ToneFile] = {}
    notes: list[str] = []
    for i, spec in enumerate((OPUS, M4R, MP3, AMR)):
        made[spec.format] = encode_corrected(master, spec, out_dir, meta, notes)
        report(0.25 + 0.15 * (i + 1))
    made["m4a"] = _remuxed(made["m4r"], M4A, out_dir, meta)
    variants = tuple(made[f] for f in ("opus", "m4r", "m4a", "mp3", "3gp"))
    preview = encode_corrected(preview_of(master), PREVIEW, out_dir, meta, notes)
    report(0.9)
    loudness = round(float(np.mean([f.loudness_lufs or 0.0 for f in variants])), 2)
    peak = round(max(f.true_peak_dbtp or 0.0 for f in variants), 2)
    duration = round(kept.length_s, 3)
    bundle = _bundle(out_dir, meta, variants, manifest(meta, duration, loudness, peak, variants))
    report(1.0)
    logger.info("tone made from %s: %s", src.name, "; ".join(notes))
    return ToneResult(duration, loudness, peak, variants, bundle, preview, tuple(notes))


def memory_reason() -> str:
    """Why a job ran out of memory, naming the cap the pool's worker set."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return "processing this sound needs more memory than the machine has free"
    return f"processing this sound needs more than the {soft // (1024 * 1024)} MB allowed"


def normalize(x: np.ndarray) -> np.ndarray:
    """Pass 1 measures; pass 2 applies the gain that reaches the target and a
    limiter under the ceiling, repeated while the limiter costs loudness."""
    first = measure(x)
    if first.level < QUIETEST_LUFS:
        raise ToneFailed("the part of the sound you kept is silent")
    gain, ceiling = TARGET_LUFS - first.level, CEILING_DBTP - 2 * PEAK_MARGIN_DB
    y, got = x, first
    for _ in range(ATTEMPTS):
        y = gain_and_limit(x, gain, ceiling)
        got = measure(y)
        if abs(got.level - TARGET_LUFS) <= AIM_LU / 2 and got.true_peak <= ceiling + PEAK_MARGIN_DB:
            break
        gain, ceiling = _corrected(gain, ceiling, got, ceiling + PEAK_MARGIN_DB)
    if abs(got.level - TARGET_LUFS) > AIM_LU:
        raise ToneFailed(
            "the part you kept is mostly quiet between sharp peaks: it cannot reach -16 LUFS "
            "without distortion; keep a part with more continuous sound"
        )
    return y


def _corrected(gain: float, ceiling: float, got: Loudness, peak_max: float) -> tuple[float, float]:
    over = got.true_peak - peak_max
    return gain + TARGET_LUFS - got.level, ceiling - max(0.0, over) - (0.1 if over > 0 else 0.0)


def encode_corrected(
    master: np.ndarray, spec: Spec, out_dir: Path, meta: ToneMeta, notes: list[str] | None = None
) -> ToneFile:
    """Encode, decode back, measure; re-encode with a corrected gain and a
    lower limiter ceiling until loudness and true peak are where they belong."""
    path = out_dir / f".work-{spec.format}.{spec.ext}"
    peak_max = CEILING_DBTP - PEAK_MARGIN_DB / 3
    gain, ceiling = 0.0, CEILING_DBTP - PEAK_MARGIN_DB
    best: tuple[float, Loudness, Decoded] | None = None
    base = codec_input(master, spec)
    if base is not master:  # a mono mix or the low band alone is quieter: start from its level
        gain = TARGET_LUFS - measure(base).level
    gain += spec.loss_db
    for attempt in range(ATTEMPTS):
        y = base if attempt == 0 and gain == 0.0 else gain_and_limit(base, gain, ceiling)
        encode(y, spec, path, meta)
        decoded = decode_file(path)
        got = measure(decoded.samples)
        miss = abs(got.level - TARGET_LUFS)
        if got.true_peak <= CEILING_DBTP and (best is None or miss < best[0]):
            best = (miss, got, decoded)
            os.replace(path, path.with_suffix(".best"))
        if miss <= AIM_LU and got.true_peak <= peak_max:
            break
        gain, ceiling = _corrected(gain, ceiling, got, peak_max)
    if best is None or best[0] > CONTRACT_LU.get(spec.format, 1.0):
        raise ToneFailed(
            f"the {spec.format} file could not be brought to -16 LUFS without distortion"
        )
    path.unlink(missing_ok=True)
    if notes is not None:
        notes.append(f"{spec.format}: {attempt + 1} encode(s), {best[1].level:.2f} LUFS")
    return _kept(path.with_suffix(".best"), spec, best[1], best[2], out_dir)


def codec_input(master: np.ndarray, spec: Spec) -> np.ndarray:
    """The samples as the codec will keep them: one channel for a mono
    format, only the low band for a low-rate one (AMR-NB keeps up to 4 kHz).
    Gain and limiter then work on what the listener will hear."""
    x = master
    if spec.mono and x.shape[0] > 1:
        x = x.mean(axis=0, keepdims=True, dtype=np.float32)
    if spec.rate < WORK_RATE // 2:
        x = run_chain(x, [("aresample", str(spec.rate)), ("aresample", str(WORK_RATE))])
    return x


def _kept(work: Path, spec: Spec, got: Loudness, decoded: Decoded, out_dir: Path) -> ToneFile:
    sha = _sha256(work)
    final = out_dir / f"{sha}.{spec.ext}"
    os.replace(work, final)
    return ToneFile(
        format=spec.format,
        codec=spec.wire_codec,
        container=spec.wire_container,
        path=final,
        bytes=final.stat().st_size,
        sha256=sha,
        sample_rate=spec.rate,
        channels=decoded.channels,
        bitrate=spec.bitrate,
        duration_s=round(decoded.duration_s, 3),
        loudness_lufs=round(got.level, 2),
        true_peak_dbtp=round(got.true_peak, 2),
    )


def _remuxed(m4r: ToneFile, spec: Spec, out_dir: Path, meta: ToneMeta) -> ToneFile:
    work = out_dir / f".work-{spec.format}.{spec.ext}"
    remux(m4r.path, work, spec, meta)
    sha = _sha256(work)
    final = out_dir / f"{sha}.{spec.ext}"
    os.replace(work, final)
    return ToneFile(
        **{
            **m4r.__dict__,
            "format": spec.format,
            "path": final,
            "bytes": final.stat().st_size,
            "sha256": sha,
        }
    )


def preview_of(master: np.ndarray) -> np.ndarray:
    """The first PREVIEW_S seconds of the kept window, faded out if cut."""
    n = round(PREVIEW_S * WORK_RATE)
    if master.shape[1] <= n:
        return master
    return fade(master[:, :n])


def _bundle(
    out_dir: Path, meta: ToneMeta, files: tuple[ToneFile, ...], info: dict[str, object]
) -> ToneFile:
    work = out_dir / ".work-bundle.zip"
    write_bundle(work, meta, files, info)
    sha = _sha256(work)
    final = out_dir / f"{sha}.zip"
    os.replace(work, final)
    return ToneFile(
        format="bundle",
        codec="zip",
        container="zip",
        path=final,
        bytes=final.stat().st_size,
        sha256=sha,
        sample_rate=0,
        channels=0,
        bitrate=0,
        duration_s=files[0].duration_s,
        loudness_lufs=None,
        true_peak_dbtp=None,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
