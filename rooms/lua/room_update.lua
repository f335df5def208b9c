--@include kernel/refuse
--@include kernel/log_append
-- room_update: sets the room's fields (changes_json: field -> string value).
-- Returns 1.
local room_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3]
local changes_json, now = ARGV[1], ARGV[2]

if redis.call('EXISTS', room_key) == 0 then return refuse('not_found', 'no such room') end
local changes = cjson.decode(changes_json)
for field, value in pairs(changes) do redis.call('HSET', room_key, field, value) end
log_append(log_key, head_key, 'room.updated', changes_json, now)
return 1
