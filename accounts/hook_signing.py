"""Signing a webhook per the Standard Webhooks spec, with the `standardwebhooks`
library: `webhook-signature` is `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
keyed by the base64-decoded secret after `whsec_`; while a rotated secret is in
its grace period both signatures are sent, space-separated, and a receiver
holding either verifies. Must not import any framework.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signature(secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    when = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets)


def headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three headers of a delivery (plus its content type)."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, msg_id, timestamp, body),
    }
