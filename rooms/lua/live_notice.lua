-- live_notice: the room was announced live (live == '1') or not. Returns 1
-- when this is a start worth a went-live mail: the room was not live before
-- and no such mail went out in the last `window_s` (a room that flaps sends
-- once). Every process sees every announcement it makes; this decides once.
local notice_key = KEYS[1]
local live, now, window_s, ttl_s = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]

local was = redis.call('HGET', notice_key, 'live')
redis.call('HSET', notice_key, 'live', live)
redis.call('EXPIRE', notice_key, ttl_s)
if live ~= '1' or was == '1' then return 0 end
local mailed_at = tonumber(redis.call('HGET', notice_key, 'mailed_at') or '-1e18')
if now - mailed_at < window_s then return 0 end
redis.call('HSET', notice_key, 'mailed_at', ARGV[2])
return 1
