"""Email addresses: one rule for accounts and orders.

Trim, lower-case the domain only; the local part is kept exactly (dots and
`+tags` name different mailboxes at many providers: merging them would hand
one person's account to another).
"""

import re

from kernel.errors import Invalid

MAX_EMAIL = 254
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def normalize_email(value: object, field: str = "email") -> str:
    """The address as we keep it, or `Invalid` naming the field."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string")
    text = value.strip()
    if not text or len(text) > MAX_EMAIL or text.count("@") != 1:
        raise Invalid(f"{field} is not an email address")
    local, domain = text.split("@")
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise Invalid(f"{field} is not an email address")
    if not _DOMAIN.match(domain):
        raise Invalid(f"{field} is not an email address")
    return f"{local}@{domain.lower()}"
