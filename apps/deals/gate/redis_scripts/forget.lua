--[[
forget.lua: drop a deal's counters that can no longer be trusted (gate.deal_state_behind: the
gate came back behind PostgreSQL), keeping only a sales stop's mark.

The state hash, held units and idempotency keys go; the pending copies and the stream stay, so
the rebuild (load.lua) counts them. `ended` = 1, when present, is written back in the same step:
a stop (stop.lua) that ran before the drop must survive it, or the rebuild, reading a deal row
a natural end never changes, would reopen sales the close already counted as finished.

KEYS: 1 state hash, 2 users hash, 3 idem hash (all {deal:<id>})
ARGV: none
Returns 1 when the stop's mark was kept, else 0.
]]
local ended = redis.call("HGET", KEYS[1], "ended") == "1"
redis.call("DEL", KEYS[1], KEYS[2], KEYS[3])
if ended then
  redis.call("HSET", KEYS[1], "ended", "1")
  return 1
end
return 0
