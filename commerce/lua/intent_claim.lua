-- intent_claim: claim the right to create the order's PaymentIntent (one
-- creator at a time; a claim older than stale_after_s is taken over, its
-- holder presumed dead). Only the holder of the claim's token may then set
-- the intent (intent_set).
-- Returns {'has', payment_ref}, {'busy'} or {'claimed'}.
local order_key = KEYS[1]
local token, now, stale_after_s = ARGV[1], ARGV[2], tonumber(ARGV[3])

local o = redis.call('HMGET', order_key, 'payment_ref', 'pi_claim', 'pi_claim_at')
if o[1] then return {'has', o[1]} end
if o[2] and tonumber(o[3]) + stale_after_s > tonumber(now) then return {'busy'} end
redis.call('HSET', order_key, 'pi_claim', token, 'pi_claim_at', now)
return {'claimed'}
