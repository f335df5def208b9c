--@include commerce/stock
--@include commerce/drop_state
-- order_settle: one status change of an order, checked against its current
-- status so each happens exactly once however many webhooks, reconcilers or
-- processes race for it.
--   paid: pending -> paid (held -> sold; the entitlements, if any, stored on
--         the order and the order added to the buyer's library); failed -> refund_due
--   failed / expire: pending -> failed (held -> left; expire only once due)
--   refunded: refund_due -> refunded; paid -> refunded (out of the library:
--             no new download links)
-- Each transition also counts itself for the event numbers (commerce.stats):
-- orders paid / failed / refunded, revenue and refunds per currency, orders
-- paid per minute, paying buyers (HyperLogLog).
-- KEYS: order, holds, created, pending, refund_due, log, head, library,
--       stats, paid per minute, buyers, then (stock, buyers) per line
-- ARGV: action, now, payment_ref, reason, receipt, refund_ref, entitlements
--       (JSON, '' for none), then (line_id, drop_id, qty) per line, same order
-- Returns {'not_found'}, {'noop', status}, {'invalid'}, {'paid'},
-- {'refund_due'}, {'refunded'} or {'failed', then (line_id, left, announced) per line}.
local order_key, holds_key, created_key, pending_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local refund_due_key, log_key, head_key, library_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local stats_key, paid_minutes_key, paying_key = KEYS[9], KEYS[10], KEYS[11]
local action, now_s, payment_ref, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local receipt, refund_ref, entitlements = ARGV[5], ARGV[6], ARGV[7]
local now = tonumber(now_s)
local FIXED_KEYS, FIXED_ARGS = 11, 7
local line_count = (#KEYS - FIXED_KEYS) / 2

-- The order's line number `line` (0-based): its stock, buyers and ARGV.
local function line_at(line)
  local k, a = FIXED_KEYS + 2 * line, FIXED_ARGS + 3 * line
  return {stock = KEYS[k + 1], buyers = KEYS[k + 2], line_id = ARGV[a + 1],
          drop_id = ARGV[a + 2], qty = tonumber(ARGV[a + 3])}
end

local o = redis.call('HMGET', order_key, 'status', 'hold_until', 'id', 'identity', 'total',
  'currency')
local st, oid, identity = o[1], o[3], o[4]
local function count(field, n) redis.call('HINCRBY', stats_key, field, n) end
if not st then return {'not_found'} end
local function unindex()
  redis.call('ZREM', holds_key, oid)
  redis.call('ZREM', created_key, oid)
  if redis.call('GET', pending_key) == oid then redis.call('DEL', pending_key) end
end
local function log(etype, extra)
  extra.order_id = oid
  extra.identity = identity
  log_append(log_key, head_key, etype, cjson.encode(extra), now_s)
end
if action == 'paid' then
  if st == 'failed' then
    redis.call('HSET', order_key, 'status', 'refund_due', 'reason', reason,
               'payment_ref', payment_ref)
    redis.call('ZADD', refund_due_key, now, oid)
    log('order.refund_due', {payment_ref = payment_ref, reason = reason})
    return {'refund_due'}
  end
  if st ~= 'pending' then return {'noop', st} end
  for line = 0, line_count - 1 do
    local l = line_at(line)
    sell_units(l.stock, l.qty)
  end
  redis.call('HSET', order_key, 'status', 'paid', 'payment_ref', payment_ref,
             'receipt', receipt, 'paid_at', now_s)
  if entitlements ~= '' then
    -- The exact files bought, once: a later upload changes the product, not this.
    redis.call('HSET', order_key, 'entitlements', entitlements)
    redis.call('ZADD', library_key, now, oid)
  end
  unindex()
  count('paid', 1)
  count('revenue:' .. string.upper(o[6]), tonumber(o[5]))
  redis.call('HINCRBY', paid_minutes_key, string.format('%d', math.floor(now / 60) * 60), 1)
  redis.call('PFADD', paying_key, identity)
  log('order.paid', {payment_ref = payment_ref})
  return {'paid'}
end
if action == 'failed' or action == 'expire' then
  if st ~= 'pending' then return {'noop', st} end
  if action == 'expire' and tonumber(o[2]) > now then return {'noop', st} end
  local out = {'failed'}
  for line = 0, line_count - 1 do
    local l = line_at(line)
    release_units(l.stock, l.buyers, identity, l.qty)
    local announced = ''
    if l.drop_id ~= '' then
      announced = announce(l.stock, l.drop_id, now, log_key, head_key) or ''
    end
    out[#out + 1] = l.line_id
    out[#out + 1] = left_of(l.stock)
    out[#out + 1] = announced
  end
  redis.call('HSET', order_key, 'status', 'failed', 'reason', reason)
  unindex()
  count('failed', 1)
  log('order.failed', {reason = reason})
  return out
end
if action == 'refunded' then
  if st ~= 'refund_due' and st ~= 'paid' then return {'noop', st} end
  redis.call('HSET', order_key, 'status', 'refunded', 'refund_ref', refund_ref)
  redis.call('ZREM', refund_due_key, oid)
  redis.call('ZREM', library_key, oid)
  count('refunded', 1)
  if st == 'paid' then
    count('refunded_paid', 1)
    count('refunds:' .. string.upper(o[6]), tonumber(o[5]))
  end
  log('order.refunded', {refund_ref = refund_ref})
  return {'refunded'}
end
return {'invalid'}
