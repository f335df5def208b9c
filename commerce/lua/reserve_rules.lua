--@include kernel/refuse
-- reserve_rules: what every reservation checks before it holds a unit, the
-- same for `cart:add` (reserve.lua) and `buy:now` (buy_now.lua).
-- check_reserve(stock_key, buyers_key, slots_key, identity, qty, now, drop_id,
--               signed_in ('1' for an account, else '0'))
-- returns the stock's {price, currency, product_id, ...} or nil and the
-- refusal to return: not_found, conflict (window, not offered here),
-- unauthorized (the drop requires an account), limit_reached, sold_out.
local function check_reserve(stock_key, buyers_key, slots_key, identity, qty, now, drop_id,
                             signed_in)
  local s = redis.call('HMGET', stock_key, 'price', 'currency', 'product_id', 'tracked', 'left',
                       'starts_at', 'ends_at', 'limit', 'requires_account')
  if not s[1] then return nil, refuse('not_found', 'no such product or drop') end
  if s[6] and (now < tonumber(s[6]) or now >= tonumber(s[7])) then
    return nil, refuse('conflict', 'the drop is not live')
  end
  if drop_id == '' then
    local offered = false
    for _, v in ipairs(redis.call('HVALS', slots_key)) do
      if cjson.decode(v).product_id == s[3] then offered = true end
    end
    if not offered then
      return nil, refuse('conflict', 'that product is not offered in this room')
    end
  end
  if s[9] == '1' and signed_in ~= '1' then
    return nil, refuse('unauthorized', 'this drop requires an account: sign in to buy')
  end
  local limit = tonumber(s[8] or '0')
  if limit > 0 then
    local bought = tonumber(redis.call('HGET', buyers_key, identity) or '0')
    if bought + qty > limit then
      return nil, refuse('limit_reached', 'the per-buyer limit is reached')
    end
  end
  if s[4] == '1' and tonumber(s[5]) < qty then
    return nil, refuse('sold_out', 'not enough stock left')
  end
  return s
end
