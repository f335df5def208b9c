-- episodes_lib: the room's upcoming episodes (rooms/episodes.py).
-- episodes_prune drops the episodes that ended by `now`; episodes_show keeps
-- the room hash's `episodes` field (the soonest `shown`, a JSON list, what
-- lobby entries and snapshots carry) in step with them.
local function episodes_prune(eps_key, starts_key, ends_key, now)
  local ended = redis.call('ZRANGEBYSCORE', ends_key, '-inf', now)
  for _, id in ipairs(ended) do
    redis.call('HDEL', eps_key, id)
    redis.call('ZREM', starts_key, id)
    redis.call('ZREM', ends_key, id)
  end
  return #ended
end

local function episodes_show(room_key, eps_key, starts_key, shown)
  local ids = redis.call('ZRANGE', starts_key, 0, shown - 1)
  local list = {}
  if #ids > 0 then
    for _, raw in ipairs(redis.call('HMGET', eps_key, unpack(ids))) do
      if raw then list[#list + 1] = raw end
    end
  end
  redis.call('HSET', room_key, 'episodes', '[' .. table.concat(list, ',') .. ']')
end

-- How many episodes have not ended by `now`.
local function episodes_upcoming(ends_key, now)
  return redis.call('ZCOUNT', ends_key, '(' .. now, '+inf')
end
