--@include kernel/log_append
-- drop_state(starts, ends, left, now): the drop's state, derived exactly like
-- commerce.drops.derive_state (tests/test_lua_rules.py compares the two).
local function drop_state(starts, ends, left, now)
  if now >= ends then return 'ended' end
  if now < starts then return 'scheduled' end
  if left <= 0 then return 'sold_out' end
  return 'live'
end

-- announce(drop_key, drop_id, now, log_key, head_key): log the drop's state
-- if it changed since last announced; returns the new state or false.
local function announce(drop_key, drop_id, now, log_key, head_key)
  local f = redis.call('HMGET', drop_key, 'starts_at', 'ends_at', 'left', 'announced', 'given')
  if not f[1] then return false end
  local s = drop_state(tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), now)
  if s == f[4] then return false end
  redis.call('HSET', drop_key, 'announced', s)
  -- The report's time to sell out: the first time no unit was left.
  if s == 'sold_out' then redis.call('HSETNX', drop_key, 'sold_out_at', tostring(now)) end
  log_append(log_key, head_key, 'drop.' .. s,
    cjson.encode({drop_id = drop_id, remaining = tonumber(f[3]), stock = tonumber(f[5])}),
    tostring(now))
  return s
end
