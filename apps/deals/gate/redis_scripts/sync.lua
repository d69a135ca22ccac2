--[[
sync.lua: copy the operator's flags into a deal's loaded state, unless the state already holds
flags from a newer version of the deal row.

Background tasks (the preparing beat, a rebuild) read the deal row and sync it some time later;
an operator may have paused or ended the deal in between. The row's state_version orders them:
flags from an older version are ignored, and `ended` never goes back to 0 (ending is final;
deal_sales_stop also sets it without a version).

KEYS: 1 state hash ({deal:<id>})
ARGV: 1 state_version   2 starts_at   3 ends_at (epoch ms)   4 paused (0/1)   5 ended (0/1)
      6 per_user_limit
Returns 1 when applied, 0 when the state is missing or newer (nothing changed).
]]
local state = redis.call("HMGET", KEYS[1], "remaining", "version", "ended")
if not state[1] then
  return 0
end
if tonumber(ARGV[1]) < tonumber(state[2] or "0") then
  return 0
end
local ended = ARGV[5]
if state[3] == "1" then
  ended = "1"
end
redis.call("HSET", KEYS[1], "version", ARGV[1], "starts_at", ARGV[2], "ends_at", ARGV[3],
  "paused", ARGV[4], "ended", ended, "per_user_limit", ARGV[6])
return 1
