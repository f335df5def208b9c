--@include kernel/refuse
--@include kernel/log_append
--@include rooms/people
--@include rooms/listeners_note
-- join: one connection of an identity arrives. A host is put on the stage by
-- their first connection (everyone leaves it with their last).
-- The event numbers are counted here (rooms.stats): joins per minute, unique
-- listeners (HyperLogLog), the listeners' peak and per-minute presence.
-- Returns {participant JSON, joined 0/1 (first connection), staged 0/1}.
local room_key, people_key, notable_key, online_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sessions_key, role_counts_key, log_key, head_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local session_field, identity, name, role = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, token_exp = ARGV[5], tonumber(ARGV[6])
local stats_key, joins_key, minutes_key, unique_key = KEYS[9], KEYS[10], KEYS[11], KEYS[12]

if redis.call('EXISTS', room_key) == 0 then return refuse('not_found', 'no such room') end
local raw = redis.call('HGET', people_key, identity)
local p
if raw then
  p = cjson.decode(raw)
else
  p = {identity = identity, on_stage = false, muted = false, hand_raised = false}
end
local old_role = p.role
p.name = name
p.role = role
redis.call('HSET', sessions_key, session_field, identity)
local n = redis.call('HINCRBY', online_key, identity, 1)
if n == 1 or token_exp > (tonumber(p.token_exp) or 0) then p.token_exp = token_exp end
local staged = 0
if n == 1 and p.role == 'host' and not p.on_stage then
  p.on_stage = true
  p.muted = false
  p.hand_raised = false
  staged = 1
end
put_person(people_key, notable_key, p)
local joined = 0
if n == 1 then
  joined = 1
  redis.call('HINCRBY', role_counts_key, p.role, 1)
  redis.call('HINCRBY', joins_key, string.format('%d', math.floor(tonumber(now) / 60) * 60), 1)
  if p.role == 'listener' then redis.call('PFADD', unique_key, p.identity) end
  note_listeners(role_counts_key, stats_key, minutes_key, now)
  log_append(log_key, head_key, 'presence.joined',
             cjson.encode({identity = p.identity, role = p.role}), now)
  if staged == 1 and raw then
    log_append(log_key, head_key, 'stage.returned', cjson.encode({identity = p.identity}), now)
  end
elseif old_role and old_role ~= p.role then
  redis.call('HINCRBY', role_counts_key, old_role, -1)
  redis.call('HINCRBY', role_counts_key, p.role, 1)
  if p.role == 'listener' then redis.call('PFADD', unique_key, p.identity) end
  note_listeners(role_counts_key, stats_key, minutes_key, now)
end
return {cjson.encode(p), joined, staged}
