--@include kernel/refuse
--@include kernel/log_append
-- qa_answer: marks the question answered.
-- Returns 1 when this call answered it, 0 when it already was.
local question_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3]
local id, by, now = ARGV[1], ARGV[2], ARGV[3]

if redis.call('EXISTS', question_key) == 0 then return refuse('not_found', 'no such question') end
if redis.call('HGET', question_key, 'answered') == '1' then return 0 end
redis.call('HSET', question_key, 'answered', 1)
log_append(log_key, head_key, 'qa.answered', cjson.encode({id = id, by = by}), now)
return 1
