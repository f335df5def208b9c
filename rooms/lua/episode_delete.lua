--@include kernel/refuse
--@include kernel/log_append
--@include rooms/episodes_lib
-- episode_delete: removes an upcoming episode. Returns 1.
local room_key, eps_key, starts_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local log_key, head_key = KEYS[5], KEYS[6]
local id, now, shown = ARGV[1], ARGV[2], tonumber(ARGV[3])

if redis.call('EXISTS', room_key) == 0 then return refuse('not_found', 'no such room') end
local ends = redis.call('ZSCORE', ends_key, id)
if not ends or tonumber(ends) <= tonumber(now) then
  return refuse('not_found', 'no such episode')
end
redis.call('HDEL', eps_key, id)
redis.call('ZREM', starts_key, id)
redis.call('ZREM', ends_key, id)
episodes_prune(eps_key, starts_key, ends_key, now)
episodes_show(room_key, eps_key, starts_key, shown)
log_append(log_key, head_key, 'episode.deleted', cjson.encode({id = id}), now)
return 1
