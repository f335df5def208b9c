--@include kernel/log_append
-- end_if_idle: a live room nobody has published in for grace_s stops being live.
-- Returns 1 if the room stopped being live, 0 if it stays live, -1 if it is not live.
local room_key, seen_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, grace_s, ttl_ms, by = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]

if redis.call('HGET', room_key, 'live') ~= '1' then
  redis.call('DEL', seen_key)
  return -1
end
local seen = tonumber(redis.call('GET', seen_key))
if not seen then
  -- live without a publisher seen (set by hand, or data from before): the grace starts now
  redis.call('SET', seen_key, ARGV[1], 'PX', ttl_ms)
  return 0
end
if now - seen < grace_s then return 0 end
redis.call('HSET', room_key, 'live', '0')
redis.call('DEL', seen_key)
log_append(log_key, head_key, 'room.updated', cjson.encode({live = '0', by = by}), ARGV[1])
return 1
