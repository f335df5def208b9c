"""The mails droproom sends, as values: a sign-in link and a receipt, each
with a plain-text and an HTML body. Must not import any framework.

`to_email` turns a `Mail` into the standard library's `EmailMessage`
(multipart/alternative) that every transport sends as is.
"""

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

DEFAULT_FROM = "droproom <no-reply@localhost>"


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str

    def as_fields(self) -> dict[str, str]:
        return {"to": self.to, "subject": self.subject, "text": self.text, "html": self.html}

    @classmethod
    def from_fields(cls, h: dict[str, str]) -> "Mail":
        return cls(h["to"], h["subject"], h["text"], h["html"])


def _page(paragraphs: list[str], link: str, label: str) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    href = html.escape(link, quote=True)
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f'{body}<p><a href="{href}">{html.escape(label)}</a></p>'
        f'<p style="color:#666">{html.escape(link)}</p></body></html>'
    )


def signin_mail(to: str, link: str, minutes: int) -> Mail:
    lines = [
        "Someone (hopefully you) asked to sign in to droproom with this address.",
        f"The link works once, for {minutes} minutes. If it was not you, ignore this mail.",
    ]
    text = f"{lines[0]}\n\nSign in: {link}\n\n{lines[1]}\n"
    return Mail(to, "Your droproom sign-in link", text, _page(lines, link, "Sign in"))


def creator_invite_mail(to: str, name: str, link: str, minutes: int) -> Mail:
    lines = [
        f"Hello {name}, you are invited to create rooms and sell on droproom.",
        f"The link signs you in once, for {minutes} minutes; ask for a new one any time.",
    ]
    text = f"{lines[0]}\n\nSign in: {link}\n\n{lines[1]}\n"
    return Mail(to, "You are a droproom creator", text, _page(lines, link, "Sign in"))


def _amount(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency.upper()}"


def receipt_mail(to: str, order: dict[str, Any], library_url: str) -> Mail:
    """A paid order's receipt: what was bought and a link to the library
    (never to the files: download links are short-lived and bound to the buyer)."""
    currency = str(order.get("currency") or "")
    items = [
        f"{line.get('qty', 1)} x {line.get('title') or line.get('product_id')}: "
        f"{_amount(int(line.get('amount') or 0), currency)}"
        for line in order.get("lines") or []
    ]
    total = _amount(int(order.get("total") or 0), currency)
    lines = [f"Thank you: order {order.get('id')} is paid.", *items, f"Total: {total}"]
    tail = "What you bought stays in your library:"
    text = "\n".join(lines) + f"\n\n{tail} {library_url}\n"
    subject = f"Your droproom receipt ({order.get('id')})"
    return Mail(to, subject, text, _page([*lines, tail], library_url, "Open my library"))


def to_email(mail: Mail, sender: str, now: float) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    message["Message-ID"] = make_msgid(domain="droproom")
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


# episodes branch (issue 12): mails to a room's followers


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%A %d %B %Y, %H:%M UTC")


def _unfollow_hint(room_title: str, room_url: str) -> str:
    return (
        f"You get this because you follow {room_title}. To stop, open the room "
        f"({room_url}) and press Unfollow."
    )


def episode_reminder_mail(
    to: str, room_title: str, episode_title: str, starts_at: float, room_url: str
) -> Mail:
    lines = [
        f"{episode_title} starts soon in {room_title}: {_when(starts_at)}.",
        _unfollow_hint(room_title, room_url),
    ]
    text = f"{lines[0]}\n\nJoin: {room_url}\n\n{lines[1]}\n"
    subject = f"Starting soon: {episode_title} ({room_title})"
    return Mail(to, subject, text, _page(lines, room_url, "Join the room"))


def went_live_mail(to: str, room_title: str, room_url: str) -> Mail:
    lines = [f"{room_title} is live now.", _unfollow_hint(room_title, room_url)]
    text = f"{lines[0]}\n\nJoin: {room_url}\n\n{lines[1]}\n"
    return Mail(to, f"Live now: {room_title}", text, _page(lines, room_url, "Join the room"))
