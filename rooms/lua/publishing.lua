--@include kernel/log_append
-- publishing: someone on the room's stage publishes (starting "1": a publisher
-- just connected, "0": still publishing); the mark starts the grace again.
-- Returns 1 if the room went live, 0 if not, -1 if there is no such room.
local room_key, seen_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, ttl_ms, by, starting = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'

if redis.call('EXISTS', room_key) == 0 then return -1 end
redis.call('SET', seen_key, now, 'PX', ttl_ms)
-- only a start makes a room live: a host who ended it by hand while still
-- publishing (trying the microphone) is not overruled by the next sweep
if not starting or redis.call('HGET', room_key, 'live') == '1' then return 0 end
redis.call('HSET', room_key, 'live', '1')
log_append(log_key, head_key, 'room.updated', cjson.encode({live = '1', by = by}), now)
return 1
