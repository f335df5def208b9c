-- media_lease: hold the room's media lease KEYS[1] (fencing counter KEYS[2])
-- for the process ARGV[1] for ARGV[2] ms, announcing ARGV[3] as its endpoint.
-- Taken when free (with the next fencing token), renewed when already ours,
-- left alone when another process holds it.
-- Returns {held 0/1, holder, token, endpoint} of whoever holds it now.
local holder = redis.call('HGET', KEYS[1], 'holder')
if not holder then
  local token = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token, 'endpoint', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, ARGV[1], token, ARGV[3]}
end
local found = redis.call('HMGET', KEYS[1], 'token', 'endpoint')
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, holder, tonumber(found[1]), found[2]}
end
return {0, holder, tonumber(found[1]), found[2]}
