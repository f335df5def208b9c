--@include kernel/log_append
-- intent_refunded: an intent's money went back (once per intent, logged).
-- Returns 1 the first time, else 0.
local order_key, refunds_due_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member, payment_ref, refund_ref, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

redis.call('ZREM', refunds_due_key, member)
if redis.call('HSETNX', order_key, 'refund:' .. payment_ref, refund_ref) == 0 then return 0 end
local o = redis.call('HMGET', order_key, 'id', 'identity')
log_append(log_key, head_key, 'order.intent_refunded', cjson.encode({order_id = o[1],
  identity = o[2], payment_ref = payment_ref, refund_ref = refund_ref}), now)
return 1
