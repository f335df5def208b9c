--@include kernel/log_append
--@include rooms/people
--@include rooms/listeners_note
-- leave: one connection of an identity goes. The last connection takes them
-- off the stage (their speaker token's generation moves on, which revokes it)
-- and lowers their hand.
-- Returns {participant JSON or false, left 0/1 (last connection), stage change}
-- where the change is '' (none), 'stage' or 'hand'.
local people_key, notable_key, online_key, sessions_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local role_counts_key, log_key, head_key = KEYS[5], KEYS[6], KEYS[7]
local session_field, identity, now = ARGV[1], ARGV[2], ARGV[3]
local stats_key, minutes_key = KEYS[8], KEYS[9]  -- the event numbers (rooms.stats)

if redis.call('HDEL', sessions_key, session_field) == 0 then return {false, 0, ''} end
local raw = redis.call('HGET', people_key, identity)
local n = redis.call('HINCRBY', online_key, identity, -1)
if n > 0 then return {raw or false, 0, ''} end
redis.call('HDEL', online_key, identity)
log_append(log_key, head_key, 'presence.left', cjson.encode({identity = identity}), now)
if not raw then return {false, 1, ''} end
local p = cjson.decode(raw)
redis.call('HINCRBY', role_counts_key, p.role, -1)
note_listeners(role_counts_key, stats_key, minutes_key, now)
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
put_person(people_key, notable_key, p)
log_append(log_key, head_key, 'stage.left', cjson.encode({identity = p.identity}), now)
return {cjson.encode(p), 1, change}
