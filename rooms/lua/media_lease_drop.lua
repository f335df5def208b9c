-- media_lease_drop: give up the room's media lease KEYS[1] if the process
-- ARGV[1] holds it with the fencing token ARGV[2]. Returns 1 when given up.
local found = redis.call('HMGET', KEYS[1], 'holder', 'token')
if found[1] == ARGV[1] and found[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
