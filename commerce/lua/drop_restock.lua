--@include kernel/refuse
--@include commerce/drop_state
-- drop_restock (drop:restock): `add` more units to a drop that has not ended.
-- Returns {'ok', announced state or ''}; refuses not_found or conflict.
local drop_key, due_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local drop_id, add, now = ARGV[1], ARGV[2], tonumber(ARGV[3])

local ends = redis.call('HGET', drop_key, 'ends_at')
if not ends then return refuse('not_found', 'no drop ' .. drop_id .. ' in this room') end
if now >= tonumber(ends) then return refuse('conflict', 'the drop has ended') end
redis.call('HINCRBY', drop_key, 'given', add)
redis.call('HINCRBY', drop_key, 'left', add)
log_append(log_key, head_key, 'drop.restocked',
  cjson.encode({drop_id = drop_id, add = tonumber(add)}), ARGV[3])
redis.call('ZADD', due_key, ARGV[3], drop_id)
return {'ok', announce(drop_key, drop_id, now, log_key, head_key) or ''}
