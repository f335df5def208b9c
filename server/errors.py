"""One translator from our coded errors to HTTP answers and Socket.IO acks.

Redis unreachable is `unavailable` (503), reported to the app's `OUTAGE`
(one log line per outage) instead of a traceback per request.
"""

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kernel.errors import Code, DomainError, Invalid
from server.outage import STORE_DOWN, StoreOutage

logger = logging.getLogger(__name__)

OUTAGE: web.AppKey[StoreOutage] = web.AppKey("outage", StoreOutage)
STORE_DOWN_MESSAGE = "the server cannot reach its store; retry shortly"

HTTP_STATUS: dict[Code, int] = {
    Code.INVALID: 400,
    Code.UNAUTHORIZED: 401,
    Code.PAYMENT_FAILED: 402,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.CONFLICT: 409,
    Code.SOLD_OUT: 409,
    Code.LIMIT_REACHED: 409,
    Code.RATE_LIMITED: 429,
    Code.UNAVAILABLE: 503,
}

_CODE_OF_STATUS = {
    400: Code.INVALID,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.INVALID,
    409: Code.CONFLICT,
    413: Code.INVALID,
    415: Code.INVALID,
    422: Code.INVALID,
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


def nack(error: DomainError) -> dict[str, Any]:
    return {"ok": False, "error": error.as_dict()}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        return error_response(HTTP_STATUS[exc.code], exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        code = _CODE_OF_STATUS.get(exc.status, Code.INVALID)
        return error_response(exc.status, code, exc.reason)
    except STORE_DOWN as exc:
        request.app[OUTAGE].report(exc, f"{request.method} {request.path}")
        response = error_response(503, Code.UNAVAILABLE, STORE_DOWN_MESSAGE)
        response.headers["Retry-After"] = "1"
        return response
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "the server failed; nothing was changed")


async def read_json(request: web.Request, max_bytes: int = 64 * 1024) -> dict[str, Any]:
    """The request's JSON object body, or `invalid`."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise Invalid("the body is too large")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Invalid("the body is too large")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than the parser's stack.
        raise Invalid("the body must be JSON (not nested this deep)") from exc
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body
