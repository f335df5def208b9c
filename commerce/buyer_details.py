"""What a buyer tells the shop at checkout: an email for receipts, a
shipping address for physical items, and whether to save the card.

Owns their validation (`parse_details`) and their wire shapes. Email follows
kernel.emails (one rule for accounts and orders). A shipping address is one
line per field: no control characters (newlines included), bounded lengths,
an assigned ISO 3166-1 alpha-2 country (upper-cased). Pure: no Redis, no
clock. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from commerce.countries import is_country
from kernel.emails import normalize_email
from kernel.errors import Invalid
from kernel.validate import is_blank

SHIPPING_REQUIRED = (
    "shipping is required: the order holds a physical item "
    "({name, line1, line2?, city, postal_code, country})"
)

# field -> (required, max length)
SHIPPING_FIELDS: dict[str, tuple[bool, int]] = {
    "name": (True, 100),
    "line1": (True, 200),
    "line2": (False, 200),
    "city": (True, 100),
    "postal_code": (True, 20),
    "country": (True, 2),
}


@dataclass(frozen=True, slots=True)
class Shipping:
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str  # ISO 3166-1 alpha-2, upper case

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "line1": self.line1,
            "line2": self.line2,
            "city": self.city,
            "postal_code": self.postal_code,
            "country": self.country,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False)

    def for_staff_feed(self) -> dict[str, str]:
        """What the live order feed may show: the name and the country only."""
        return {"name": self.name, "country": self.country}


def shipping_from_json(raw: str) -> Shipping | None:
    if not raw:
        return None
    d = json.loads(raw)
    return Shipping(
        d["name"], d["line1"], d.get("line2"), d["city"], d["postal_code"], d["country"]
    )


@dataclass(frozen=True, slots=True)
class BuyerDetails:
    """`checkout:start`'s (and `buy:now`'s) details, validated."""

    email: str | None = None
    shipping: Shipping | None = None
    save_card: bool = False


NONE = BuyerDetails()


def parse_details(p: Mapping[str, Any]) -> BuyerDetails:
    email = None if p.get("email") is None else normalize_email(p["email"])
    shipping = None if p.get("shipping") is None else parse_shipping(p["shipping"])
    save_card = p.get("save_card")
    if save_card is not None and not isinstance(save_card, bool):
        raise Invalid("save_card must be true or false")
    return BuyerDetails(email, shipping, bool(save_card))


def parse_shipping(value: object) -> Shipping:
    if not isinstance(value, Mapping):
        raise Invalid(
            "shipping must be an object {name, line1, line2?, city, postal_code, country}"
        )
    unknown = sorted(set(value) - set(SHIPPING_FIELDS))
    if unknown:
        raise Invalid(f"shipping has an unknown field: {unknown[0]}")
    fields = {name: _line(value, name, *rule) for name, rule in SHIPPING_FIELDS.items()}
    country = (fields["country"] or "").upper()
    if not is_country(country):
        raise Invalid("shipping.country must be an ISO 3166-1 alpha-2 country code (e.g. FR)")
    return Shipping(
        name=fields["name"] or "",
        line1=fields["line1"] or "",
        line2=fields["line2"],
        city=fields["city"] or "",
        postal_code=fields["postal_code"] or "",
        country=country,
    )


def _line(p: Mapping[str, Any], key: str, required: bool, max_len: int) -> str | None:
    value = p.get(key)
    if value is None or (not required and value == ""):
        if required:
            raise Invalid(f"shipping.{key} is required")
        return None
    if not isinstance(value, str):
        raise Invalid(f"shipping.{key} must be a string")
    if not value.isascii() and not _is_utf8(value):
        raise Invalid(f"shipping.{key} is not valid Unicode text")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise Invalid(f"shipping.{key} has control characters (one line per field)")
    text = unicodedata.normalize("NFC", value).strip()
    if not text or is_blank(text):
        if required:
            raise Invalid(f"shipping.{key} must have visible characters")
        return None
    if len(text) > max_len:
        raise Invalid(f"shipping.{key} must be at most {max_len} characters")
    return text


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True
