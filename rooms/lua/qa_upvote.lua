--@include kernel/refuse
--@include kernel/log_append
-- qa_upvote: one upvote per identity on an unanswered question.
-- Returns the question's new number of votes.
local questions_key, question_key, voters_key, log_key, head_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, identity, now = ARGV[1], ARGV[2], ARGV[3]

if redis.call('EXISTS', question_key) == 0 then return refuse('not_found', 'no such question') end
if redis.call('HGET', question_key, 'answered') == '1' then
  return refuse('conflict', 'the question is already answered')
end
if redis.call('SADD', voters_key, identity) == 0 then
  return refuse('conflict', 'you already upvoted this question')
end
local votes = redis.call('HINCRBY', question_key, 'votes', 1)
redis.call('ZADD', questions_key, votes, id)
log_append(log_key, head_key, 'qa.upvoted', cjson.encode({id = id, identity = identity}), now)
return votes
