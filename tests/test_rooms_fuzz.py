"""Property tests: malformed input at every Socket.IO event the dispatcher
registers, at the Socket.IO handshake and at every HTTP route of the rooms
foundation.

Whatever arrives, the server keeps answering with a well-formed protocol
answer, no handler raises (no `unavailable`, nothing logged at ERROR), HTTP
never answers 5xx, and a refused command leaves the room's Redis state and
event log exactly as they were.

Hypothesis runs in a worker thread and drives the server, which runs in the
test's event loop, through `run_coroutine_threadsafe`: one server per test,
with hypothesis' shrinking intact.
"""

import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from kernel.errors import Code
from rooms import keys
from rooms.model import ALL_MODULES
from server import tokens
from server.appkeys import DISPATCHER, REDIS
from server.roles import Role
from tests.harness import Client, Harness

T = TypeVar("T")
ROOM = "fz"
CODES = frozenset(str(c) for c in Code)
# Keys a refused command may touch: rate-limit windows, connection bookkeeping
# and the live-grace sweep's mark of a live room (written on the sweep's clock).
VOLATILE = (":rl:", ":sessions", ":online", ":publisher_seen")
EXAMPLES = int(os.environ.get("DROPROOM_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies -------------------------------------------------------------

WEIRD_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x07b",
    "\r\n",
    "\ud800",
    "x\udfffy",
    "\u202e",
    "\ufeff",
    "\u200b",
    "\u200b \ufeff\u2060",
    "\u3164\u2800",
    "e\u0301",
    "💯" * 50,
    "x" * 65,
    "y" * 5000,
    "../../etc/passwd",
    "{room:fz}",
    "fz}:poll:x",
    "*",
    "?",
    "[a-z]",
    "nope",
    "0",
    "-1",
    "true",
    "null",
    "NaN",
    "👏",
    "listener",
    "host",
    "HOST",
    "pm_card_visa",
]
HUGE = [2**31, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30), 10**98, -(10**98)]
# engine.io's JSON refuses an integer of more than 100 digits; such a packet is
# answered `invalid` (server.sio_packets.GuardedPacket), HTTP bodies likewise.
HUGER = [10**100, -(10**300), 10**4000]

texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(WEIRD_STRINGS),
    st.builds(
        str.__add__, st.text(max_size=4), st.sampled_from(["\ud800", "\udfff", "\x00", "\x1b"])
    ),
)


