-- log_append(stream_key, head_key, etype, data_json, ts): the room's (or the
-- shop's) hash-chained event log, appended inside the script that makes the
-- change. The head key keeps the last hash so an append is O(1) and survives
-- trimming. The first entry's prev is GENESIS (kernel.eventlog.GENESIS).
local function log_append(stream_key, head_key, etype, data, ts)
  local prev = redis.call('GET', head_key) or '0000000000000000000000000000000000000000'
  local h = redis.sha1hex(prev .. '\n' .. etype .. '\n' .. data .. '\n' .. ts)
  redis.call('XADD', stream_key, '*', 'type', etype, 'data', data, 'ts', ts,
             'prev', prev, 'hash', h)
  redis.call('SET', head_key, h)
  return h
end
