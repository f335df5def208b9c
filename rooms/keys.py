"""Redis key names of the room domain, each with its shape.

Every key of a room starts with the hash tag `{room:<id>}`, so a Redis Cluster
keeps a room on one slot and its Lua scripts touch one slot. The few indexes
across rooms live under `{rooms}`.
"""


def tag(room: str) -> str:
    return "{room:" + room + "}"


# HASH id, title, modules (JSON list), guests "0"/"1", live "0"/"1", created_at
def room(r: str) -> str:
    return tag(r)


# HASH identity -> participant JSON (name, role, on_stage, muted, hand_raised)
def people(r: str) -> str:
    return tag(r) + ":people"


# SET identities worth listing in every snapshot: staff, stage, raised hands
def notable(r: str) -> str:
    return tag(r) + ":notable"


# HASH identity -> number of open connections (present when > 0)
def online(r: str) -> str:
    return tag(r) + ":online"


# HASH "<node>|<sid>" -> identity: every open connection, by server node
def sessions(r: str) -> str:
    return tag(r) + ":sessions"


# HASH role -> number of identities online with that role
def role_counts(r: str) -> str:
    return tag(r) + ":role_counts"


# LIST poll ids, oldest first
def polls(r: str) -> str:
    return tag(r) + ":polls"


# HASH id, question, options (JSON), n, state, closes_at, created_at, t0..t9
def poll(r: str, poll_id: str) -> str:
    return f"{tag(r)}:poll:{poll_id}"


# HASH identity -> option index
def poll_votes(r: str, poll_id: str) -> str:
    return f"{tag(r)}:poll:{poll_id}:votes"


# ZSET question id -> votes
def questions(r: str) -> str:
    return tag(r) + ":questions"


# HASH id, text, author, author_name, votes, answered, created_at
def question(r: str, question_id: str) -> str:
    return f"{tag(r)}:q:{question_id}"


# SET identities that upvoted the question
def question_voters(r: str, question_id: str) -> str:
    return f"{tag(r)}:q:{question_id}:voters"


# LIST chat message JSON, newest first, capped
def chat(r: str) -> str:
    return tag(r) + ":chat"


# STREAM the room's hash-chained event log; STRING its last hash
def log(r: str) -> str:
    return tag(r) + ":log"


def log_head(r: str) -> str:
    return tag(r) + ":log:head"


# STRING counter with a TTL: one fixed rate-limit window
def rate(r: str, action: str, identity: str) -> str:
    return f"{tag(r)}:rl:{action}:{identity}"


# SET of every room id
ROOMS_INDEX = "{rooms}:index"


# SET ids of the rooms a creator owns (kernel.owners; written after the room)
def owned_rooms(owner: str) -> str:
    return "{owner:" + owner + "}:rooms"


# ZSET "<room>|<poll>" -> closes_at: polls that close by themselves
POLL_DEADLINES = "{rooms}:poll_deadlines"


# STRING "1" with a TTL: a server node is alive
def node(node_id: str) -> str:
    return "{rooms}:node:" + node_id


# SET of node ids that have ever registered
NODES = "{rooms}:nodes"


def guest_rate(address: str) -> str:
    return "{rooms}:rl:guest:" + address


# STRING unix time a publisher was last seen on the room's stage (refreshed by
# the process that holds the publisher; TTL a few graces): drives live grace
def publisher_seen(r: str) -> str:
    return tag(r) + ":publisher_seen"


# SET room ids that are live (a hint for the live-grace sweep; the room hash decides)
LIVE_INDEX = "{rooms}:live"


# The event numbers (rooms.stats), kept by the presence scripts as people come and go:
# HASH peak -> the most listeners at once
def stats(r: str) -> str:
    return tag(r) + ":stats"


# HASH minute start (unix s) -> identities arriving (first connection) in that minute
def stats_joins(r: str) -> str:
    return tag(r) + ":stats:joins"


# HASH minute start (unix s) -> the most listeners present in that minute
def stats_listeners(r: str) -> str:
    return tag(r) + ":stats:listeners"


# HYPERLOGLOG identities that joined as listeners
def stats_unique(r: str) -> str:
    return tag(r) + ":stats:unique"


# STRING the token of the process computing the room's `stats:updated` (TTL: its lease)
def stats_lease(r: str) -> str:
    return tag(r) + ":stats:lease"


# STRING the last `stats:updated` payload's digest (TTL): nothing changed, nothing sent
def stats_sent(r: str) -> str:
    return tag(r) + ":stats:sent"


# HASH process token -> JSON {connected, reported, loss, at}: each process's WHEP
# listeners of the room as it last saw them (TTL: a few stats ticks)
def stats_audio(r: str) -> str:
    return tag(r) + ":stats:audio"


# SET drop ids of the room that sold out, counted once for Prometheus (server.numbers.metrics)
def stats_sellouts(r: str) -> str:
    return tag(r) + ":stats:sellouts"
