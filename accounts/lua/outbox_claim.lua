-- outbox_claim: the mails due by `now` (at most `limit`), each pushed out to
-- `lease_until` so another worker does not send it meanwhile.
local outbox_key = KEYS[1]
local now, lease_until, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])

local due = redis.call('ZRANGEBYSCORE', outbox_key, '-inf', now, 'LIMIT', 0, limit)
for _, mail_id in ipairs(due) do
  redis.call('ZADD', outbox_key, lease_until, mail_id)
end
return due
