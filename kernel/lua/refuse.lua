-- refuse(code, message): the one way a script says no. The error reply
-- `DR <code> <message>` becomes the matching kernel.errors.DomainError in
-- kernel.lua.Scripts.run. Refuse before changing anything.
local function refuse(code, message)
  return redis.error_reply('DR ' .. code .. ' ' .. message)
end
