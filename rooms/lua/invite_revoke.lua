-- invite_revoke (rooms.invites): mark a room's invite revoked and keep its
-- revocation until the token would have expired. Returns the invite JSON,
-- or false if the room has no such unexpired invite.
local invites_key, revoked_key = KEYS[1], KEYS[2]
local invite_id, now = ARGV[1], tonumber(ARGV[2])

local raw = redis.call('HGET', invites_key, invite_id)
if not raw then return false end
local invite = cjson.decode(raw)
if tonumber(invite.expires_at) < now then return false end
invite.revoked = true
local encoded = cjson.encode(invite)
redis.call('HSET', invites_key, invite_id, encoded)
redis.call('SET', revoked_key, '1', 'EX', math.max(1, math.ceil(invite.expires_at - now) + 1))
return encoded