def values(huge: list[int], binary: bool) -> st.SearchStrategy[Any]:
    """Anything JSON (and Socket.IO binary) can carry, nested."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**90), max_value=10**90),
        st.sampled_from(huge),
        st.floats(),
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]),
        texts,
        st.binary(max_size=8) if binary else st.nothing(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
        max_leaves=12,
    )


junk = values(HUGE + HUGER, binary=True)  # Socket.IO payloads
json_junk = values(HUGE + HUGER, binary=False)  # HTTP bodies
numbers = st.sampled_from([-1, 0, 1, 2, 9, 10, 11, 59, 10**6, 1.5, -0.5, *HUGE]) | st.floats()

# The fields each client-to-server event reads (PROTOCOL.md). An event
# registered later and not listed here gets every field below.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "poll:create": ("question", "options", "duration_s"),
    "poll:vote": ("poll_id", "option"),
    "poll:close": ("poll_id",),
    "slot:pin": ("slot", "product_id", "note"),
    "slot:unpin": ("slot",),
    "drop:schedule": (
        "product_id",
        "starts_at",
        "ends_at",
        "stock",
        "per_buyer_limit",
        "requires_account",
    ),
    "drop:restock": ("drop_id", "add"),
    "cart:add": ("product_id", "drop_id", "qty"),
    "cart:remove": ("line_id",),
    "cart:get": (),
    "checkout:start": ("payment_method", "email", "shipping", "save_card"),
    "buy:now": ("product_id", "drop_id", "qty", "email", "shipping"),
    "qa:ask": ("text",),
    "qa:upvote": ("question_id",),
    "qa:answer": ("question_id",),
    "hand:raise": (),
    "hand:lower": (),
    "stage:invite": ("identity",),
    "stage:remove": ("identity",),
    "speaker:mute": ("identity", "muted"),
    "reaction:send": ("emoji",),
    "chat:send": ("text",),
    "room:update": ("title", "modules", "guests", "live"),
}
ROUTE_FIELDS: dict[str, tuple[str, ...]] = {
    "/api/v1/tokens": ("room", "identity", "name", "role", "ttl_s"),
    "/api/v1/rooms": ("id", "title", "modules", "guests"),
    "/api/v1/rooms/{room}": ("title", "modules", "guests", "live"),
    "/api/v1/rooms/{room}/guest": ("name",),
}


def plausible(ids: dict[str, list[Any]]) -> dict[str, st.SearchStrategy[Any]]:
    """Per field: values of the right kind, often just out of bounds."""
    found = {
        "poll_id": st.sampled_from(ids["poll"]),
        "question_id": st.sampled_from(ids["question"]),
        "identity": st.sampled_from(ids["identity"]),
        "room": st.sampled_from([ROOM, "nope", "{room:fz}", "other"]),
        "role": st.sampled_from(["host", "moderator", "speaker", "listener", "admin", "Host", ""]),
        "options": st.lists(texts, max_size=12),
        "modules": st.lists(st.sampled_from(["polls", "qa", "chat", "shop", "video"]), max_size=5),
        "emoji": st.sampled_from(["👏", "🤡", "", ":)", "👏👏"]),
        "muted": st.booleans(),
        "guests": st.booleans(),
        "live": st.booleans(),
        "product_id": st.sampled_from(["nope", "p1", ""]) | texts,
        "drop_id": st.sampled_from(["nope", "d1", ""]) | texts,
        "line_id": st.sampled_from(["nope", "l1", ""]) | texts,
        "payment_method": st.sampled_from(["pm_card_visa", "pm_nope", ""]) | texts,
        "email": st.sampled_from(["a@b.co", "a@", " A@B.CO ", ""]) | texts,
        "shipping": st.fixed_dictionaries(
            {},
            optional={
                n: texts | st.sampled_from(["FR", "fr", "XX", "", "a\nb"])
                for n in ("name", "line1", "line2", "city", "postal_code", "country")
            },
        ),
        "save_card": st.booleans(),
        "requires_account": st.booleans(),
    }
    for name in ("question", "text", "title", "name", "id", "note"):
        found[name] = texts
    for name in ("option", "duration_s", "ttl_s", "slot", "qty", "stock", "add"):
        found[name] = numbers
    for name in ("starts_at", "ends_at", "per_buyer_limit"):
        found[name] = numbers | st.floats(min_value=time.time() - 60, max_value=time.time() + 600)
    return found


def near_valid(
    fields: tuple[str, ...] | None, ids: dict[str, list[Any]], anything: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the right field names and (mostly) wrong values."""
    kinds = plausible(ids)
    names = kinds.keys() if fields is None else fields
    return st.fixed_dictionaries({}, optional={n: kinds[n] | anything for n in names})


def event_payloads(event: str, ids: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    body = near_valid(EVENT_FIELDS.get(event), ids, junk)
    return st.one_of(
        junk,
        body,
        body,
        st.tuples(body, junk),  # two arguments where one is expected
        st.tuples(st.none()),  # an explicit null argument
    )


def forged(room: str, identity: str) -> str:
    """A well-formed token signed with another key."""
    secret = "not-the-server-secret-0123456789abcdef"
    return tokens.mint(
        secret, room=room, identity=identity, role=Role.HOST, name=identity, ttl_s=600,
        now=time.time(),
    )  # fmt: skip


# --- the server side ----------------------------------------------------------


class Bridge:
    """Runs coroutines on the server's loop from hypothesis' worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)


class Failures(logging.Handler):
    """Every ERROR the server logs: a handler that raised, a 500, a failed job."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.name}: {record.getMessage()}")


@contextmanager
def server_failures() -> Iterator[Failures]:
    failures = Failures()
    logger = logging.getLogger("server")
    logger.addHandler(failures)
    try:
        yield failures
    finally:
        logger.removeHandler(failures)


