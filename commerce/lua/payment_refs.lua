-- add_ref(order_key, ref): append an intent id to the order's history
-- (`payment_refs`; a wave 1 order starts it from its `payment_ref`).
local function add_ref(order_key, ref)
  local refs = redis.call('HGET', order_key, 'payment_refs')
  if not refs then refs = redis.call('HGET', order_key, 'payment_ref') or '' end
  local joined = (refs .. ' ' .. ref):gsub('^ ', '')
  redis.call('HSET', order_key, 'payment_refs', joined)
end
