-- share_ensure: the room's (empty) share of a product, made once.
-- Returns 1 if made, 0 if it existed.
local share_key = KEYS[1]
local product_id, price, currency, tracked = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('EXISTS', share_key) == 1 then return 0 end
redis.call('HSET', share_key, 'product_id', product_id, 'price', price, 'currency', currency,
           'tracked', tracked, 'given', 0, 'left', 0, 'held', 0, 'sold', 0)
return 1
