"""Access tokens: JWT (HS256) signed with the server secret, through PyJWT.

Claims: `sub` (identity), `name`, `room`, `role`, `exp`, `iat`, and on a
speaker token minted by `stage:invite` `sg`, the invitee's stage generation
(removal from the stage revokes it: rooms.stage.is_revoked); on a room token
from `/join` `gen`, the account's token generation (signing out revokes it:
server.buyers.check_not_signed_out); on an invite link's token `jti`, the
invite's id (revoking the invite revokes it: server.revoked_tokens).
"""

from dataclasses import dataclass
from typing import Any

import jwt

from kernel.errors import Unauthorized
from server.roles import Claims, Role

ALGORITHM = "HS256"
MAX_TTL_S = 30 * 24 * 3600


def mint(
    secret: str,
    *,
    room: str,
    identity: str,
    role: Role,
    name: str,
    ttl_s: float,
    now: float,
    stage_gen: int | None = None,
    gen: int | None = None,
    jti: str | None = None,
) -> str:
    claims: dict[str, object] = {
        "sub": identity,
        "name": name,
        "room": room,
        "role": role.label,
        "iat": int(now),
        "exp": int(now + ttl_s),
    }
    if stage_gen is not None:
        claims["sg"] = stage_gen
    if gen is not None:
        claims["gen"] = gen
    if jti is not None:
        claims["jti"] = jti
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: object, *, room: str | None = None) -> Claims:
    """The claims of a valid token, or `Unauthorized` saying why not."""
    if not isinstance(token, str) or not token:
        raise Unauthorized("a token is required")
    raw = _decode(secret, token, ["exp", "sub", "room", "role"])
    try:
        claims = Claims(
            identity=str(raw["sub"]),
            name=str(raw.get("name") or raw["sub"])[:80],
            room=str(raw["room"]),
            role=Role.parse(raw["role"]),
            exp=float(raw["exp"]),
            stage_gen=_stage_gen(raw.get("sg")),
            gen=_stage_gen(raw.get("gen")),
            jti=_jti(raw.get("jti")),
        )
    except ValueError as exc:
        raise Unauthorized("the token has an unknown role") from exc
    if room is not None and claims.room != room:
        raise Unauthorized("the token is for another room")
    return claims


def _decode(
    secret: str, token: str, required: list[str], expired: str = "the token has expired"
) -> dict[str, Any]:
    """The signed claims, with `required` present, or `Unauthorized`."""
    try:
        raw: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": required}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized(expired) from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("the token is not valid") from exc
    return raw


def _jti(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 64:
        raise Unauthorized("the token is not valid")
    return value


def _stage_gen(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unauthorized("the token is not valid")
    return value


# Account tokens (`kind: "account"`): who a signed-in person is, across rooms.
# They carry no room and no role, so `verify` (room tokens) refuses them, and
# `verify_account` refuses room tokens. `gen` is the account's token
# generation: signing out bumps it and every older token stops working
# (checked by server.buyers against the store).
KIND_ACCOUNT = "account"
ACCOUNT_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class AccountClaims:
    account_id: str
    name: str
    gen: int
    exp: float


def mint_account(
    secret: str, *, account_id: str, name: str, gen: int, now: float, ttl_s: float = ACCOUNT_TTL_S
) -> str:
    claims: dict[str, object] = {
        "sub": account_id,
        "name": name,
        "kind": KIND_ACCOUNT,
        "gen": gen,
        "iat": int(now),
        "exp": int(now + ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_account(secret: str, token: object) -> AccountClaims:
    """The claims of a valid account token, or `Unauthorized` saying why not."""
    if not isinstance(token, str) or not token or not token.isascii():
        raise Unauthorized("an account token is required")
    raw = _decode(secret, token, ["exp", "sub", "kind"])
    gen = raw.get("gen", 0)
    if raw.get("kind") != KIND_ACCOUNT or isinstance(gen, bool) or not isinstance(gen, int):
        raise Unauthorized("this is not an account token")
    sub = str(raw["sub"])
    return AccountClaims(sub, str(raw.get("name") or "")[:80], gen, float(raw["exp"]))


def peek_invite(token: str) -> tuple[str, str] | None:
    """(room, jti) a token claims, signature NOT checked: only to decide
    whether to ask if its invite was revoked (the route verifies it)."""
    try:
        raw = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return None
    room, jti = raw.get("room"), raw.get("jti")
    if isinstance(room, str) and isinstance(jti, str) and room and jti:
        return room, jti
    return None


def peek_subject(token: str) -> str | None:
    """The `sub` a token claims, signature NOT checked: only to decide
    whether a check is needed at all (then verify it)."""
    try:
        raw = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return None
    sub = raw.get("sub")
    return sub if isinstance(sub, str) else None


# HLS links (`kind: "hls"`): what the playlist URL carries instead of a room
# token, because that URL goes through CDNs and their logs. It names only
# the room (no identity, no role), so it opens the room's HLS and nothing
# else: `verify` and `verify_account` refuse it (no `sub`/`role`), and
# `verify_hls` refuses every other token.
KIND_HLS = "hls"


def mint_hls(
    secret: str, *, room: str, now: float, expires_at: float, jti: str | None = None
) -> str:
    """`jti`: the invite of the room token it was minted for, so revoking the
    invite stops the link too (server.revoked_tokens reads `room` + `jti`)."""
    claims: dict[str, object] = {
        "kind": KIND_HLS,
        "room": room,
        "iat": int(now),
        "exp": int(expires_at),
    }
    if jti is not None:
        claims["jti"] = jti
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_hls(secret: str, token: object, *, room: str) -> float:
    """When a valid HLS link token of `room` expires, or `Unauthorized`."""
    if not isinstance(token, str) or not token or not token.isascii():
        raise Unauthorized("a token is required")
    raw = _decode(secret, token, ["exp", "kind", "room"], expired="the link has expired")
    if raw.get("kind") != KIND_HLS:
        raise Unauthorized("this is not an HLS link")
    if raw.get("room") != room:
        raise Unauthorized("the token is for another room")
    return float(raw["exp"])


def kind_of(token: str) -> str | None:
    """The `kind` claim, unverified: which verifier a token is meant for."""
    try:
        raw = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return None
    kind = raw.get("kind")
    return kind if isinstance(kind, str) else None
