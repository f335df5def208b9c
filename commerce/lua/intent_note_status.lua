-- intent_note_status: what the order's current intent last said (a status
-- of an older intent is ignored). Returns 1 if noted, else 0.
local order_key = KEYS[1]
local payment_ref, status = ARGV[1], ARGV[2]

if redis.call('HGET', order_key, 'payment_ref') ~= payment_ref then return 0 end
redis.call('HSET', order_key, 'pi_status', status)
return 1
