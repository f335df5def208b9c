--@include commerce/stock
--@include commerce/drop_state
-- expire_cart (the sweeper): a cart whose time is up gives every line's
-- units back and goes. The version check makes the caller's view of the
-- lines (hence the per-line KEYS) current.
-- KEYS: cart, carts expiry, log, head, then (stock, buyers) per line
-- ARGV: identity, now, version, then (line_id, drop_id) per line, same order
-- Returns {'gone'}, {'stale'}, {'not_due'} or
-- {'ok', then (line_id, left, announced state or '') per line}.
local cart_key, expiry_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local identity, now, version = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local FIXED_KEYS, FIXED_ARGS = 4, 3

local c = redis.call('HMGET', cart_key, 'v', 'expires_at')
if not c[1] then redis.call('ZREM', expiry_key, identity) return {'gone'} end
if c[1] ~= version then return {'stale'} end
if tonumber(c[2]) > now then return {'not_due'} end
local out = {'ok'}
for line = 0, (#KEYS - FIXED_KEYS) / 2 - 1 do
  local stock, buyers = KEYS[FIXED_KEYS + 2 * line + 1], KEYS[FIXED_KEYS + 2 * line + 2]
  local line_id, drop_id = ARGV[FIXED_ARGS + 2 * line + 1], ARGV[FIXED_ARGS + 2 * line + 2]
  local raw = redis.call('HGET', cart_key, 'line:' .. line_id)
  if raw then release_units(stock, buyers, identity, cjson.decode(raw).qty) end
  local announced = ''
  if drop_id ~= '' then announced = announce(stock, drop_id, now, log_key, head_key) or '' end
  out[#out + 1] = line_id
  out[#out + 1] = left_of(stock)
  out[#out + 1] = announced
end
redis.call('DEL', cart_key)
redis.call('ZREM', expiry_key, identity)
return out
