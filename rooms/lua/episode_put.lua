--@include kernel/refuse
--@include kernel/log_append
--@include rooms/episodes_lib
-- episode_put: creates an episode (expected == '': the id must be free and
-- the room under `most` upcoming) or replaces one whose stored JSON is still
-- `expected` (a change read, validated and merged in Python; refused with
-- `conflict` when another change came first). Returns 1.
local room_key, eps_key, starts_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local log_key, head_key = KEYS[5], KEYS[6]
local id, episode, starts_at, ends_at, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, shown, most = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])

if redis.call('EXISTS', room_key) == 0 then return refuse('not_found', 'no such room') end
local current = redis.call('HGET', eps_key, id)
local ended = current and tonumber(redis.call('ZSCORE', ends_key, id) or 0) <= tonumber(now)
if expected == '' then
  if current and not ended then return refuse('conflict', 'an episode with this id exists') end
  if episodes_upcoming(ends_key, now) >= most then
    return refuse('limit_reached', 'a room has at most ' .. most .. ' upcoming episodes')
  end
else
  if not current or ended then return refuse('not_found', 'no such episode') end
  if current ~= expected then
    return refuse('conflict', 'the episode changed meanwhile; try again')
  end
end
episodes_prune(eps_key, starts_key, ends_key, now)
redis.call('HSET', eps_key, id, episode)
redis.call('ZADD', starts_key, starts_at, id)
redis.call('ZADD', ends_key, ends_at, id)
episodes_show(room_key, eps_key, starts_key, shown)
local etype = 'episode.created'
if expected ~= '' then etype = 'episode.updated' end
log_append(log_key, head_key, etype, episode, now)
return 1
