--@include commerce/payment_refs
-- intent_set: the order's first PaymentIntent, set once, and only by the
-- holder of the intent claim (intent_claim's token): a claimer whose claim
-- was taken over as stale is refused. (An order never claimed, as a wave 1
-- order, has no claim to compare.)
-- Returns 1 if set, 0 if the order has an intent or another holds the claim.
local order_key = KEYS[1]
local token, payment_ref, client_secret, status = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local o = redis.call('HMGET', order_key, 'payment_ref', 'pi_claim')
if o[1] then return 0 end
if o[2] and o[2] ~= token then return 0 end
redis.call('HSET', order_key, 'payment_ref', payment_ref, 'client_secret', client_secret,
           'pi_status', status)
add_ref(order_key, payment_ref)
return 1
