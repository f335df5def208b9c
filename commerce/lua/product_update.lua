-- product_update (commerce.product_edit): a product's new blob, price and
-- currency, and `delta` units added to (or taken from) its pool, only if
-- the product's blob is still `before` (else 0: the caller reads again)
-- and the pool still gives `pool_given` units (-1: stock not changed).
-- KEYS: the product. Returns 1 when written, 0 when the blob changed.
--@include kernel/refuse
local product_key = KEYS[1]
local blob, price, currency, delta, pool_given, before =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]

local current = redis.call('HGET', product_key, 'data')
if not current then
  return refuse('not_found', 'no such product')
end
if current ~= before then return 0 end
if pool_given >= 0 and redis.call('HGET', product_key, 'tracked') == '1' then
  local given = tonumber(redis.call('HGET', product_key, 'given') or '0')
  local left = tonumber(redis.call('HGET', product_key, 'left') or '0')
  if given ~= pool_given then
    return refuse('conflict', 'the stock moved while you edited it; try again')
  end
  if left + delta < 0 then
    return refuse('conflict', 'not that many units are left to take away')
  end
  redis.call('HINCRBY', product_key, 'given', delta)
  redis.call('HINCRBY', product_key, 'left', delta)
end
redis.call('HSET', product_key, 'data', blob, 'price', price, 'currency', currency)
return 1