async def room_digest(server: Harness, with_volatile: bool = False) -> dict[str, Any]:
    """Every key of the room, read canonically (DUMP bytes depend on encoding)."""
    redis = server.app[REDIS]
    found: dict[str, Any] = {}
    async for raw in redis.scan_iter(match=keys.tag(ROOM) + "*", count=1000):
        key = raw.decode()
        if not with_volatile and any(mark in key for mark in VOLATILE):
            continue
        kind: Any = await redis.type(raw)  # bytes: this client does not decode
        kind = kind.decode()
        if kind == "hash":
            found[key] = sorted((await redis.hgetall(raw)).items())
        elif kind == "set":
            found[key] = sorted(await redis.smembers(raw))
        elif kind == "zset":
            found[key] = await redis.zrange(raw, 0, -1, withscores=True)
        elif kind == "list":
            found[key] = await redis.lrange(raw, 0, -1)
        elif kind == "stream":
            found[key] = await redis.xrange(raw)
        else:
            found[key] = await redis.get(raw)
    return found


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def check_ack(event: str, payload: Any, answer: Any) -> bool:
    """Assert the ack is well formed; True when the server accepted the command."""
    assert isinstance(answer, dict), f"{event} {payload!r} answered {answer!r}"
    if answer.get("ok") is True:
        return True
    assert answer.get("ok") is False, f"{event} {payload!r} answered {answer!r}"
    error = answer.get("error")
    assert isinstance(error, dict) and isinstance(error.get("message"), str), answer
    assert error.get("code") in CODES, f"{event} {payload!r}: unknown code in {answer!r}"
    assert error["code"] != "unavailable", f"{event} {payload!r}: a handler failed: {answer!r}"
    return False


async def seed(server: Harness) -> tuple[dict[str, Client], dict[str, list[Any]]]:
    """A lived-in room: staff and a listener connected, a poll with votes,
    a question, a chat line, a raised hand."""
    await server.create_room(id=ROOM, title="Fuzzed room", guests=True)
    await server.create_room(id="other", title="Another room")
    clients = {
        role: await server.connect(ROOM, role, role)
        for role in ("host", "moderator", "speaker", "listener")
    }
    mod, listener = clients["moderator"], clients["listener"]
    poll = await mod.call("poll:create", {"question": "Q?", "options": ["a", "b", "c"]})
    await listener.call("poll:vote", {"poll_id": poll["poll"]["id"], "option": 1})
    question = await listener.call("qa:ask", {"text": "Why?"})
    await listener.call("chat:send", {"text": "hello"})
    await listener.call("hand:raise", {})
    ids = {
        "poll": [poll["poll"]["id"], "nope", "0"],
        "question": [question["question"]["id"], "nope"],
        "identity": ["host", "moderator", "speaker", "listener", "ghost", ""],
    }
    return clients, ids


async def restore(server: Harness) -> None:
    """Undo an accepted room change that would switch the fuzzing off."""
    status, body = await server.request(
        "PATCH",
        f"/api/v1/rooms/{ROOM}",
        admin=True,
        json={"modules": [str(m) for m in ALL_MODULES], "guests": True},
    )
    assert status == 200, body


# --- Socket.IO events -----------------------------------------------------------


async def test_malformed_event_payloads_are_refused_cleanly(server: Harness) -> None:
    clients, ids = await seed(server)
    events = sorted(server.app[DISPATCHER].routes)
    assert {"poll:vote", "chat:send", "stage:invite"} <= set(events)
    bridge = Bridge(asyncio.get_running_loop())
    payloads = {event: event_payloads(event, ids) for event in events}
    # Staff get past the role check more often, so the payload is what is judged.
    callers = st.sampled_from(["host", "host", "moderator", "speaker", "listener"])
    baseline = [await room_digest(server)]

    @FUZZ
    @given(event=st.sampled_from(events), who=callers, data=st.data())
    def property_(event: str, who: str, data: st.DataObject) -> None:
        payload = data.draw(payloads[event], label="payload")
        answer = bridge.run(lambda: clients[who].call(event, payload, timeout=5))
        accepted = check_ack(event, payload, answer)
        if accepted and event == "room:update":
            bridge.run(lambda: restore(server))
        after = bridge.run(lambda: room_digest(server))
        if not accepted:
            changed = diff(baseline[0], after)
            assert not changed, f"{event} {payload!r} was refused but changed {changed}"
        baseline[0] = after

    with server_failures() as failures:
        await asyncio.to_thread(property_)
    assert not failures.seen, failures.seen[:5]
    for client in clients.values():
        assert client.sio.connected


