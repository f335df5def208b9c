--@include kernel/log_append
-- slot_set (slot:pin / slot:unpin): show a product in a numbered slot of the
-- room, or empty it (value ''), with its log entry.
-- Returns 1, or 0 when unpinning a slot that is empty.
local slots_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3]
local slot, value, now = ARGV[1], ARGV[2], ARGV[3]

local had = redis.call('HEXISTS', slots_key, slot)
if value == '' then
  if had == 0 then return 0 end
  redis.call('HDEL', slots_key, slot)
  log_append(log_key, head_key, 'slot.unpinned', cjson.encode({slot = tonumber(slot)}), now)
else
  redis.call('HSET', slots_key, slot, value)
  local v = cjson.decode(value)
  v.slot = tonumber(slot)
  log_append(log_key, head_key, 'slot.pinned', cjson.encode(v), now)
end
return 1
