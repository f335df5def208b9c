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


# HASH invite id (the token's jti) -> invite JSON (rooms.invites): the room's
# invite links, pruned of expired ones when listed
def invites(r: str) -> str:
    return tag(r) + ":invites"


# ZSET invite id by expires_at (pruning)
def invites_expiry(r: str) -> str:
    return tag(r) + ":invites:expiry"


# STRING "1", TTL until the token's exp: a revoked invite's token is refused
def invite_revoked(r: str, invite_id: str) -> str:
    return f"{tag(r)}:invite:{invite_id}:revoked"


# SET sids connected with an invite's token (TTL until its exp): closed at revocation
def invite_sockets(r: str, invite_id: str) -> str:
    return f"{tag(r)}:invite:{invite_id}:sockets"


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


# episodes branch (issue 12): episodes of a room, its followers, reminders
# HASH episode id -> episode JSON {id, title, starts_at, ends_at}
def episodes(r: str) -> str:
    return tag(r) + ":episodes"


# ZSET episode id -> starts_at (upcoming ones, soonest first)
def episode_starts(r: str) -> str:
    return tag(r) + ":episodes:starts"


# ZSET episode id -> when it ends (ends_at, or starts_at + the default duration)
def episode_ends(r: str) -> str:
    return tag(r) + ":episodes:ends"


# SET account ids following the room (reminder and went-live mails)
def followers(r: str) -> str:
    return tag(r) + ":followers"


# HASH live "0"/"1", mailed_at: what the went-live mail last saw (flaps send once)
def live_notice(r: str) -> str:
    return tag(r) + ":live_notice"


# SET room ids an account follows (written after the room's followers set)
def follows(account_id: str) -> str:
    return "{follows:" + account_id + "}"


# ZSET "<room>|<episode>" -> when to mail the followers (a reminder is due)
EPISODE_REMINDERS = "{rooms}:episode_reminders"

# ZSET "<room>|<episode>" -> when it ends (it leaves the room's upcoming list)
EPISODE_ENDS = "{rooms}:episode_ends"

# ZSET "<room>|<went live at>" -> went live at: went-live mails to send
LIVE_MAILS = "{rooms}:live_mails"


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


# HASH holder (a process's random token), token (the fencing token), endpoint
# (JSON: where the holder answers WHIP/WHEP: node, worker, url, region). TTL:
# the lease's time, renewed by its holder. The process named here owns the
# room's media (mixer, encoder, recorder, HLS); every other process is an edge.
def media_lease(r: str) -> str:
    return tag(r) + ":media:lease"


# STRING counter: the last fencing token given for the room's media (never expires,
# so a new holder's token is always higher than every earlier holder's)
def media_fence(r: str) -> str:
    return tag(r) + ":media:fence"


# hls (issue 15): HASH session (the writer's random path part), playlist (the
# live m3u8 as served), with the TTL its writer renews at every segment
def hls_playlist(r: str) -> str:
    return tag(r) + ":hls"
