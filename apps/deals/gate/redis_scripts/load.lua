--[[
load.lua: install a deal's state unless it is already there (so a rebuild never overwrites a
live counter, and concurrent rebuilders are harmless).

A closed deal leaves a tombstone (KEYS 4, set by the unload): a loader that read the deal before
it closed must not bring its gate back (it would accept purchases nobody writes).

KEYS: 1 state hash, 2 users hash, 3 idem hash, 4 closed tombstone, 5 released set
      (all {deal:<id>})
ARGV: 1 flat state fields (JSON object of field -> value), 2 users (JSON object user -> units),
      3 idempotency keys of reservations not yet written (JSON object field -> value)
      4 order ids whose units the holdings already leave out (recent cancellations, JSON
        array): marked released, so a cancel's release landing after the rebuild gives nothing
        back twice
      5 the unwritten reservations ARGV 1's `remaining` and ARGV 2 count as sold (JSON array of
        [order_id, user_id, units]): one released since the caller's pending snapshot (a cancel
        or a dead letter whose release.lua ran while the state was missing) is left out, or its
        units would stay withheld from sale for good
A stop (stop.lua) may have left `ended` = 1 in a missing state: it is kept whatever ARGV 1
says, as sync.lua never lowers it either (ending is final). All arguments are decoded before
the first write, so a bad one leaves nothing half-installed.
The released set is made permanent (PERSIST): marks release.lua made while the state was
missing carry an expiry, and once installed the set lives as long as the state (the close
deletes both).
Returns 1 when installed, 0 when the state already existed, -1 when the deal is closed
(nothing changed either way).
]]
if redis.call("EXISTS", KEYS[4]) == 1 then
  return -1
end
if redis.call("HEXISTS", KEYS[1], "remaining") == 1 then
  return 0
end
local fields, users = cjson.decode(ARGV[1]), cjson.decode(ARGV[2])
local idem, released = cjson.decode(ARGV[3]), cjson.decode(ARGV[4])
local unwritten = cjson.decode(ARGV[5])
for _, r in ipairs(unwritten) do
  local order_id, user, units = r[1], r[2], tonumber(r[3])
  if redis.call("SISMEMBER", KEYS[5], order_id) == 1 then
    users[user] = (tonumber(users[user]) or 0) - units
    if users[user] <= 0 then users[user] = nil end
    fields["remaining"] = tonumber(fields["remaining"]) + units
  end
end
if redis.call("HGET", KEYS[1], "ended") == "1" then
  fields["ended"] = 1  -- sales were stopped while the state was missing
end
redis.call("DEL", KEYS[2])
for name, value in pairs(fields) do
  redis.call("HSET", KEYS[1], name, tostring(value))
end
for user, units in pairs(users) do
  redis.call("HSET", KEYS[2], user, units)
end
for field, value in pairs(idem) do
  redis.call("HSETNX", KEYS[3], field, value)
end
for _, order_id in ipairs(released) do
  redis.call("SADD", KEYS[5], order_id)
end
redis.call("PERSIST", KEYS[5])
return 1
