-- poll_is_open(poll_key, now): open, and its deadline (if any) not reached.
-- The same rule as rooms.model.Poll.state.
local function poll_is_open(poll_key, now)
  local state, closes_at = unpack(redis.call('HMGET', poll_key, 'state', 'closes_at'))
  if state ~= 'open' then return false end
  if closes_at and closes_at ~= '' and tonumber(now) >= tonumber(closes_at) then
    return false
  end
  return true
end
