-- hook_enqueue: one event, for each endpoint that wants it, at most once.
-- mode "once": the mark is set NX for `mark_ttl_s`; a second call about the
-- same type and ref (the domain event emitted again, or by another process)
-- enqueues nothing. mode "room": the mark is the room's live state as the
-- webhooks last saw it; only a change of `live` enqueues, and each live
-- session is numbered (the ref gets ":<session>"), so room.live and
-- room.ended go out once per session. The message id (webhook-id) is
-- "msg_" .. sha1(type .. ":" .. ref): the same event always has the same id.
-- KEYS after the first two and ARGV after the first eight come per endpoint:
-- (delivery key, log key) and (delivery id, owner, endpoint id).
-- Answers the message id, or false when nothing was enqueued.
local due_key, mark_key = KEYS[1], KEYS[2]
local mode, event_type, ref, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, mark_ttl_s, live, log_keep = ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])

if mode == 'room' then
  local was = redis.call('HGET', mark_key, 'live')
  local session
  if live == '1' then
    if was == '1' then return false end
    session = redis.call('HINCRBY', mark_key, 'session', 1)
  else
    if was ~= '1' then
      redis.call('HSET', mark_key, 'live', '0')
      redis.call('EXPIRE', mark_key, mark_ttl_s)
      return false
    end
    session = redis.call('HGET', mark_key, 'session') or '0'
  end
  redis.call('HSET', mark_key, 'live', live)
  redis.call('EXPIRE', mark_key, mark_ttl_s)
  ref = ref .. ':' .. session
elseif not redis.call('SET', mark_key, '1', 'NX', 'EX', mark_ttl_s) then
  return false
end

local msg_id = 'msg_' .. redis.sha1hex(event_type .. ':' .. ref)
local count = (#KEYS - 2) / 2
for i = 1, count do
  local delivery_key, log_key = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local delivery_id, owner, endpoint_id = ARGV[6 + 3 * i], ARGV[7 + 3 * i], ARGV[8 + 3 * i]
  redis.call('HSET', delivery_key, 'id', delivery_id, 'msg', msg_id, 'type', event_type,
    'body', body, 'owner', owner, 'endpoint', endpoint_id, 'state', 'pending',
    'attempts', 0, 'created_at', now, 'next_at', now)
  redis.call('ZADD', due_key, now, delivery_id)
  redis.call('ZADD', log_key, now, delivery_id)
  redis.call('ZREMRANGEBYRANK', log_key, 0, -(log_keep + 1))
end
return msg_id
