--@include kernel/refuse
--@include kernel/log_append
--@include rooms/people
-- stage: one stage operation on a participant, by an actor of rank actor_rank.
-- op: raise | lower (the participant's own) | invite | remove | mute | unmute.
-- Returns {participant JSON, changed 0/1}.
local people_key, notable_key, online_key, log_key, head_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local identity, op, actor_rank, now, actor =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]

local raw = redis.call('HGET', people_key, identity)
if not raw then return refuse('not_found', 'no such participant in this room') end
local p = cjson.decode(raw)
local self_op = op == 'raise' or op == 'lower'
if not self_op and actor ~= p.identity and (RANK[p.role] or 1) > actor_rank then
  return refuse('forbidden', 'that participant outranks you')
end
if op == 'raise' then
  if p.on_stage then return refuse('conflict', 'you are already on stage') end
  if p.hand_raised then return {raw, 0} end
  p.hand_raised = true
elseif op == 'lower' then
  if not p.hand_raised then return {raw, 0} end
  p.hand_raised = false
elseif op == 'invite' then
  if p.on_stage then return {raw, 0} end
  if not redis.call('HGET', online_key, identity) then
    return refuse('conflict', 'that participant is not in the room')
  end
  p.on_stage = true
  p.hand_raised = false
  p.muted = false
elseif op == 'remove' then
  if not p.on_stage then return refuse('conflict', 'that participant is not on stage') end
  p.on_stage = false
  p.muted = false
  -- Revokes the speaker token minted at the invitation.
  p.stage_gen = (tonumber(p.stage_gen) or 0) + 1
elseif op == 'mute' or op == 'unmute' then
  if not p.on_stage then return refuse('conflict', 'that participant is not on stage') end
  local muted = op == 'mute'
  if p.muted == muted then return {raw, 0} end
  p.muted = muted
else
  return refuse('invalid', 'unknown stage operation')
end
put_person(people_key, notable_key, p)
local entry = cjson.encode({identity = p.identity, by = actor})
log_append(log_key, head_key, 'stage.' .. op, entry, now)
return {cjson.encode(p), 1}
