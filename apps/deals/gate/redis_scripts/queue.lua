--[[
queue.lua: a shopper joins, polls or leaves a deal's waiting room, in one step that also runs
the room's clock (room_advance, room_lib.lua): whoever calls admits the head of the line at the
operator's rate, so no background task is needed and the room moves whenever anyone looks.

KEYS (all {deal:<id>}): 1 state  2 queue  3 tickets  4 admitted  5 expiry  6 room
                        7 rate (this minute's answers per second)
ARGV: 1 op: "join", "poll" or "leave"   2 user_id   3 now (epoch ms, the caller's clock)
      4 rate hash TTL (seconds)
Returns:
  {"NOT_LOADED"}        no state in Redis: the caller rebuilds it
  {"OFF"}               the deal has no waiting room
  {"CLOSED"}            the deal ended (by the clock or an operator)
  {"NOT_OPEN"}          join: before the pre-queue window opens
  {"SOLD_OUT"}          nothing left: the room admits nobody (until units come back)
  {"WAITING", position, waiting, created, rate, starts_at}
                        position: 1-based place in line; 0 before the start (the pre-queue's
                        order is drawn at the start); waiting: the line's length;
                        created: 1 when this join took the place; rate (shoppers admitted per
                        second) and starts_at (epoch ms), for the wait estimate
  {"ADMITTED", admitted_at, expires_at, created}  (epoch ms)
  {"NO_PLACE"}          poll/leave: the shopper has no place (never joined, left, lapsed, bought)
  {"LEFT"}              leave: the place (or the admission) is given up, the slot freed
The pre-queue's draw: the first 12 hex digits of SHA1("<seed>:<user_id>") as a number (below
2^48), ties by user id; re-run by apps.deals.gate.room.prequeue_order from the published seed.
Arrivals after the start are 2^48 + n, first come first served.
]]
local op, user, now, rate_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if not (now and rate_ttl) then
  return redis.error_reply("ERR queue.lua: ARGV 3 and 4 must be numbers")
end
local f = redis.call("HMGET", KEYS[1], "remaining", "starts_at", "ends_at", "paused", "ended",
  "room", "room_rate", "room_admit_ms", "room_overbook", "room_prequeue_ms", "room_seed")
if not f[1] then
  return {"NOT_LOADED"}
end
if f[6] ~= "1" then
  return {"OFF"}
end
local S = {
  remaining = tonumber(f[1]), starts_at = tonumber(f[2]), paused = f[4] == "1",
  rate = tonumber(f[7]), admit_ms = tonumber(f[8]), overbook = tonumber(f[9]),
}
if f[5] == "1" or now >= tonumber(f[3]) then
  return {"CLOSED"}
end
local R = {queue = KEYS[2], tickets = KEYS[3], admitted = KEYS[4], expiry = KEYS[5],
  room = KEYS[6], rate = KEYS[7]}

if op == "leave" then
  local left = redis.call("ZREM", R.queue, user) + redis.call("HDEL", R.admitted, user)
  redis.call("HDEL", R.tickets, user)
  redis.call("ZREM", R.expiry, user)
  return {left > 0 and "LEFT" or "NO_PLACE"}
end

local created = 0
if op == "join" then
  -- Lapse first: a shopper whose admission ran out, joining before anyone else's step freed
  -- it, still had it in `admitted`, took no place, and got NO_PLACE from their own join
  -- (a 500: queue_join expects a ticket). Now they join at the back like any newcomer.
  room_lapse(R, now)
end
if op == "join" and S.remaining > 0 and redis.call("HEXISTS", R.admitted, user) == 0
    and not redis.call("ZSCORE", R.queue, user) then
  if now < S.starts_at - tonumber(f[10]) then
    return {"NOT_OPEN"}
  end
  local place
  if now < S.starts_at then
    place = tonumber(string.sub(redis.sha1hex(f[11] .. ":" .. user), 1, 12), 16)
  else
    place = ARRIVALS + redis.call("HINCRBY", R.room, "seq", 1)
  end
  redis.call("ZADD", R.queue, string.format("%d", place), user)
  redis.call("HSET", R.tickets, user, string.format("%d", now))
  redis.call("HINCRBY", R.room, "joins", 1)
  created = 1
end

room_advance(R, S, now, rate_ttl)

local held = redis.call("HGET", R.admitted, user)
if held then
  local at, expires = string.match(held, "^([^|]*)|([^|]*)|")
  return {"ADMITTED", tonumber(at), tonumber(expires), created}
end
if S.remaining <= 0 then
  return {"SOLD_OUT"}
end
local rank = redis.call("ZRANK", R.queue, user)
if rank then
  local position = now < S.starts_at and 0 or rank + 1
  return {"WAITING", position, redis.call("ZCARD", R.queue), created, S.rate, S.starts_at}
end
return {"NO_PLACE"}
