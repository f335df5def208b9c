-- claim_email: the account id owning an address; the first caller's id wins.
local index_key = KEYS[1]
local candidate_id = ARGV[1]

redis.call('SET', index_key, candidate_id, 'NX')
return redis.call('GET', index_key)
