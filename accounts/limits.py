"""How often sign-in may be asked for and tried: fixed windows counted in
Redis, one script per count. Must not import any framework.

- per email: at most EMAIL_LIMIT sign-in mails per window. Over it the
  answer is still 202 and no mail goes out (a 429 would tell anyone whether
  someone else is signing in with that address).
- per client address: at most ADDRESS_LIMIT sign-in requests, and at most
  EXCHANGE_LIMIT code exchanges, per window; over them `rate_limited` (429:
  it speaks of the caller only, never of an account).
"""

from dataclasses import dataclass

from accounts import keys
from kernel.errors import RateLimited
from kernel.lua import Scripts


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    window_s: int


EMAIL_LIMIT = Limit(5, 15 * 60)
ADDRESS_LIMIT = Limit(30, 3600)
EXCHANGE_LIMIT = Limit(30, 15 * 60)


async def _allowed(scripts: Scripts, key: str, limit: Limit) -> bool:
    return bool(await scripts.run("kernel/rate", [key], [limit.count, limit.window_s * 1000]))


async def email_allowed(scripts: Scripts, email: str) -> bool:
    """Count one sign-in mail for `email`; False once the window is spent."""
    return await _allowed(scripts, keys.rate("email", email), EMAIL_LIMIT)


async def check_address(scripts: Scripts, address: str) -> None:
    if not await _allowed(scripts, keys.rate("addr", address), ADDRESS_LIMIT):
        raise RateLimited("too many sign-in requests from this address; try again later")


async def check_exchange(scripts: Scripts, address: str) -> None:
    if not await _allowed(scripts, keys.rate("exchange", address), EXCHANGE_LIMIT):
        raise RateLimited("too many sign-in attempts from this address; try again later")
