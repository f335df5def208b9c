-- order_details (checkout:start resuming an order): a pending order takes the
-- buyer's details it lacks; what it has stays (a resumed checkout never
-- rewrites the address an order was placed with).
-- KEYS: order. ARGV: email ('' = none), shipping JSON ('' = none).
-- Returns 1 if a detail was added, else 0.
local order_key = KEYS[1]
local email, shipping = ARGV[1], ARGV[2]

if redis.call('HGET', order_key, 'status') ~= 'pending' then return 0 end
local added = 0
if email ~= '' then added = added + redis.call('HSETNX', order_key, 'email', email) end
if shipping ~= '' then added = added + redis.call('HSETNX', order_key, 'shipping', shipping) end
return added
