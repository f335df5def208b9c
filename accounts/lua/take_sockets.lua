-- take_sockets: the sids noted for an account, forgotten at once (sign-out).
local sockets_key = KEYS[1]

local sids = redis.call('SMEMBERS', sockets_key)
redis.call('DEL', sockets_key)
return sids
