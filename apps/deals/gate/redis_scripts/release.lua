--[[
release.lua: give units back to a live deal (a cancelled or failed order), atomically.

KEYS: 1 state hash, 2 users hash, 3 pending hash, 4 released set, 5 idem hash (all {deal:<id>})
      6 (optional, with ARGV 4) the shopper's Idempotency-Key claim (reserve.lua's KEYS 14,
        passed where the gate is one server): forgetting the key also takes this order off the
        claim ("<hash>|<order_id>" -> "<hash>": the key stays bound to its body), or reserve.lua
        would answer the retry with this order, which will never exist
ARGV: 1 user_id, 2 quantity, 3 order_id, 4 idempotency field to forget ("" for none: a
      purchase whose order could not be written frees its key, so a retry is a new purchase;
      a cancelled order keeps it, so a retry finds the cancelled order)
Returns {"OK", remaining_after}, {"ALREADY"} when this order's units were already given back
(a release is done once per order: a retried call, or one that lands after reconciliation
already counted it, changes nothing), or {"NOT_LOADED"} when the deal has no state in Redis
(the caller then returns the units in PostgreSQL only). Never raises remaining above
deal_stock and never takes a user's held units below zero.

Whatever the answer, the order is marked released and its pending copy dropped: with the state
missing, a rebuild counts from PostgreSQL (where the order no longer holds units), and a copy
left in `pending` would be written later as if it were still sold. Everything is read, and
every number checked (an error reply otherwise), before anything is written: Redis does not
undo the writes of a script that fails halfway, so an error can't leave half a release.

With the state missing the mark is made to expire (MISSING_STATE_MARK_TTL, as long as a closed
deal's tombstone): the deal may be closed, its keys gone for good, and a late release (a cancel
committed just before the close, released on commit) must not leave a set behind for ever.
load.lua makes the set permanent again when it installs the state (the marks then last as long
as the deal's other keys, which the close deletes).
]]
local MISSING_STATE_MARK_TTL = 7 * 24 * 3600  -- seconds; gate/state.py TOMBSTONE_SECONDS
local qty = tonumber(ARGV[2])
local state = redis.call("HMGET", KEYS[1], "remaining", "deal_stock")
if not qty or (state[1] and not (tonumber(state[1]) and tonumber(state[2]))) then
  return redis.error_reply("ERR release.lua: ARGV 2, remaining and deal_stock must be numbers")
end
local held = tonumber(redis.call("HGET", KEYS[2], ARGV[1]) or "0")
local first = redis.call("SADD", KEYS[4], ARGV[3]) == 1
if not state[1] then
  redis.call("EXPIRE", KEYS[4], MISSING_STATE_MARK_TTL)
end
redis.call("HDEL", KEYS[3], ARGV[3])
if ARGV[4] ~= "" then
  redis.call("HDEL", KEYS[5], ARGV[4])
  local bound = KEYS[6] and redis.call("GET", KEYS[6])
  local suffix = "|" .. ARGV[3]
  if bound and string.sub(bound, -#suffix) == suffix then
    redis.call("SET", KEYS[6], string.sub(bound, 1, #bound - #suffix), "KEEPTTL")
  end
end
if not state[1] then
  return {"NOT_LOADED"}
end
if not first then
  return {"ALREADY"}
end
local give = math.min(qty, held)
if give > 0 then
  if held - give == 0 then
    redis.call("HDEL", KEYS[2], ARGV[1])
  else
    redis.call("HINCRBY", KEYS[2], ARGV[1], -give)
  end
end
local back = math.min(qty, tonumber(state[2]) - tonumber(state[1]))
local remaining = redis.call("HINCRBY", KEYS[1], "remaining", back)
return {"OK", remaining}
