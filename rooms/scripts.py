"""The room's Lua scripts: every change that can race is one script, and
every change appends its entry to the room's event log in the same script.

Scripts refuse with `redis.error_reply('DR <code> <message>')`; the store turns
that into a `kernel.errors.DomainError`. Must not import any framework.
"""

from kernel.eventlog import LUA_APPEND

_PRELUDE = (
    LUA_APPEND
    + """
local function refuse(code, message)
  return redis.error_reply('DR ' .. code .. ' ' .. message)
end
local RANK = {listener = 1, speaker = 2, moderator = 3, host = 4}
local function is_notable(p)
  return p.role ~= 'listener' or p.on_stage or p.hand_raised
end
local function put_person(people_key, notable_key, p)
  redis.call('HSET', people_key, p.identity, cjson.encode(p))
  if is_notable(p) then
    redis.call('SADD', notable_key, p.identity)
  else
    redis.call('SREM', notable_key, p.identity)
  end
end
"""
)

# KEYS room people notable online sessions role_counts log head
# ARGV session_field identity name role now token_exp
# Returns {participant JSON, joined 0/1, staged 0/1}: a host is put on the
# stage by their first connection (everyone leaves it with their last).
JOIN = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return refuse('not_found', 'no such room') end
local raw = redis.call('HGET', KEYS[2], ARGV[2])
local p
if raw then
  p = cjson.decode(raw)
else
  p = {identity = ARGV[2], on_stage = false, muted = false, hand_raised = false}
end
local old_role = p.role
p.name = ARGV[3]
p.role = ARGV[4]
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
local n = redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
local exp = tonumber(ARGV[6])
if n == 1 or exp > (tonumber(p.token_exp) or 0) then p.token_exp = exp end
local staged = 0
if n == 1 and p.role == 'host' and not p.on_stage then
  p.on_stage = true
  p.muted = false
  p.hand_raised = false
  staged = 1
end
put_person(KEYS[2], KEYS[3], p)
local joined = 0
if n == 1 then
  joined = 1
  redis.call('HINCRBY', KEYS[6], p.role, 1)
  log_append(KEYS[7], KEYS[8], 'presence.joined',
             cjson.encode({identity = p.identity, role = p.role}), ARGV[5])
  if staged == 1 and raw then
    log_append(KEYS[7], KEYS[8], 'stage.returned', cjson.encode({identity = p.identity}), ARGV[5])
  end
elseif old_role and old_role ~= p.role then
  redis.call('HINCRBY', KEYS[6], old_role, -1)
  redis.call('HINCRBY', KEYS[6], p.role, 1)
end
return {cjson.encode(p), joined, staged}
"""
)

# KEYS people notable online sessions role_counts log head
# ARGV session_field identity now
# Returns {participant JSON or false, left 0/1, stage change}: the last
# connection of an identity takes them off the stage (their speaker token's
# generation moves on, which revokes it) and lowers their hand; the change
# is '' (none), 'stage' or 'hand'.
LEAVE = (
    _PRELUDE
    + """
if redis.call('HDEL', KEYS[4], ARGV[1]) == 0 then return {false, 0, ''} end
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local n = redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
if n > 0 then return {raw or false, 0, ''} end
redis.call('HDEL', KEYS[3], ARGV[2])
log_append(KEYS[6], KEYS[7], 'presence.left', cjson.encode({identity = ARGV[2]}), ARGV[3])
if not raw then return {false, 1, ''} end
local p = cjson.decode(raw)
redis.call('HINCRBY', KEYS[5], p.role, -1)
local change = ''
if p.on_stage then
  change = 'stage'
  p.stage_gen = (tonumber(p.stage_gen) or 0) + 1
elseif p.hand_raised then
  change = 'hand'
else
  return {raw, 1, ''}
