--@include kernel/refuse
--@include kernel/log_append
-- qa_ask: a new question with no votes, unless the room has max_questions.
-- Returns 1.
local questions_key, question_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, text, author, author_name, now, max_questions =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])

if redis.call('ZCARD', questions_key) >= max_questions then
  return refuse('conflict', 'this room has reached its number of questions')
end
redis.call('HSET', question_key, 'id', id, 'text', text, 'author', author,
           'author_name', author_name, 'votes', 0, 'answered', 0, 'created_at', now)
redis.call('ZADD', questions_key, 0, id)
log_append(log_key, head_key, 'qa.asked',
           cjson.encode({id = id, text = text, author = author}), now)
return 1
