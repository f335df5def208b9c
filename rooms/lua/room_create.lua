--@include kernel/refuse
--@include kernel/log_append
-- room_create: a new room, refused when the id is taken. Returns 1.
local room_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3]
local id, title, modules_json, guests, live, now, owner =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

if redis.call('EXISTS', room_key) == 1 then
  return refuse('conflict', 'a room with that id exists')
end
redis.call('HSET', room_key, 'id', id, 'title', title, 'modules', modules_json,
           'guests', guests, 'live', live, 'created_at', now, 'owner', owner)
log_append(log_key, head_key, 'room.created',
           cjson.encode({id = id, title = title, modules = cjson.decode(modules_json),
                         guests = guests == '1', owner = owner}), now)
return 1
