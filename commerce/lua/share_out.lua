-- share_out (step 1 of a move, commerce.shares): take up to `want` units of
-- `field` from the source stock (-1: all) and write the move in its outbox.
-- KEYS: source stock, source outbox, source's room index (pool only)
-- Returns the units taken (a move id already in the outbox answers its units again).
local stock_key, outbox_key, rooms_key = KEYS[1], KEYS[2], KEYS[3]
local move_id, field, want, record_json, room =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]

local done = redis.call('HGET', outbox_key, move_id)
if done then return cjson.decode(done).n end
if redis.call('HGET', stock_key, 'tracked') ~= '1' then return 0 end
local have = tonumber(redis.call('HGET', stock_key, field) or '0')
local n = have
if want >= 0 and want < have then n = want end
if n <= 0 then return 0 end
redis.call('HINCRBY', stock_key, field, -n)
redis.call('HINCRBY', stock_key, 'given', -n)
local record = cjson.decode(record_json)
record.n = n
redis.call('HSET', outbox_key, move_id, cjson.encode(record))
if room ~= '' then redis.call('SADD', rooms_key, room) end
return n
