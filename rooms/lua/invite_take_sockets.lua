-- invite_take_sockets (rooms.invites): the connections noted for an invite's
-- token, forgotten in the same step (revocation closes them). KEYS: the set.
local sockets_key = KEYS[1]

local found = redis.call('SMEMBERS', sockets_key)
redis.call('DEL', sockets_key)
return found
