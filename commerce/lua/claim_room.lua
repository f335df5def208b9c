-- claim_room (POST /auth/claim, once per room the guest ordered in): the
-- guest identity's orders in this room become the account's, in one step.
--   orders: their `identity` becomes the account (so settling, releasing and
--     order:updated follow the account), `claimed_from` keeps the guest;
--     the guest's order index moves to the account's;
--   pending pointer: the account takes the guest's if it has none;
--   per-buyer counters (drop and product buyers): the account's count grows
--     by what the guest holds outside its cart (pending or paid), and the
--     guest's count stays, so neither identity can buy the limit again: a
--     claim never doubles a limit (cart units stay the guest's: they come
--     back to the guest's count when the cart expires or is checked out);
--   library (entitlements): the guest's entries are added to the account's.
-- KEYS: guest orders, account orders, guest pending, account pending,
--       guest cart, guest library, account library,
--       then n_orders order keys, then the buyers keys
-- ARGV: guest, account, n_orders, then (line id) per buyers key, same order
-- Returns {moved orders, merged units}.
local guest_orders, acct_orders, guest_pending, acct_pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local guest_cart, guest_lib, acct_lib = KEYS[5], KEYS[6], KEYS[7]
local guest, account, n_orders = ARGV[1], ARGV[2], tonumber(ARGV[3])
local FIXED_KEYS, FIXED_ARGS = 7, 3

local moved = 0
for i = 1, n_orders do
  local order_key = KEYS[FIXED_KEYS + i]
  local o = redis.call('HMGET', order_key, 'identity', 'id', 'created_at')
  if o[1] == guest then
    redis.call('HSET', order_key, 'identity', account, 'claimed_from', guest)
    redis.call('ZADD', acct_orders, o[3], o[2])
    redis.call('ZREM', guest_orders, o[2])
    moved = moved + 1
  end
end

local pending = redis.call('GET', guest_pending)
if pending then
  redis.call('SET', acct_pending, pending, 'NX')
  redis.call('DEL', guest_pending)
end

local merged = 0
for i = FIXED_KEYS + n_orders + 1, #KEYS do
  local buyers_key, line_id = KEYS[i], ARGV[FIXED_ARGS + i - FIXED_KEYS - n_orders]
  local held = tonumber(redis.call('HGET', buyers_key, guest) or '0')
  local raw = redis.call('HGET', guest_cart, 'line:' .. line_id)
  if raw then held = held - cjson.decode(raw).qty end
  if held > 0 then
    redis.call('HINCRBY', buyers_key, account, held)
    merged = merged + held
  end
end

local kind = redis.call('TYPE', guest_lib)['ok']
if kind == 'zset' then
  local z = redis.call('ZRANGE', guest_lib, 0, -1, 'WITHSCORES')
  for j = 1, #z, 2 do redis.call('ZADD', acct_lib, 'NX', z[j + 1], z[j]) end
elseif kind == 'set' then
  for _, member in ipairs(redis.call('SMEMBERS', guest_lib)) do
    redis.call('SADD', acct_lib, member)
  end
elseif kind == 'hash' then
  local h = redis.call('HGETALL', guest_lib)
  for j = 1, #h, 2 do redis.call('HSETNX', acct_lib, h[j], h[j + 1]) end
end
return {moved, merged}
