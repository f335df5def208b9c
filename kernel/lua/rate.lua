-- rate (rooms and accounts): counts one action in a fixed window; the
-- counter and its expiry are set together (a counter never outlives its window).
-- Returns 1 when allowed, 0 when over the limit.
local counter_key = KEYS[1]
local limit, window_ms = tonumber(ARGV[1]), ARGV[2]

local n = redis.call('INCR', counter_key)
if n == 1 then redis.call('PEXPIRE', counter_key, window_ms) end
if n > limit then return 0 end
return 1
