"""The embedded mail transport: each mail becomes an `.eml` file under
`<data dir>/mail/` (written off the event loop), and `latest` reads them
back for `droproom mail`. Offline runs and `make run` need no SMTP server.
"""

import asyncio
import email
import email.policy
import os
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import cast

from accounts.mail import Mail, to_email
from accounts.outbox import DeliveryFailed

SIGNIN_LINK = re.compile(r"\S+/signin#code=\S+")


@dataclass(frozen=True, slots=True)
class Saved:
    date: str
    to: str
    subject: str
    link: str | None
    path: Path


class EmlTransport:
    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, mail: Mail, now: float) -> None:
        data = to_email(mail, self.sender, now).as_bytes()
        name = f"{int(now * 1000):015d}-{secrets.token_hex(4)}.eml"
        try:
            await asyncio.to_thread(_write_private, self.directory, name, data)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write {self.directory / name}: {exc}") from exc


def _write_private(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read(path: Path) -> Saved:
    # policy.default builds EmailMessage objects
    message = cast(
        EmailMessage, email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    )
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    found = SIGNIN_LINK.search(text)
    return Saved(
        str(message["Date"] or ""),
        str(message["To"] or ""),
        str(message["Subject"] or ""),
        found.group(0) if found else None,
        path,
    )


def latest(directory: Path, limit: int) -> list[Saved]:
    """The newest `limit` mails, newest first (file names start with the time)."""
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("*.eml"), reverse=True)[:limit]
    return [_read(p) for p in paths]
