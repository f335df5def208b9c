-- hls_put: the room's live HLS playlist KEYS[1] becomes ARGV[2], written by
-- the HLS session ARGV[1]; it expires in ARGV[3] ms unless written again.
local key = KEYS[1]
local session, playlist, ttl_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('HSET', key, 'session', session, 'playlist', playlist)
redis.call('PEXPIRE', key, ttl_ms)
return 1
