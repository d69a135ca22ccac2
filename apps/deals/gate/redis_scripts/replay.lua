--[[
replay.lua: take a dead-lettered reservation back into a live deal, atomically.

A dead-lettered reservation already gave its units back to the deal (gate.dead_letter_park), so
replaying it must take them again under the same rules as a purchase: enough units left and the
shopper within per_user_limit. Only then does it move from `dead` to `pending`, where the writer
(or the caller) turns it into an order row like any other accepted reservation.

KEYS (all share the hash tag {deal:<id>}):
  1 state    hash  remaining, per_user_limit, ends_at (epoch ms), ended
  2 users    hash  user_id -> units held
  3 dead     hash  order_id -> parked reservation JSON (+ failure_reason, failed_at)
  4 pending  hash  order_id -> reservation JSON
  5 released set   order ids whose units went back (the dead letter's own release is undone)
ARGV:
  1 order_id   2 now (epoch ms, supplied by the caller's clock)
Returns an array; the first element is the outcome:
  {"OK", remaining_after, reservation JSON}   moved to pending, units taken
  {"GONE"}                  no such dead letter (already replayed or discarded)
  {"NOT_LOADED"}            the deal has no state in Redis (closed, or Redis lost it)
  {"ENDED"}                 the deal is over: its unsold units go back to the product
  {"SOLD_OUT", remaining}   fewer units left than the reservation needs
  {"LIMIT", held, limit}    the shopper would go over per_user_limit
Nothing changes unless the outcome is OK.
]]
local parked = redis.call("HGET", KEYS[3], ARGV[1])
if not parked then
  return {"GONE"}
end
local state = redis.call("HMGET", KEYS[1], "remaining", "per_user_limit", "ends_at", "ended")
if not state[1] then
  return {"NOT_LOADED"}
end
if state[4] == "1" or tonumber(ARGV[2]) >= tonumber(state[3]) then
  return {"ENDED"}
end
local reservation = cjson.decode(parked)
local qty = tonumber(reservation["quantity"])
local user = reservation["user_id"]
local remaining = tonumber(state[1])
if remaining < qty then
  return {"SOLD_OUT", remaining}
end
local held = tonumber(redis.call("HGET", KEYS[2], user) or "0")
local limit = tonumber(state[2])
if held + qty > limit then
  return {"LIMIT", held, limit}
end
reservation["failure_reason"] = nil
reservation["failed_at"] = nil
local payload = cjson.encode(reservation)
remaining = redis.call("HINCRBY", KEYS[1], "remaining", -qty)
redis.call("HINCRBY", KEYS[2], user, qty)
redis.call("HSET", KEYS[4], ARGV[1], payload)
redis.call("HDEL", KEYS[3], ARGV[1])
redis.call("SREM", KEYS[5], ARGV[1])  -- held again: a later cancel must give the units back
return {"OK", remaining, payload}
