"""The command line: `droproom token`, `droproom demo`, kept secrets."""

import asyncio
import os
import stat
import sys
from pathlib import Path

import jwt

from server.config import Settings


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DROPROOM_", "REDIS_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *args,
        env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


def test_secrets_are_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = Settings.from_env(data_dir=tmp_path)
    again = Settings.from_env(data_dir=tmp_path)
    assert first.secret == again.secret and first.admin_key == again.admin_key
    assert len(first.secret) >= 32 and first.secret != first.admin_key
    for name in ("secret", "admin_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


async def test_token_command_signs_with_the_data_dirs_secret(tmp_path: Path) -> None:
    code, out = await run_cli(
        "token",
        "--room",
        "demo",
        "--identity",
        "ann",
        "--role",
        "host",
        "--name",
        "Ann",
        "--ttl",
        "60",
        "--data-dir",
        str(tmp_path),
    )
    assert code == 0
    secret = (tmp_path / "secret").read_text().strip()
    claims = jwt.decode(out.strip(), secret, algorithms=["HS256"])
    assert (claims["sub"], claims["room"], claims["role"], claims["name"]) == (
        "ann",
        "demo",
        "host",
        "Ann",
    )
    assert claims["exp"] - claims["iat"] == 60


async def test_the_environment_secret_wins(tmp_path: Path) -> None:
    code, out = await run_cli(
        "token",
        "--room",
        "r",
        "--identity",
        "a",
        "--role",
        "listener",
        "--data-dir",
        str(tmp_path),
        env={"DROPROOM_SECRET": "from-the-environment-0123456789abcdef"},
    )
    assert code == 0
    jwt.decode(out.strip(), "from-the-environment-0123456789abcdef", algorithms=["HS256"])


async def test_demo_creates_the_room_once_and_prints_three_links(tmp_path: Path) -> None:
    code, out = await run_cli("demo", "--data-dir", str(tmp_path), "--port", "18765")
    assert code == 0, out
    links = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
        for line in out.splitlines()
        if line.startswith("  ")
    }
    assert set(links) == {"host", "moderator", "listener"}
    secret = (tmp_path / "secret").read_text().strip()
    roles = {}
    for who, link in links.items():
        assert link.startswith("http://127.0.0.1:18765/")
        claims = jwt.decode(link.split("#token=")[1], secret, algorithms=["HS256"])
        roles[who] = claims["role"]
        assert claims["room"] == "demo"
    assert roles == {"host": "host", "moderator": "moderator", "listener": "listener"}
    code, again = await run_cli("demo", "--data-dir", str(tmp_path), "--port", "18765")
    assert code == 0 and "listener:" in again