async def test_a_packet_engineio_cannot_read_is_invalid_and_the_connection_works(
    server: Harness,
) -> None:
    clients, _ = await seed(server)
    before = await room_digest(server)
    for number in HUGER:
        refused = await clients["host"].call("poll:vote", {"poll_id": "x", "option": number})
        assert refused["error"]["code"] == "invalid"
    answer = await clients["host"].call("poll:vote", {"poll_id": "x", "option": 10**98})
    assert answer["error"]["code"] == "invalid"
    assert await room_digest(server) == before


async def test_malformed_handshakes_are_refused_as_unauthorized(server: Harness) -> None:
    await server.create_room(id=ROOM, title="Fuzzed room")
    bridge = Bridge(asyncio.get_running_loop())
    bad_tokens = [
        forged(ROOM, "x"),
        server.token(ROOM, "x", "host", ttl_s=-60),
        server.token("no-such-room", "x", "host"),
        "a.b.c",
        "",
    ]
    # The CONNECT packet cannot carry binary, and a bare number would be read as
    # the packet's id (the protocol wants an object): JSON, not a number.
    junk_auth = values(HUGE, binary=False)
    auths = st.one_of(
        junk_auth.filter(lambda a: isinstance(a, str | list | dict | None) or a is True),
        st.fixed_dictionaries({"token": st.sampled_from(bad_tokens) | junk_auth}),
    )
    baseline = await room_digest(server, with_volatile=True)

    async def attempt(auth: Any) -> Any:
        sio = socketio.AsyncClient(reconnection=False)
        refused: list[Any] = []
        sio.on("connect_error", refused.append)
        try:
            await sio.connect(server.url, auth=auth, transports=["websocket"], wait_timeout=10)
        except socketio.exceptions.ConnectionError:
            # python-socketio hands over {"message", "data"}; data is the server's.
            return refused[0].get("data") if refused else None
        await sio.disconnect()
        raise AssertionError(f"auth {auth!r} was let in")

    @settings(FUZZ, max_examples=max(10, EXAMPLES // 8))
    @given(auth=auths)
    def property_(auth: Any) -> None:
        data = bridge.run(lambda: attempt(auth))
        assert isinstance(data, dict) and data.get("code") == "unauthorized", (auth, data)
        assert isinstance(data.get("message"), str)

    with server_failures() as failures:
        await asyncio.to_thread(property_)
    assert not failures.seen, failures.seen[:5]
    assert await room_digest(server, with_volatile=True) == baseline


# --- HTTP routes -------------------------------------------------------------------

AUTHS = [
    "none", "admin", "wrong-admin", "host", "listener", "other-room", "expired", "forged",
    "garbage", "basic", "query-admin", "query-host",
]  # fmt: skip
RAW_BODIES = [
    b"",
    b"{",
    b"\xff\xfe\x00",
    b"null",
    b"[]",
    b'"text"',
    b"1e999",
    b"NaN",
    b'{"title": "\\ud800"}',
    b'{"name": "a\\u0000b"}',
    b"x" * (70 * 1024),
]
# JSON nested deeper than Python's recursion limit.
NESTED_BODIES = [b"[" * 50_000, b'{"a":' * 20_000]


# Room ids as sent on the wire (already percent-encoded): invalid UTF-8, NUL, slashes.
RAW_ROOM_SEGMENTS = ["%ED%A0%80", "%FF", "%00", "%2F..%2Ffz", "fz%7D", "%7Broom%3Afz%7D", "a" * 300]


def auth_headers(server: Harness, auth: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query) for one way of (not) authenticating."""
    admin = server.settings.admin_key
    bearer = {
        "admin": admin,
        "wrong-admin": admin + "x",
        "host": server.token(ROOM, "host", "host"),
        "listener": server.token(ROOM, "listener", "listener"),
        "other-room": server.token("other", "host", "host"),
        "expired": server.token(ROOM, "host", "host", ttl_s=-60),
        "forged": forged(ROOM, "host"),
    }  # fmt: skip
    if auth in bearer:
        return {"Authorization": f"Bearer {bearer[auth]}"}, {}
    if auth == "garbage":
        return {"Authorization": "Bearer"}, {}
    if auth == "basic":
        return {"Authorization": "Basic YWRtaW46YWRtaW4="}, {}
    if auth == "query-admin":
        return {}, {"token": admin}
    if auth == "query-host":
        return {}, {"token": bearer["host"]}
    return {}, {}


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


ROUTES = [
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/rooms"),
    ("GET", "/api/v1/rooms/{room}"),
    ("PATCH", "/api/v1/rooms/{room}"),
    ("POST", "/api/v1/rooms/{room}/guest"),
]
room_paths = st.sampled_from([ROOM, ROOM, "other", "nope", "FZ", "{room:fz}", "..", "%", " "]) | (
    st.text(st.characters(exclude_categories=["Cs"]), max_size=70)
)


class HttpProbe:
    """Sends one request and judges the answer and the room's state after it."""

    def __init__(self, server: Harness, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.baseline: dict[str, Any] = {}

    async def start(self) -> None:
        self.baseline = await room_digest(self.server)

    async def check(self, method: str, path: str, auth: str, body: bytes) -> None:
        headers, query = auth_headers(self.server, auth)
        headers["Content-Type"] = "application/json"
        url = URL(self.server.url + path, encoded=True).with_query(query)
        async with self.http.request(method, url, data=body, headers=headers) as resp:
            status, ctype, text = resp.status, resp.content_type, await resp.text()
        what = f"{method} {path} ({auth}) {body[:200]!r} -> {status} {text[:300]}"
        assert status < 500, what
        assert ctype == "application/json", what
        answer = json.loads(text)
        if status >= 400:
            error = answer.get("error")
            assert isinstance(error, dict) and error.get("code") in CODES, what
            assert isinstance(error.get("message"), str), what
        elif method == "PATCH":
            await restore(self.server)
        after = await room_digest(self.server)
        if status >= 400:
            assert not diff(self.baseline, after), f"{what} changed {diff(self.baseline, after)}"
        self.baseline = after


# Most requests carry a key that gets past authentication, so bodies are judged.
FUZZ_AUTHS = [*AUTHS, "admin", "admin", "admin", "host", "host"]


async def test_malformed_http_requests_get_4xx_json(server: Harness) -> None:
    clients, ids = await seed(server)
    bridge = Bridge(asyncio.get_running_loop())
    bodies = {
        path: st.one_of(
            json_junk.map(encode),
            near_valid(fields, ids, json_junk).map(encode),
            near_valid(fields, ids, json_junk).map(encode),
            st.sampled_from(RAW_BODIES),
            st.binary(max_size=64),
        )
        for path, fields in ROUTE_FIELDS.items()
    }
    async with aiohttp.ClientSession() as http:
        probe = HttpProbe(server, http)
        await probe.start()

        @settings(FUZZ, max_examples=EXAMPLES * 5 // 6)
        @given(route=st.sampled_from(ROUTES), room=room_paths, auth=st.sampled_from(FUZZ_AUTHS),
               data=st.data())  # fmt: skip
        def property_(route: tuple[str, str], room: str, auth: str, data: st.DataObject) -> None:
            method, template = route
            body = data.draw(bodies[template], label="body")
            path = template.replace("{room}", quote(room, safe=""))
            bridge.run(lambda: probe.check(method, path, auth, body))

        with server_failures() as failures:
            await asyncio.to_thread(property_)
    assert not failures.seen, failures.seen[:5]
    assert all(client.sio.connected for client in clients.values())


async def test_hostile_http_bodies_at_every_route_and_key(server: Harness) -> None:
    """The known nasties, every one at every route with every kind of key."""
    await seed(server)
    async with aiohttp.ClientSession() as http:
        probe = HttpProbe(server, http)
        await probe.start()
        with server_failures() as failures:
            for method, template in ROUTES:
                path = template.replace("{room}", ROOM)
                for segment in RAW_ROOM_SEGMENTS:
                    for auth in ("admin", "host"):
                        weird = template.replace("{room}", segment)
                        await probe.check(method, weird, auth, b'{"title": "t", "name": "n"}')
                for auth in AUTHS:
                    for body in RAW_BODIES:
                        await probe.check(method, path, auth, body)
    assert not failures.seen, failures.seen[:5]


async def test_deeply_nested_json_is_invalid_not_a_server_error(server: Harness) -> None:
    await seed(server)
    async with aiohttp.ClientSession() as http:
        probe = HttpProbe(server, http)
        await probe.start()
        for method, template in ROUTES:
            for body in NESTED_BODIES:
                await probe.check(method, template.replace("{room}", ROOM), "admin", body)
