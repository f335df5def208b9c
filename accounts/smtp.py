"""The SMTP transport: the only module that speaks to aiosmtplib.

`DROPROOM_SMTP_URL=smtp://[user:pass@]host:port[?starttls=1]` (`smtps://`
for TLS from the first byte). Every failure of the SDK or the network is
turned into `DeliveryFailed`, which the outbox retries with backoff.
"""

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from accounts.mail import Mail, to_email
from accounts.outbox import DeliveryFailed

TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    tls: bool

    @classmethod
    def parse(cls, url: str) -> "SmtpTarget":
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("DROPROOM_SMTP_URL must look like smtp://[user:pass@]host:port")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["0"])[0] in ("1", "true", "yes")
        tls = parts.scheme == "smtps"
        port = parts.port or (465 if tls else 25)
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, user, password, starttls, tls)


class SmtpTransport:
    def __init__(self, url: str, sender: str) -> None:
        self.target = SmtpTarget.parse(url)
        self.sender = sender

    async def send(self, mail: Mail, now: float) -> None:
        t = self.target
        try:
            await aiosmtplib.send(
                to_email(mail, self.sender, now),
                hostname=t.host,
                port=t.port,
                username=t.username,
                password=t.password,
                start_tls=t.starttls,
                use_tls=t.tls,
                timeout=TIMEOUT_S,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"SMTP {t.host}:{t.port}: {exc}") from exc
