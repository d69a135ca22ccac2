--[[
release.lua: give units back to a live deal (a cancelled or failed order), atomically.

KEYS: 1 state hash, 2 users hash, 3 pending hash, 4 released set (all {deal:<id>})
ARGV: 1 user_id, 2 quantity, 3 order_id (its pending entry, if any, is dropped)
Returns {"OK", remaining_after}, {"ALREADY"} when this order's units were already given back
(a release is done once per order: a retried call, or one that lands after reconciliation
already counted it, changes nothing), or {"NOT_LOADED"} when the deal has no state in Redis
(the caller then returns the units in PostgreSQL only). Never raises remaining above
deal_stock and never takes a user's held units below zero.
]]
if redis.call("EXISTS", KEYS[1]) == 0 then
  return {"NOT_LOADED"}
end
if redis.call("SADD", KEYS[4], ARGV[3]) == 0 then
  return {"ALREADY"}
end
local qty = tonumber(ARGV[2])
local held = tonumber(redis.call("HGET", KEYS[2], ARGV[1]) or "0")
local give = math.min(qty, held)
if give > 0 then
  if held - give == 0 then
    redis.call("HDEL", KEYS[2], ARGV[1])
  else
    redis.call("HINCRBY", KEYS[2], ARGV[1], -give)
  end
end
local stock = tonumber(redis.call("HGET", KEYS[1], "deal_stock"))
local remaining = tonumber(redis.call("HGET", KEYS[1], "remaining"))
local back = math.min(qty, stock - remaining)
remaining = redis.call("HINCRBY", KEYS[1], "remaining", back)
redis.call("HDEL", KEYS[3], ARGV[3])
return {"OK", remaining}
