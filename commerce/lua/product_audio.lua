--@include kernel/refuse
-- product_audio: the audio fields of a product's hash (commerce.audio), one
-- change at a time. An upload's changes carry its job id and apply only while
-- that upload is the product's latest (a newer upload supersedes it).
-- KEYS: the product's hash
-- ARGV: op, job id, value
--   set      value = JSON of the ready audio (as is; no upload involved)
--   start    a new upload is processing (value = its start, unix s)
--   progress value = 0..1, only while the upload is processing
--   ready    value = JSON of the ready audio; the upload ends ready
--   failed   value = the reason; the ready audio (if any) stays
-- Returns 1 if changed, 0 if the job is not the product's latest upload
-- (or no longer processing); refuses not_found when there is no product.
local product_key = KEYS[1]
local op, job, value = ARGV[1], ARGV[2], ARGV[3]

if redis.call('EXISTS', product_key) == 0 then
  return refuse('not_found', 'no such product')
end
if op == 'set' then
  redis.call('HSET', product_key, 'audio', value)
  return 1
end
if op == 'start' then
  redis.call('HSET', product_key, 'up_job', job, 'up_state', 'processing',
             'up_progress', '0', 'up_at', value)
  redis.call('HDEL', product_key, 'up_error')
  return 1
end
local current = redis.call('HMGET', product_key, 'up_job', 'up_state')
if current[1] ~= job or current[2] ~= 'processing' then return 0 end
if op == 'progress' then
  redis.call('HSET', product_key, 'up_progress', value)
elseif op == 'ready' then
  redis.call('HSET', product_key, 'audio', value, 'up_state', 'ready', 'up_progress', '1')
elseif op == 'failed' then
  redis.call('HSET', product_key, 'up_state', 'failed', 'up_error', value)
else
  return refuse('invalid', 'unknown audio change ' .. op)
end
return 1