end
p.on_stage = false
p.muted = false
p.hand_raised = false
put_person(KEYS[1], KEYS[2], p)
log_append(KEYS[6], KEYS[7], 'stage.left', cjson.encode({identity = p.identity}), ARGV[3])
return {cjson.encode(p), 1, change}
"""
)

# KEYS people notable online log head
# ARGV identity op actor_rank now actor
# op: raise | lower | invite | remove | mute | unmute
# Returns {participant JSON, changed 0/1}.
STAGE = (
    _PRELUDE
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return refuse('not_found', 'no such participant in this room') end
local p = cjson.decode(raw)
local op = ARGV[2]
local self_op = op == 'raise' or op == 'lower'
if not self_op and ARGV[5] ~= p.identity and (RANK[p.role] or 1) > tonumber(ARGV[3]) then
  return refuse('forbidden', 'that participant outranks you')
end
if op == 'raise' then
  if p.on_stage then return refuse('conflict', 'you are already on stage') end
  if p.hand_raised then return {raw, 0} end
  p.hand_raised = true
elseif op == 'lower' then
  if not p.hand_raised then return {raw, 0} end
  p.hand_raised = false
elseif op == 'invite' then
  if p.on_stage then return {raw, 0} end
  if not redis.call('HGET', KEYS[3], ARGV[1]) then
    return refuse('conflict', 'that participant is not in the room')
  end
  p.on_stage = true
  p.hand_raised = false
  p.muted = false
elseif op == 'remove' then
  if not p.on_stage then return refuse('conflict', 'that participant is not on stage') end
  p.on_stage = false
  p.muted = false
  -- Revokes the speaker token minted at the invitation.
  p.stage_gen = (tonumber(p.stage_gen) or 0) + 1
elseif op == 'mute' or op == 'unmute' then
  if not p.on_stage then return refuse('conflict', 'that participant is not on stage') end
  local muted = op == 'mute'
  if p.muted == muted then return {raw, 0} end
  p.muted = muted
else
  return refuse('invalid', 'unknown stage operation')
end
put_person(KEYS[1], KEYS[2], p)
local entry = cjson.encode({identity = p.identity, by = ARGV[5]})
log_append(KEYS[4], KEYS[5], 'stage.' .. op, entry, ARGV[4])
return {cjson.encode(p), 1}
"""
)

# KEYS poll polls log head
# ARGV id question options_json n closes_at now max_open
POLL_CREATE = (
    _PRELUDE
    + """
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'question', ARGV[2], 'options', ARGV[3],
           'n', ARGV[4], 'state', 'open', 'closes_at', ARGV[5], 'created_at', ARGV[6])
for i = 0, tonumber(ARGV[4]) - 1 do redis.call('HSET', KEYS[1], 't' .. i, 0) end
redis.call('RPUSH', KEYS[2], ARGV[1])
log_append(KEYS[3], KEYS[4], 'poll.created',
           cjson.encode({id = ARGV[1], question = ARGV[2], options = cjson.decode(ARGV[3]),
                         closes_at = ARGV[5]}), ARGV[6])
return 1
"""
)

_POLL_IS_OPEN = """
local function poll_is_open(poll_key, now)
  local state, closes_at = unpack(redis.call('HMGET', poll_key, 'state', 'closes_at'))
  if state ~= 'open' then return false end
  if closes_at and closes_at ~= '' and tonumber(now) >= tonumber(closes_at) then
    return false
  end
  return true
end
"""

