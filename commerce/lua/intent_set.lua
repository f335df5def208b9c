--@include commerce/payment_refs
-- intent_set: the order's first PaymentIntent, set once.
-- Returns 1 if set, 0 if the order has an intent already.
local order_key = KEYS[1]
local token, payment_ref, client_secret, status = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('HGET', order_key, 'payment_ref') then return 0 end
redis.call('HSET', order_key, 'payment_ref', payment_ref, 'client_secret', client_secret,
           'pi_status', status)
add_ref(order_key, payment_ref)
return 1
