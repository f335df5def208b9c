--@include commerce/payment_refs
-- intent_replace: another card for a pending order, only from the intent
-- the caller saw (`replaced`). Returns 1 if swapped, else 0.
local order_key = KEYS[1]
local replaced, payment_ref, client_secret, status = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local o = redis.call('HMGET', order_key, 'status', 'payment_ref')
if o[1] ~= 'pending' or o[2] ~= replaced then return 0 end
redis.call('HSET', order_key, 'payment_ref', payment_ref, 'client_secret', client_secret,
           'pi_status', status)
add_ref(order_key, payment_ref)
return 1
