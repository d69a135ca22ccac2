--[[
stop.lua: stop a deal's sales in Redis and count the reservations accepted but not yet
written, in one atomic step (gate.deal_sales_stop, the close's first step).

Once `ended` is set reserve.lua accepts nothing more, so a close that reads 0 here knows no
reservation can still arrive, even from a web server whose clock reads "before the end".
Checking for the state, marking it and counting in separate commands let a state installed
between the check and the mark stay open, its purchases landing after the count.

The mark is written even when the deal's state is missing (Redis lost it and no rebuild has
run yet): the hash then holds `ended` alone, which every script reads as "not loaded" (there is
no `remaining`), and load.lua keeps `ended` when it installs the state, so a rebuild that read
the deal before the stop cannot reopen its sales. A closed deal (tombstone, KEYS 3) is left
alone: its keys are gone for good, and a stop racing the close must not bring one back.

The count is the larger of `pending` and the stream (an async reservation is in both until
written; written entries are deleted from the stream), as gate.deal_backlog counts: `pending`
lost while the stream still held reservations (found by the chaos suite) must not let the close
return their units and delete the stream with them.

KEYS: 1 state hash, 2 pending hash, 3 closed tombstone, 4 stream (all {deal:<id>})
ARGV: none
Returns the number of reservations not yet written.
]]
if redis.call("EXISTS", KEYS[3]) == 0 then
  redis.call("HSET", KEYS[1], "ended", "1")
end
local pending = redis.call("HLEN", KEYS[2])
local stream = redis.call("XLEN", KEYS[4])
if stream > pending then
  return stream
end
return pending
