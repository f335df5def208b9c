--@include rooms/episodes_lib
-- episodes_refresh: drops the room's ended episodes and refreshes what the
-- room shows. Returns how many ended (0: nothing changed).
local room_key, eps_key, starts_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, shown = ARGV[1], tonumber(ARGV[2])

if redis.call('EXISTS', room_key) == 0 then return 0 end
local ended = episodes_prune(eps_key, starts_key, ends_key, now)
if ended > 0 then episodes_show(room_key, eps_key, starts_key, shown) end
return ended
