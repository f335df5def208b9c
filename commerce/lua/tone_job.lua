-- tone_job (commerce.tone_jobs): the record of an upload being processed,
-- with the lease of the process that runs it. A lease that ended (a killed
-- or stopped process) lets another process, or this one restarted, take it.
-- KEYS: jobs hash, leases zset, owners hash (all {shop})
-- ARGV: op, job id, owner token, lease end (unix s), now (unix s), record JSON
--   add      the record, leased to owner                          -> 1
--   claim    leased to owner if its lease ended by now            -> the record, or false
--   renew    the lease moves on if owner still holds it           -> 1 or 0
--   release  the lease ends now if owner holds it (shutting down) -> 1 or 0
--   done     record, lease and owner gone                         -> 1
local jobs_key, leases_key, owners_key = KEYS[1], KEYS[2], KEYS[3]
local op, job, owner, lease_end, now, record =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]

if op == 'add' then
  redis.call('HSET', jobs_key, job, record)
  redis.call('ZADD', leases_key, lease_end, job)
  redis.call('HSET', owners_key, job, owner)
  return 1
end
if op == 'done' then
  redis.call('HDEL', jobs_key, job)
  redis.call('ZREM', leases_key, job)
  redis.call('HDEL', owners_key, job)
  return 1
end
local held = redis.call('HGET', jobs_key, job)
if not held then
  redis.call('ZREM', leases_key, job)
  redis.call('HDEL', owners_key, job)
  return false
end
if op == 'claim' then
  local ends = tonumber(redis.call('ZSCORE', leases_key, job) or '0')
  if ends > now then return false end
  redis.call('ZADD', leases_key, lease_end, job)
  redis.call('HSET', owners_key, job, owner)
  return held
end
if redis.call('HGET', owners_key, job) ~= owner then return 0 end
if op == 'renew' then
  redis.call('ZADD', leases_key, lease_end, job)
elseif op == 'release' then
  redis.call('ZADD', leases_key, 0, job)
end
return 1
