-- drop_final: a drop whose answer to a reservation cannot change until a
-- restock: sold out with nothing held (units held in carts or awaiting
-- payment may come back; sold ones never do), or ended. Read at one instant.
-- Returns {} when neither; else {starts_at, ends_at, limit, requires_account,
-- empty ('1' or '0'), buyer, count, ...}: the buyers' counts only under a
-- per-buyer limit (they cannot move while no unit is left or held: every
-- change of them holds or releases a unit).
local drop_key, buyers_key, now = KEYS[1], KEYS[2], tonumber(ARGV[1])

local f = redis.call('HMGET', drop_key, 'tracked', 'left', 'held', 'starts_at', 'ends_at',
                     'limit', 'requires_account')
if not f[5] then return {} end
local ended = now >= tonumber(f[5])
local empty = f[1] == '1' and tonumber(f[2] or '1') == 0 and tonumber(f[3] or '1') == 0
if not ended and not empty then return {} end
local out = {f[4], f[5], f[6] or '0', f[7] or '0', empty and '1' or '0'}
if empty and tonumber(f[6] or '0') > 0 then
  for _, v in ipairs(redis.call('HGETALL', buyers_key)) do out[#out + 1] = v end
end
return out
