"""Who owns a room or a product, and who may change it.

A room's and a product's `owner` is the creator's account id, or
`ADMIN_OWNER` for what the platform admin made (and for everything wave 1
made, which carries no owner: it reads as the admin's). The admin may act on
everything; a creator only on what they own. Must not import any framework.
"""

from dataclasses import dataclass

from kernel.owners import ADMIN_OWNER


@dataclass(frozen=True, slots=True)
class Actor:
    """The platform admin (`account_id` None) or a signed-in creator."""

    account_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.account_id is None

    @property
    def owner_id(self) -> str:
        """What a room or product made by this actor records as its owner."""
        return self.account_id or ADMIN_OWNER

    def owns(self, owner: str) -> bool:
        return self.is_admin or owner == self.account_id


ADMIN = Actor(None)
