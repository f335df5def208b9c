-- tone_end: the tone of product ARGV[1] played to its end in the room's mix.
-- KEYS[1] is the room's tone ({room:<id>}:tone, JSON {product_id, ends_at}).
-- Cleared when it still names that product; left alone when it names another
-- (a newer tone replaced it). Returns 1 when the room is to hear it stopped
-- (cleared, or already gone with its ttl), 0 when another tone plays now.
local key = KEYS[1]
local product_id = ARGV[1]
local current = redis.call('GET', key)
if not current then
  return 1
end
if cjson.decode(current)['product_id'] ~= product_id then
  return 0
end
redis.call('DEL', key)
return 1
