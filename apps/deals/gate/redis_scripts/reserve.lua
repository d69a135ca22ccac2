--[[
reserve.lua: the whole purchase decision for one deal, atomically.

KEYS (all share the hash tag {deal:<id>}):
  1 state    hash  remaining, per_user_limit, starts_at, ends_at (epoch ms), paused, ended,
                   accepted (purchases ever accepted, counted up here on OK)
  2 users    hash  user_id -> units held
  3 idem     hash  "<user_id>:<key>" -> "<order_id>|<request hash>"
  4 pending  hash  order_id -> reservation JSON (until PostgreSQL has the order)
  5 stream   stream of reservations for the batch writer (async mode only)
  6 drain    string kick-once flag for the writer
  7 rate     hash  this minute's answers per second ("a:<sec>" accepted, "r:<sec>" refused)
  8 outcomes hash  answers per outcome (accepted, sold_out, limit, not_active, not_admitted,
                   other)
  9-13             the waiting room's queue, tickets, admitted, expiry and room (room_lib.lua):
                   with the room on (state field `room`), a purchase needs the shopper's
                   outstanding admission, and consumes it
  14 claim   string (optional) the shopper's Idempotency-Key claim, bound to one request body
                   across all of their orders (apps/deals/gate/idempotency.py): "<request hash>",
                   or "<request hash>|<order_id>" once this script accepted a purchase with it.
                   Its hash tag is the shopper's, not the deal's: passed only where the gate's
                   keys all live on one server (not a cluster), so the claim costs no round trip
                   and no fsync of its own. Elsewhere the caller takes the claim first and passes
                   13 keys. The order it names answers a retry whose key the idem hash no longer
                   knows (the hash lost, a rebuild): a second reservation would be a second order
                   for one key, parked or refused later by PostgreSQL's unique constraint.
ARGV:
  1 user_id   2 quantity   3 idempotency key ("" for none)   4 request hash
  5 order_id (pre-issued by the server)   6 now (epoch ms, supplied by the caller's clock)
  7 reservation JSON from the caller (user, quantity, shipping, ...); the script adds the
    deal's deal_id, product_id, product_name and unit_price from the state hash
  8 mode: "async" appends to the stream, "sync" does not
  9 drain flag TTL (seconds)   10 product_id the shopper asked for
  11 rate hash TTL   12 outcomes hash TTL (seconds)   13 the claim's TTL (used with KEYS 14)
  14 the admission's "admitted at" (epoch ms) from the shopper's signed admission, "" for none
     (the caller has checked the signature, apps/deals/gate/room.py)
  15 the W3C traceparent of the caller's span ("" or absent: tracing off), stored in the stream
     entry as field "t" so the writer's span joins the purchase's trace (apps/core/tracing.py)
Returns an array; the first element is the outcome:
  {"OK", order_id, remaining_after, kick, reservation JSON}
                             kick = 1 when the caller must start a writer
  {"DUPLICATE", order_id}    same user + key + body seen: the existing order (from the idem
                             hash, or from the claim, KEYS 14, when the hash no longer has it)
  {"KEY_REUSED", order_id}   same user + key, different body ("" when the claim, KEYS 14,
                             knows the key from another deal or a regular order)
  {"NOT_LOADED"}             no state in Redis (never published, or Redis lost it): fail closed
  {"WRONG_PRODUCT"}          the deal is for another product
  {"NOT_STARTED"} {"ENDED"} {"PAUSED"}
  {"SOLD_OUT"}               nothing left
  {"INSUFFICIENT", remaining} fewer units left than asked for
  {"LIMIT", held, limit}     the user would go over per_user_limit
  {"NO_ADMISSION"}           the room is on and the shopper holds no such admission (none, used,
                             lapsed, revoked, or another one)
The stock and per-user-limit checks sit between the lines "-- checks: begin" and
"-- checks: end". The negative control (the test-only setting GATE_UNSAFE_SPLIT_RESERVE,
apps/deals/gate/reserve.py) checks in a read of its own and then runs this file with that block
cut out, so it races the gate's own script rather than a copy; the script production loads has
no switch that skips them. Keep the markers, and nothing the lines after them need, inside it. The admission check sits
between "-- admission: begin" and "-- admission: end" for the same reason: its negative control
(WAITING_ROOM_UNSAFE_SKIP_ADMISSION) runs this file with that block cut out. So does the claim's
order (between "-- claim order: begin" and "-- claim order: end"): its negative control
(GATE_UNSAFE_SKIP_CLAIM_ORDER) accepts a keyed retry again once the idem hash lost its key.
A malformed argument (a number that isn't one, ARGV 7 not a JSON object) is an error reply
and changes nothing: Redis does not undo the writes of a script that fails halfway, so every
argument is checked, and the reservation decoded, before the first write.
The clock is the web server's (ARGV 6), so tests can pin it and Redis replicas agree.
Every answer but NOT_LOADED is counted in KEYS 7 and 8 for the operator console, inside this
same call, so counting costs purchases no extra round trip.
]]
local now, qty = tonumber(ARGV[6]), tonumber(ARGV[2])
local drain_ttl, rate_ttl, outcomes_ttl = tonumber(ARGV[9]), tonumber(ARGV[11]), tonumber(ARGV[12])
if not (now and qty and drain_ttl and rate_ttl and outcomes_ttl) then
  return redis.error_reply("ERR reserve.lua: ARGV 2, 6, 9, 11 and 12 must be numbers")
end
local OUTCOME = {
  OK = "accepted", DUPLICATE = "accepted", SOLD_OUT = "sold_out", INSUFFICIENT = "sold_out",
  LIMIT = "limit", NOT_STARTED = "not_active", ENDED = "not_active", PAUSED = "not_active",
  KEY_REUSED = "other", WRONG_PRODUCT = "other", NO_ADMISSION = "not_admitted",
}
local claim_bind = nil  -- with KEYS 14: "new" (bind it) or "bare" (bound, no order yet)
local function answer(reply)
  if claim_bind and (claim_bind == "new" or reply[1] == "OK") then
    -- The claim binds the key to this body whatever the answer; an accepted purchase also
    -- leaves its order there (one SET, inside this call: no round trip, no fsync of its own).
    local value = reply[1] == "OK" and ARGV[4] .. "|" .. ARGV[5] or ARGV[4]
    if claim_bind == "new" then
      redis.call("SET", KEYS[14], value, "EX", tonumber(ARGV[13]))
    else
      redis.call("SET", KEYS[14], value, "KEEPTTL")
    end
  end
  local outcome = OUTCOME[reply[1]]
  local kind = outcome == "accepted" and "a:" or "r:"
  redis.call("HINCRBY", KEYS[7], kind .. (math.floor(now / 1000) % 60), 1)
  redis.call("EXPIRE", KEYS[7], rate_ttl)
  redis.call("HINCRBY", KEYS[8], outcome, 1)
  redis.call("EXPIRE", KEYS[8], outcomes_ttl)
  return reply
end

local state = redis.call("HMGET", KEYS[1], "remaining", "per_user_limit", "starts_at", "ends_at",
  "paused", "ended", "deal_id", "product_id", "product_name", "unit_price", "accepted", "room",
  "room_overbook")
if not state[1] then
  return {"NOT_LOADED"}
end

local claimed_order = nil  -- the order the claim says this key and body already have
if #KEYS >= 14 then  -- the claim binds the key to this body, whatever the answer below
  if not tonumber(ARGV[13]) then
    return redis.error_reply("ERR reserve.lua: ARGV 13 must be a number with KEYS 14")
  end
  local bound = redis.call("GET", KEYS[14])
  if not bound then
    claim_bind = "new"
  else
    local sep = string.find(bound, "|", 1, true)
    if (sep and string.sub(bound, 1, sep - 1) or bound) ~= ARGV[4] then
      return answer({"KEY_REUSED", ""})
    end
    if sep then
      claimed_order = string.sub(bound, sep + 1)
    else
      claim_bind = "bare"
    end
  end
end

if state[8] ~= ARGV[10] then
  return answer({"WRONG_PRODUCT"})
end

local user, key = ARGV[1], ARGV[3]
if key ~= "" then
  local seen = redis.call("HGET", KEYS[3], user .. ":" .. key)
  if seen then
    local sep = string.find(seen, "|", 1, true)
    local order_id = string.sub(seen, 1, sep - 1)
    if string.sub(seen, sep + 1) ~= ARGV[4] then
      return answer({"KEY_REUSED", order_id})
    end
    return answer({"DUPLICATE", order_id})
  end
end
-- claim order: begin (its negative control cuts from here to "claim order: end", see above)
if claimed_order then  -- the idem hash lost the key (a fault, a rebuild): the claim names it
  return answer({"DUPLICATE", claimed_order})
end
-- claim order: end

if state[6] == "1" or now >= tonumber(state[4]) then
  return answer({"ENDED"})
end
if state[5] == "1" then
  return answer({"PAUSED"})
end
if now < tonumber(state[3]) then
  return answer({"NOT_STARTED"})
end

-- checks: begin (the negative control's variant cuts from here to "checks: end", see above)
local left = tonumber(state[1])
if left <= 0 then
  return answer({"SOLD_OUT"})
end
if left < qty then
  return answer({"INSUFFICIENT", left})
end
local held = tonumber(redis.call("HGET", KEYS[2], user) or "0")
local limit = tonumber(state[2])
if held + qty > limit then
  return answer({"LIMIT", held, limit})
end
-- checks: end

-- admission: begin (the binding's negative control cuts from here to "admission: end")
if state[12] == "1" then
  local admission = ARGV[14] ~= "" and redis.call("HGET", KEYS[11], user)
  if not admission or string.sub(admission, 1, #ARGV[14] + 1) ~= ARGV[14] .. "|" then
    return answer({"NO_ADMISSION"})
  end
  if tonumber(string.match(admission, "^[^|]*|([^|]*)")) <= now then
    return answer({"NO_ADMISSION"})  -- lapsed; queue.lua frees its slot at its next step
  end
end
-- admission: end

-- Decoded before the first write below (see the header): an error past here would leave half
-- a purchase.
local decoded, reservation = pcall(cjson.decode, ARGV[7])
if not decoded or type(reservation) ~= "table" then
  return redis.error_reply("ERR reserve.lua: ARGV 7 is not a JSON object")
end
reservation["deal_id"] = state[7]
reservation["product_id"] = state[8]
reservation["product_name"] = state[9]
reservation["unit_price"] = tonumber(state[10])
local payload = cjson.encode(reservation)

local remaining = redis.call("HINCRBY", KEYS[1], "remaining", -qty)
if state[11] then  -- a state loaded before the count existed has none: don't start one at 1
  redis.call("HINCRBY", KEYS[1], "accepted", 1)  -- compared with PostgreSQL: deal_state_behind
end
redis.call("HINCRBY", KEYS[2], user, qty)
if key ~= "" then
  redis.call("HSET", KEYS[3], user .. ":" .. key, ARGV[5] .. "|" .. ARGV[4])
end
redis.call("HSET", KEYS[4], ARGV[5], payload)
local kick = 0
if ARGV[8] == "async" then
  if ARGV[15] and ARGV[15] ~= "" then
    redis.call("XADD", KEYS[5], "*", "o", ARGV[5], "p", payload, "t", ARGV[15])
  else
    redis.call("XADD", KEYS[5], "*", "o", ARGV[5], "p", payload)
  end
  if redis.call("SET", KEYS[6], "1", "NX", "EX", drain_ttl) then
    kick = 1
  end
end
if state[12] == "1" then  -- the admission is used up; the room's cap fell with the stock
  local R = {queue = KEYS[9], tickets = KEYS[10], admitted = KEYS[11], expiry = KEYS[12],
    room = KEYS[13]}
  redis.call("HDEL", R.admitted, user)
  redis.call("ZREM", R.expiry, user)
  room_lapse(R, now)
  room_trim(R, math.floor(remaining * tonumber(state[13]) + 1e-9))
end
return answer({"OK", ARGV[5], remaining, kick, payload})
