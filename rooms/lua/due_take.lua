-- due_take: removes `member` from a due index only if it is still due at
-- `score` (a change that moved it meanwhile keeps its new time). Returns 1
-- if removed.
local due_key = KEYS[1]
local member, score = ARGV[1], ARGV[2]

local current = redis.call('ZSCORE', due_key, member)
if current and tonumber(current) == tonumber(score) then
  redis.call('ZREM', due_key, member)
  return 1
end
return 0
