"""Which identities only sign-in and `/guest` may hand out: accounts
(`acct_<random>`) and guests (`guest-<random>`). Tokens minted by an admin or
a creator may not name them, so a room token carrying one of these
identities came from `/join` or `/guest`. Must not import any framework.
"""

import secrets

from kernel.errors import Invalid

ACCOUNT_PREFIX = "acct_"
GUEST_PREFIX = "guest-"
RESERVED_PREFIXES = (ACCOUNT_PREFIX, GUEST_PREFIX)


def new_account_id() -> str:
    return ACCOUNT_PREFIX + secrets.token_hex(8)


def new_guest_id() -> str:
    return GUEST_PREFIX + secrets.token_hex(5)


def is_account(identity: str) -> bool:
    return identity.startswith(ACCOUNT_PREFIX)


def is_signed_in_kind(identity: str) -> bool:
    """An account's or a guest's identity (never one an admin chose)."""
    return identity.startswith(RESERVED_PREFIXES)


def check_mintable(identity: str) -> None:
    """`Invalid` for an identity reserved to sign-in and guests."""
    if is_signed_in_kind(identity):
        raise Invalid(
            f"identities starting {ACCOUNT_PREFIX!r} or {GUEST_PREFIX!r} are handed out only "
            "by sign-in (/join) and /guest; choose another identity"
        )
