"""The owner a room or product records when the platform admin made it.

Rooms and products carry `owner`: a creator's account id, or ADMIN_OWNER.
Wave 1 data carries none and reads as the admin's. Shared by `rooms`,
`commerce` and `accounts` (which decides who may act: accounts.ownership).
"""

ADMIN_OWNER = "admin"


def owner_or_admin(value: str | None) -> str:
    """A stored owner, with wave 1's missing one read as the admin's."""
    return value or ADMIN_OWNER
