-- order_claim_check: claim a scheduled Stripe call about an order (one
-- process at a time: its score in the index is at most `cutoff`) and push its
-- next one back, exponentially per order (count in the order's `checks`).
-- Returns 1 if claimed, else 0.
local index_key, order_key = KEYS[1], KEYS[2]
local member, cutoff, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local first_s, max_s, offset = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local score = redis.call('ZSCORE', index_key, member)
if not score or tonumber(score) > cutoff then return 0 end
local n = 0
if redis.call('EXISTS', order_key) == 1 then n = redis.call('HINCRBY', order_key, 'checks', 1) end
local delay = math.min(max_s, first_s * 2 ^ math.min(n, 20))
redis.call('ZADD', index_key, now + delay - offset, member)
return 1
