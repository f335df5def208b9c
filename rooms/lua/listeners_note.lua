-- note_listeners(role_counts_key, stats_key, minutes_key, now): the event
-- numbers' listener figures, kept as presence changes (rooms.stats): the peak
-- of listeners at once, and the most present in the current minute.
-- Returns the listeners now.
local function note_listeners(role_counts_key, stats_key, minutes_key, now)
  local n = tonumber(redis.call('HGET', role_counts_key, 'listener') or '0')
  if n < 0 then n = 0 end
  if n > tonumber(redis.call('HGET', stats_key, 'peak') or '0') then
    redis.call('HSET', stats_key, 'peak', n)
  end
  local minute = string.format('%d', math.floor(tonumber(now) / 60) * 60)
  if n > tonumber(redis.call('HGET', minutes_key, minute) or '-1') then
    redis.call('HSET', minutes_key, minute, n)
  end
  return n
end
