-- share_price (commerce.product_edit): a room's share of a product takes the
-- product's new price and currency (new cart lines); nothing if no share.
-- KEYS: the share. Returns 1 if changed.
local share_key = KEYS[1]
local price, currency = ARGV[1], ARGV[2]

if redis.call('EXISTS', share_key) == 0 then return 0 end
redis.call('HSET', share_key, 'price', price, 'currency', currency)
return 1
