-- outbox_once: enqueue a mail unless one of its kind about the same thing
-- was enqueued before (the mark lives `mark_ttl_s`). Answers 1 if enqueued.
local mark_key, outbox_key, mail_key = KEYS[1], KEYS[2], KEYS[3]
local mail_id, now, mark_ttl_s = ARGV[1], ARGV[2], ARGV[3]
local to, subject, text, html = ARGV[4], ARGV[5], ARGV[6], ARGV[7]

if not redis.call('SET', mark_key, '1', 'NX', 'EX', mark_ttl_s) then
  return 0
end
redis.call('HSET', mail_key, 'to', to, 'subject', subject, 'text', text, 'html', html,
  'created_at', now)
redis.call('ZADD', outbox_key, now, mail_id)
return 1
