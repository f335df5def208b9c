-- Generated from rooms.roles.Role by rooms.roles.lua_ranks(); tests/test_rooms_rules.py checks it.
local RANK = {listener = 1, speaker = 2, moderator = 3, host = 4}
