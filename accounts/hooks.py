"""Outbound webhooks: a creator's endpoints and the rules about them.

A creator (or the platform admin) registers endpoints on their own systems;
the events of the rooms they own (and of those rooms' orders and drops) are
delivered there, signed per the Standard Webhooks spec (accounts/hook_signing)
and retried on the schedule below. What may be registered is decided here:
the event types, the target URL (http or https, no credentials, bounded, not
a literal private address unless allowed: accounts/hook_guard), the number of
endpoints. Secrets are 32 random bytes, `whsec_<base64>`; a rotation keeps the
previous secret signing for `ROTATION_GRACE_S`. Pure: must not import any
framework.
"""

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from accounts.hook_guard import literal, refusal
from kernel.errors import Invalid

ORDER_PAID: Final = "order.paid"
ORDER_REFUNDED: Final = "order.refunded"
DROP_LIVE: Final = "drop.live"
DROP_SOLD_OUT: Final = "drop.sold_out"
ROOM_LIVE: Final = "room.live"
ROOM_ENDED: Final = "room.ended"
TYPES: Final = (ORDER_PAID, ORDER_REFUNDED, DROP_LIVE, DROP_SOLD_OUT, ROOM_LIVE, ROOM_ENDED)

SECRET_PREFIX: Final = "whsec_"
SECRET_BYTES: Final = 32
MAX_URL: Final = 2048
MAX_ENDPOINTS: Final = 10  # per owner
ROTATION_GRACE_S: Final = 24 * 3600
# Seconds before each retry (the first try is at once): about 22 h in all,
# then the delivery is marked failed. Each wait is stretched by up to JITTER.
RETRY_DELAYS_S: Final = (5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
JITTER: Final = 0.2
TIMEOUT_S: Final = 5.0  # a whole delivery: resolving, connecting, the answer


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_id() -> str:
    return "wh_" + secrets.token_hex(8)


def check_events(value: Any) -> tuple[str, ...]:
    """The event types asked for, each once, in the protocol's order."""
    if not isinstance(value, list) or not value:
        raise Invalid(f"events must be a non-empty list of: {', '.join(TYPES)}")
    unknown = [e for e in value if e not in TYPES]
    if unknown:
        raise Invalid(f"unknown event {str(unknown[0])[:40]!r}; known: {', '.join(TYPES)}")
    return tuple(t for t in TYPES if t in value)


def _host_refusal(host: str, allow_private: bool) -> str | None:
    ip = literal(host)
    if ip is None or allow_private:
        return None
    return refusal(ip)


def check_url(value: Any, allow_private: bool = False) -> str:
    """A target URL we may register: http(s), a host, no user or password,
    at most MAX_URL characters, printable ASCII, not a literal address on
    loopback or a private network (names are checked at every delivery)."""
    if not isinstance(value, str) or not value:
        raise Invalid("url must be an http or https URL")
    if len(value) > MAX_URL or not value.isascii() or not value.isprintable() or " " in value:
        raise Invalid(f"url must be printable ASCII without spaces, at most {MAX_URL} characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"url is not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Invalid("url must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url must not carry a user name or password (the signature authenticates)")
    if port == 0:
        raise Invalid("url has no usable port")
    why = _host_refusal(parts.hostname, allow_private)
    if why is not None:
        raise Invalid(f"webhook targets on loopback or private addresses are refused ({why})")
    return value


def retry_at(attempts: int, now: float, jitter: float) -> float | None:
    """When to try again after `attempts` failed tries (None: give up).
    `jitter` in [0, 1) spreads the retries of many deliveries apart."""
    if attempts < 1 or attempts > len(RETRY_DELAYS_S):
        return None
    return now + RETRY_DELAYS_S[attempts - 1] * (1 + JITTER * jitter)


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    owner: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: float
    previous_secret: str | None = None
    previous_until: float = 0.0

    def wants(self, event_type: str) -> bool:
        return event_type in self.events

    def signing_secrets(self, now: float) -> tuple[str, ...]:
        """The current secret, and the previous one during its grace."""
        if self.previous_secret and now < self.previous_until:
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def as_dict(self) -> dict[str, Any]:
        """As the owner lists it: never the secret."""
        d: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "created_at": self.created_at,
        }
        if self.previous_until:
            d["previous_secret_until"] = self.previous_until
        return d

    def as_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "owner": self.owner,
            "url": self.url,
            "events": ",".join(self.events),
            "secret": self.secret,
            "created_at": repr(self.created_at),
        }

    @classmethod
    def from_fields(cls, h: dict[str, str]) -> "Endpoint":
        return cls(
            id=h["id"],
            owner=h["owner"],
            url=h["url"],
            events=tuple(e for e in h.get("events", "").split(",") if e),
            secret=h["secret"],
            created_at=float(h.get("created_at") or 0),
            previous_secret=h.get("previous_secret") or None,
            previous_until=float(h.get("previous_until") or 0),
        )


def iso8601(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_body(event_type: str, now: float, data: dict[str, Any]) -> str:
    """The body every endpoint gets: `{"type", "timestamp", "data"}`."""
    body = {"type": event_type, "timestamp": iso8601(now), "data": data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)
