"""Every migration step of the data, in order (`droproom migrate`, and at the
start of `serve` before anything else uses Redis). Steps live with their
domain; this list only orders them. Add a step with the next version number.
"""

from typing import Any

from commerce import migrations as commerce_migrations
from kernel import schema

STEPS: tuple[schema.Step, ...] = (
    schema.Step(
        1, "commerce: plain-product stock into room shares", commerce_migrations.room_shares
    ),
    schema.Step(2, "commerce: the rooms showing each product", commerce_migrations.products_shown),
    # branch numbers (issue 13): renumber at merge if another branch took 3
    schema.Step(
        3, "commerce: each room's order index and counts", commerce_migrations.orders_indexed
    ),
)

CURRENT = schema.latest(STEPS)


async def run(redis: Any, now: float) -> list[schema.Applied]:
    """Bring the data at `redis` (a client with bytes answers) to `CURRENT`."""
    return await schema.migrate(redis, STEPS, now)
