-- ensure: the account hash exists (fields set only where missing, so a
-- repeated or concurrent call changes nothing); answers the hash.
local account_key = KEYS[1]
local account_id, email, now = ARGV[1], ARGV[2], ARGV[3]

redis.call('HSETNX', account_key, 'id', account_id)
redis.call('HSETNX', account_key, 'email', email)
redis.call('HSETNX', account_key, 'roles', '')
redis.call('HSETNX', account_key, 'gen', 0)
redis.call('HSETNX', account_key, 'created_at', now)
return redis.call('HGETALL', account_key)
