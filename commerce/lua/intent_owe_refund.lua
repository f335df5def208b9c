-- intent_owe_refund: an intent of this order owes its money back (once: not
-- if already refunded). Returns 1 if newly owed, else 0.
local order_key, refunds_due_key = KEYS[1], KEYS[2]
local member, payment_ref, now = ARGV[1], ARGV[2], ARGV[3]

if redis.call('HEXISTS', order_key, 'refund:' .. payment_ref) == 1 then return 0 end
redis.call('ZADD', refunds_due_key, 'NX', now, member)
return 1
