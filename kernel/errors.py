"""The protocol's error codes as one small exception hierarchy.

Domain code raises these; `server/` turns them into acks and HTTP answers in
one place. Must not import any framework.
"""

from enum import StrEnum


class Code(StrEnum):
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    SOLD_OUT = "sold_out"
    LIMIT_REACHED = "limit_reached"
    RATE_LIMITED = "rate_limited"
    PAYMENT_FAILED = "payment_failed"
    UNAVAILABLE = "unavailable"


class DomainError(Exception):
    """A refused command. Raised before any state changes."""

    code: Code = Code.INVALID

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}


class Unauthorized(DomainError):
    code = Code.UNAUTHORIZED


class Forbidden(DomainError):
    code = Code.FORBIDDEN


class Invalid(DomainError):
    code = Code.INVALID


class NotFound(DomainError):
    code = Code.NOT_FOUND


class Conflict(DomainError):
    code = Code.CONFLICT


class SoldOut(DomainError):
    code = Code.SOLD_OUT


class LimitReached(DomainError):
    code = Code.LIMIT_REACHED


class RateLimited(DomainError):
    code = Code.RATE_LIMITED


class PaymentFailed(DomainError):
    code = Code.PAYMENT_FAILED


class Unavailable(DomainError):
    code = Code.UNAVAILABLE


_BY_CODE: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        Unauthorized,
        Forbidden,
        Invalid,
        NotFound,
        Conflict,
        SoldOut,
        LimitReached,
        RateLimited,
        PaymentFailed,
        Unavailable,
    )
}


def from_code(code: str, message: str) -> DomainError:
    """The error for a code answered by a Lua script (unknown codes are `invalid`)."""
    return _BY_CODE.get(code, Invalid)(message)
