-- lease: hold KEYS[1] for the process whose token is ARGV[1], ARGV[2] ms:
-- taken when free, renewed when already ours. Returns 1 when held, else 0.
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