# KEYS poll votes log head
# ARGV poll_id identity option now
# Returns {changed 0/1}; one vote per identity, voting again moves it.
POLL_VOTE = (
    _PRELUDE
    + _POLL_IS_OPEN
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return refuse('not_found', 'no such poll') end
if not poll_is_open(KEYS[1], ARGV[4]) then return refuse('conflict', 'the poll is closed') end
local n = tonumber(redis.call('HGET', KEYS[1], 'n'))
local option = tonumber(ARGV[3])
if option >= n then return refuse('invalid', 'option is out of range') end
local old = redis.call('HGET', KEYS[2], ARGV[2])
if old == ARGV[3] then return 0 end
if old then redis.call('HINCRBY', KEYS[1], 't' .. old, -1) end
redis.call('HINCRBY', KEYS[1], 't' .. ARGV[3], 1)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
log_append(KEYS[3], KEYS[4], 'poll.voted',
           cjson.encode({poll = ARGV[1], identity = ARGV[2], option = option,
                         previous = old and tonumber(old) or cjson.null}), ARGV[4])
return 1
"""
)

# KEYS poll log head
# ARGV poll_id now by
# Returns 1 when this call closed it, 0 when it was already closed.
POLL_CLOSE = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return refuse('not_found', 'no such poll') end
if redis.call('HGET', KEYS[1], 'state') == 'closed' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'closed')
log_append(KEYS[2], KEYS[3], 'poll.closed', cjson.encode({poll = ARGV[1], by = ARGV[3]}), ARGV[2])
return 1
"""
)

# KEYS questions question log head
# ARGV id text author author_name now max_questions
QA_ASK = (
    _PRELUDE
    + """
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[6]) then
  return refuse('conflict', 'this room has reached its number of questions')
end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'text', ARGV[2], 'author', ARGV[3],
           'author_name', ARGV[4], 'votes', 0, 'answered', 0, 'created_at', ARGV[5])
redis.call('ZADD', KEYS[1], 0, ARGV[1])
log_append(KEYS[3], KEYS[4], 'qa.asked',
           cjson.encode({id = ARGV[1], text = ARGV[2], author = ARGV[3]}), ARGV[5])
return 1
"""
)

# KEYS questions question voters log head
# ARGV id identity now
QA_UPVOTE = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return refuse('not_found', 'no such question') end
if redis.call('HGET', KEYS[2], 'answered') == '1' then
  return refuse('conflict', 'the question is already answered')
end
if redis.call('SADD', KEYS[3], ARGV[2]) == 0 then
  return refuse('conflict', 'you already upvoted this question')
end
local votes = redis.call('HINCRBY', KEYS[2], 'votes', 1)
redis.call('ZADD', KEYS[1], votes, ARGV[1])
log_append(KEYS[4], KEYS[5], 'qa.upvoted', cjson.encode({id = ARGV[1], identity = ARGV[2]}),
           ARGV[3])
return votes
"""
)

# KEYS question log head
# ARGV id by now
QA_ANSWER = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return refuse('not_found', 'no such question') end
if redis.call('HGET', KEYS[1], 'answered') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'answered', 1)
log_append(KEYS[2], KEYS[3], 'qa.answered', cjson.encode({id = ARGV[1], by = ARGV[2]}), ARGV[3])
return 1
"""
)

# KEYS chat log head
# ARGV message_json now keep
CHAT = (
    _PRELUDE
    + """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
log_append(KEYS[2], KEYS[3], 'chat.sent', ARGV[1], ARGV[2])
return 1
"""
)

# KEYS room log head
# ARGV id title modules_json guests live now
ROOM_CREATE = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return refuse('conflict', 'a room with that id exists')
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'title', ARGV[2], 'modules', ARGV[3],
           'guests', ARGV[4], 'live', ARGV[5], 'created_at', ARGV[6])
log_append(KEYS[2], KEYS[3], 'room.created',
           cjson.encode({id = ARGV[1], title = ARGV[2], modules = cjson.decode(ARGV[3]),
                         guests = ARGV[4] == '1'}), ARGV[6])
return 1
"""
)

# KEYS room log head
# ARGV changes_json (field -> string value) now by
ROOM_UPDATE = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return refuse('not_found', 'no such room') end
local changes = cjson.decode(ARGV[1])
for field, value in pairs(changes) do redis.call('HSET', KEYS[1], field, value) end
log_append(KEYS[2], KEYS[3], 'room.updated', ARGV[1], ARGV[2])
return 1
"""
)

# KEYS counter ; ARGV limit window_ms. Returns 1 when allowed, 0 when over.
RATE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return 0 end
return 1
"""
