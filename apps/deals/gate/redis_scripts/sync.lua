--[[
sync.lua: copy the operator's flags into a deal's loaded state, unless the state already holds
flags from a newer version of the deal row.

Background tasks (the preparing beat, a rebuild) read the deal row and sync it some time later;
an operator may have paused or ended the deal in between. The row's state_version orders them:
flags from an older version are ignored, and `ended` never goes back to 0 (ending is final;
deal_sales_stop also sets it without a version).

KEYS: 1 state hash ({deal:<id>})
ARGV: 1 state_version
      2 the flags (JSON object of field -> value: starts_at, ends_at, paused, ended,
        per_user_limit, the waiting room's settings; apps.deals.gate.state._flags)
Returns 1 when applied, 0 when the state is missing or newer (nothing changed).
]]
local state = redis.call("HMGET", KEYS[1], "remaining", "version", "ended")
if not state[1] then
  return 0
end
if tonumber(ARGV[1]) < tonumber(state[2] or "0") then
  return 0
end
local flags = cjson.decode(ARGV[2])
if state[3] == "1" then
  flags["ended"] = 1
end
flags["version"] = ARGV[1]
for name, value in pairs(flags) do
  redis.call("HSET", KEYS[1], name, tostring(value))
end
return 1
