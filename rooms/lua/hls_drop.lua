-- hls_drop: remove the room's live HLS playlist KEYS[1] if the HLS session
-- ARGV[1] wrote it last (a newer writer's playlist stays). Returns 1 when removed.
local key = KEYS[1]
local session = ARGV[1]
if redis.call('HGET', key, 'session') == session then
  redis.call('DEL', key)
  return 1
end
return 0
