--@include kernel/refuse
-- update: change an existing account. op "name" sets the name; "role" adds a
-- role to the comma-separated set; "signout" bumps the token generation.
-- Answers the hash after the change.
local account_key = KEYS[1]
local op, value = ARGV[1], ARGV[2]

if redis.call('EXISTS', account_key) == 0 then
  return refuse('not_found', 'no such account')
end
if op == 'name' then
  redis.call('HSET', account_key, 'name', value)
elseif op == 'role' then
  local roles = redis.call('HGET', account_key, 'roles') or ''
  local found = false
  for role in string.gmatch(roles, '[^,]+') do
    if role == value then found = true end
  end
  if not found then
    if roles == '' then roles = value else roles = roles .. ',' .. value end
    redis.call('HSET', account_key, 'roles', roles)
  end
elseif op == 'signout' then
  redis.call('HINCRBY', account_key, 'gen', 1)
else
  return refuse('invalid', 'unknown account update')
end
return redis.call('HGETALL', account_key)
