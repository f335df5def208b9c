--@include kernel/refuse
--@include kernel/log_append
--@include rooms/poll_is_open
-- poll_create: a new open poll with zeroed tallies, unless the room already
-- has max_open polls open among its last `scan` polls (the cap is checked and
-- the poll written in this one script, so concurrent creates never pass it).
-- The polls' hashes are read by name from poll_prefix (the same hash tag, so
-- the same cluster slot, as the declared keys). Returns 1.
local poll_key, polls_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, question, options_json, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local closes_at, now, max_open, scan = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local poll_prefix = ARGV[9]

local open = 0
for _, other in ipairs(redis.call('LRANGE', polls_key, -scan, -1)) do
  if poll_is_open(poll_prefix .. other, now) then open = open + 1 end
end
if open >= max_open then
  return refuse('conflict', 'at most ' .. max_open .. ' polls may be open at once')
end
redis.call('HSET', poll_key, 'id', id, 'question', question, 'options', options_json,
           'n', n, 'state', 'open', 'closes_at', closes_at, 'created_at', now)
for i = 0, n - 1 do redis.call('HSET', poll_key, 't' .. i, 0) end
redis.call('RPUSH', polls_key, id)
log_append(log_key, head_key, 'poll.created',
           cjson.encode({id = id, question = question, options = cjson.decode(options_json),
                         closes_at = closes_at}), now)
return 1
