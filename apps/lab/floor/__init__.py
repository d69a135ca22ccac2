"""The floor of a Django purchase, for the load-test lab only (loadtests/scenarios.py).

A Django process with no middleware and one plain view per path: verify the shopper's JWT with
PyJWT, run the purchase's reserve.lua once through the gate's own call (deal_reserve: the same
keys, arguments and WAITAOF on one connection as the app's purchase), kick the batch writer
when the script says none is running, and answer a fixed small body. What the app's purchase
costs beyond this (middleware, DRF, input validation, the error contract, rendering, metrics,
logging) is what the lab's tables show as the gap to the floor. Its settings are
`apps.lab.floor.settings`; no settings the app ships route to it.
"""
