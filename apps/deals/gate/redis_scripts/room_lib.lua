--[[
room_lib.lua: the waiting room's steps that queue.lua and reserve.lua share. Not a script of its
own: scripts.py puts this text in front of both (Redis scripts can't call each other).

R is a table of the room's keys (all {deal:<id>}, see apps/deals/gate/keys.py): queue, tickets,
admitted, expiry, room, and rate (this minute's answers hash; room_advance only).

Numbers that go back into Redis are formatted with %d: Lua turns a number argument into text
with 14 significant digits, and a place (2^48 + n) has 15.
]]
local ARRIVALS = 281474976710656  -- 2^48: pre-queue draws are below it, arrivals 2^48 + n
local WAIT_BUCKETS = {1, 2, 5, 10, 30, 60, 120, 300, 600, 1800}  -- seconds; above: "w:inf"

-- Admissions that expired unused: the shopper loses the place, the slot is free again.
local function room_lapse(R, now)
  local gone = redis.call("ZRANGEBYSCORE", R.expiry, "-inf", now)
  if #gone == 0 then
    return 0
  end
  redis.call("ZREMRANGEBYSCORE", R.expiry, "-inf", now)
  for i = 1, #gone, 1000 do  -- unpack has a stack limit
    redis.call("HDEL", R.admitted, unpack(gone, i, math.min(i + 999, #gone)))
  end
  redis.call("HINCRBY", R.room, "lapsed", #gone)
  return #gone
end

-- Admissions outstanding above `cap` (remaining units x overbooking factor) go back to the head
-- of the line with their place, newest first: a sale lowers the cap by the factor per unit, so
-- this runs after every sale too, and the invariant holds after every script.
local function room_trim(R, cap)
  local over = redis.call("ZCARD", R.expiry) - cap
  if over <= 0 then
    return 0
  end
  local popped = redis.call("ZPOPMAX", R.expiry, over)
  for i = 1, #popped, 2 do
    local user = popped[i]
    local held = redis.call("HGET", R.admitted, user)
    redis.call("HDEL", R.admitted, user)
    if held then
      local place, joined = string.match(held, "^[^|]*|[^|]*|([^|]*)|([^|]*)$")
      redis.call("ZADD", R.queue, place, user)
      redis.call("HSET", R.tickets, user, joined)
    end
  end
  redis.call("HINCRBY", R.room, "revoked", over)
  return over
end

-- The room's clock: lapses, trims to the stock, then admits the head of the line at S.rate
-- shoppers per second since the last admission, as far as the stock allows. Admissions not
-- used for want of waiters or stock are not saved up beyond one second, so no burst follows
-- a quiet spell or a pause. S: remaining, overbook, rate, admit_ms, starts_at, paused.
local function room_advance(R, S, now, rate_ttl)
  room_lapse(R, now)
  local cap = math.floor(S.remaining * S.overbook + 1e-9)
  room_trim(R, cap)
  if S.paused or now < S.starts_at or S.rate <= 0 then
    return
  end
  -- The credit is kept in whole numbers: `tick` is an anchor (epoch ms) and `given` the
  -- admissions due since it at `tick_rate`, so the k-th is due at exactly anchor + k x 1000 /
  -- rate. (It was one fractional tick written with "%.3f": at a rate whose interval is no
  -- whole microsecond, 6/s say, rounding put every admission a little later than due and the
  -- room admitted 5 in the first second, 11 in two; test_waiting_room's exact counts.)
  local t = redis.call("HMGET", R.room, "tick", "given", "tick_rate")
  local anchor, given, was = tonumber(t[1] or ""), tonumber(t[2] or "") or 0, tonumber(t[3] or "")
  if anchor and was ~= S.rate then  -- the rate changed (or a tick from before `given`):
    anchor, given = math.floor(anchor + (was and given * 1000 / was or 0)), 0  -- last one due
  end
  local floor_at = math.max(S.starts_at, now - 1000)  -- nothing saved up beyond one second
  if not anchor or (floor_at - anchor) * S.rate > given * 1000 then
    anchor, given = floor_at, 0
  end
  local due = math.floor((now - anchor) * S.rate / 1000) - given
  if due <= 0 then
    return
  end
  redis.call("HSET", R.room, "tick", string.format("%d", anchor), "given",
    string.format("%d", given + due), "tick_rate", string.format("%d", S.rate))
  local n = math.min(due, cap - redis.call("ZCARD", R.expiry), redis.call("ZCARD", R.queue))
  if n <= 0 then
    return
  end
  local popped = redis.call("ZPOPMIN", R.queue, n)
  local expires = now + S.admit_ms
  for i = 1, #popped, 2 do
    local user, place = popped[i], popped[i + 1]
    local joined = tonumber(redis.call("HGET", R.tickets, user) or now)
    redis.call("HDEL", R.tickets, user)
    redis.call("HSET", R.admitted, user,
      string.format("%d|%d|%s|%d", now, expires, place, joined))
    redis.call("ZADD", R.expiry, string.format("%d", expires), user)
    local waited, bucket = (now - math.max(joined, S.starts_at)) / 1000, "inf"
    for _, bound in ipairs(WAIT_BUCKETS) do
      if waited <= bound then
        bucket = bound
        break
      end
    end
    redis.call("HINCRBY", R.room, "w:" .. bucket, 1)
  end
  redis.call("HINCRBY", R.room, "admitted", n)
  redis.call("HINCRBY", R.rate, "q:" .. (math.floor(now / 1000) % 60), n)
  redis.call("EXPIRE", R.rate, rate_ttl)
end
