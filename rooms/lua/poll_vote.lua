--@include kernel/refuse
--@include kernel/log_append
--@include rooms/poll_is_open
-- poll_vote: one vote per identity; voting again moves it.
-- Returns 1 when the tallies changed, 0 when the vote was already there.
local poll_key, votes_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local poll_id, identity, option_arg, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('EXISTS', poll_key) == 0 then return refuse('not_found', 'no such poll') end
if not poll_is_open(poll_key, now) then return refuse('conflict', 'the poll is closed') end
local n = tonumber(redis.call('HGET', poll_key, 'n'))
local option = tonumber(option_arg)
if option >= n then return refuse('invalid', 'option is out of range') end
local old = redis.call('HGET', votes_key, identity)
if old == option_arg then return 0 end
if old then redis.call('HINCRBY', poll_key, 't' .. old, -1) end
redis.call('HINCRBY', poll_key, 't' .. option_arg, 1)
redis.call('HSET', votes_key, identity, option_arg)
log_append(log_key, head_key, 'poll.voted',
           cjson.encode({poll = poll_id, identity = identity, option = option,
                         previous = old and tonumber(old) or cjson.null}), now)
return 1
