-- The room's people: a participant is one JSON value in the people hash, and
-- the notable set holds who the snapshot always lists (staff, stage, hands).
--@include rooms/ranks
local function is_notable(p)
  return p.role ~= 'listener' or p.on_stage or p.hand_raised
end
local function put_person(people_key, notable_key, p)
  redis.call('HSET', people_key, p.identity, cjson.encode(p))
  if is_notable(p) then
    redis.call('SADD', notable_key, p.identity)
  else
    redis.call('SREM', notable_key, p.identity)
  end
end
