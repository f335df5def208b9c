-- product_create (admin): a product's hash, with its pool of `given` units
-- when its stock is tracked. Returns 1, or 0 if the product exists already.
local product_key = KEYS[1]
local blob, tracked, given, price, currency, product_id =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

if redis.call('EXISTS', product_key) == 1 then return 0 end
redis.call('HSET', product_key, 'data', blob, 'tracked', tracked, 'price', price,
           'currency', currency, 'product_id', product_id)
if tracked == '1' then
  redis.call('HSET', product_key, 'given', given, 'left', given, 'held', 0, 'sold', 0)
end
return 1
