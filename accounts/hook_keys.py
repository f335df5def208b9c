"""Redis key names of outbound webhooks, each defined once with its shape.

A creator's endpoints live under the creator's tag `{hooks:<owner>}` (the
owner is an account id, or "admin"). The deliveries, their queue and the
marks that make an event go out once live under one tag `{hookq}`, like the
mail outbox under `{mail}`: enqueueing an event for every endpoint that
wants it and marking it enqueued is then one script on one slot. Must not
import anything but the standard library.
"""

# {hooks:<owner>}:ids             SET    the owner's endpoint ids
# {hooks:<owner>}:ep:<id>         HASH   id, owner, url, events (comma-separated), secret,
#                                        created_at, previous_secret, previous_until
# {hookq}:due                     ZSET   delivery id by when it is next due (a claim pushes
#                                        it out by a lease, so one worker sends it)
# {hookq}:d:<delivery id>         HASH   msg, type, body, owner, endpoint, state (pending,
#                                        delivered, failed), attempts, last_status, last_error,
#                                        last_at, next_at, created_at, delivered_at; kept
#                                        SETTLED_TTL_S once settled
# {hookq}:log:<owner>|<endpoint>  ZSET   delivery ids by when they were made, the newest LOG_KEEP
# {hookq}:once:<type>:<ref>       STRING "1": this event was enqueued (ONCE_TTL_S)
# {hookq}:live:<room>             HASH   live (0/1), session: the room's live state as the
#                                        webhooks last saw it (room.live / room.ended)

DUE = "{hookq}:due"


def endpoints(owner: str) -> str:
    return "{hooks:" + owner + "}:ids"


def endpoint(owner: str, endpoint_id: str) -> str:
    return "{hooks:" + owner + "}:ep:" + endpoint_id


def delivery(delivery_id: str) -> str:
    return "{hookq}:d:" + delivery_id


def log(owner: str, endpoint_id: str) -> str:
    return "{hookq}:log:" + owner + "|" + endpoint_id


def once(event_type: str, ref: str) -> str:
    return "{hookq}:once:" + event_type + ":" + ref


def room_live(room: str) -> str:
    return "{hookq}:live:" + room
