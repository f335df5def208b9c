-- outbox_retry: one more failed try of a mail. Below `max_tries` it is due
-- again after base * 2^(tries-1) seconds (at most `cap`); at `max_tries` it
-- is dropped. Answers the tries so far, negative when dropped.
local outbox_key, mail_key = KEYS[1], KEYS[2]
local mail_id, now = ARGV[1], tonumber(ARGV[2])
local base, cap, max_tries = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

if redis.call('EXISTS', mail_key) == 0 then
  redis.call('ZREM', outbox_key, mail_id)
  return 0
end
local tries = redis.call('HINCRBY', mail_key, 'tries', 1)
if tries >= max_tries then
  redis.call('ZREM', outbox_key, mail_id)
  redis.call('DEL', mail_key)
  return -tries
end
local delay = math.min(base * 2 ^ (tries - 1), cap)
redis.call('ZADD', outbox_key, now + delay, mail_id)
return tries
