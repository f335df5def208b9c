--@include kernel/log_append
-- chat: the message goes first in the room's chat list, which keeps `keep`.
-- Returns 1.
local chat_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3]
local message_json, now, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])

redis.call('LPUSH', chat_key, message_json)
redis.call('LTRIM', chat_key, 0, keep - 1)
log_append(log_key, head_key, 'chat.sent', message_json, now)
return 1
