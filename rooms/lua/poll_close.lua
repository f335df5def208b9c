--@include kernel/refuse
--@include kernel/log_append
-- poll_close: closes the poll.
-- Returns 1 when this call closed it, 0 when it was already closed.
local poll_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3]
local poll_id, now, by = ARGV[1], ARGV[2], ARGV[3]

if redis.call('EXISTS', poll_key) == 0 then return refuse('not_found', 'no such poll') end
if redis.call('HGET', poll_key, 'state') == 'closed' then return 0 end
redis.call('HSET', poll_key, 'state', 'closed')
log_append(log_key, head_key, 'poll.closed', cjson.encode({poll = poll_id, by = by}), now)
return 1
