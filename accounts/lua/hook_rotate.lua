--@include kernel/refuse
-- hook_rotate: a new secret for an endpoint; the one it replaces keeps
-- signing (beside the new one) until `previous_until`.
local endpoint_key = KEYS[1]
local secret, previous_until = ARGV[1], ARGV[2]

local current = redis.call('HGET', endpoint_key, 'secret')
if not current then
  return refuse('not_found', 'no such webhook')
end
redis.call('HSET', endpoint_key, 'secret', secret, 'previous_secret', current,
  'previous_until', previous_until)
return 1
