--@include kernel/refuse
-- hook_add: register an endpoint unless its owner already has `max` of them.
-- ARGV after `max` are the endpoint hash's field/value pairs.
local ids_key, endpoint_key = KEYS[1], KEYS[2]
local endpoint_id, max = ARGV[1], tonumber(ARGV[2])

if redis.call('SCARD', ids_key) >= max then
  return refuse('limit_reached', 'at most ' .. max .. ' webhook endpoints; delete one first')
end
redis.call('SADD', ids_key, endpoint_id)
redis.call('HSET', endpoint_key, unpack(ARGV, 3))
return 1
