// deal-overload: the deal-traffic-spike taken to its end. The runner (loadtests/overload.py)
// chooses a MODE per run:
//   capacity  closed model, VUS shoppers without think time, one purchase each by a fresh
//             shopper (no retries, so accepted purchases/s is the stack's purchase capacity)
//   direct    open model, room off: RATE shoppers/s for DURATION s, each POSTs /orders once
//   room      open model, room on: RATE shoppers/s for DURATION s, each joins the line, polls
//             its ticket after the server's poll_after_s, and buys once admitted (with the
//             `Admission` header), or stops when the ticket says sold_out/closed
//   join      closed model: each iteration one join by a fresh shopper (a room that has not
//             started: nobody is admitted, the place is kept)
//   poll      open model at RATE polls/s of tickets held by the first JOINED shoppers
//
// direct and room are open models that don't cap concurrency: k6's constant-arrival-rate needs
// a VU per shopper in flight, and a shopper who waits half a minute in the line would need tens
// of thousands of VUs. Here a few VUs each start their share of arrivals on a clock (catching
// up whenever a timer fires late, so the offered rate holds) and run every shopper as an async
// flow (http.asyncRequest, k6/timers): a waiting shopper costs a timer, not a VU.
import http from 'k6/http';
import exec from 'k6/execution';
import { setTimeout } from 'k6/timers';
import { Counter, Trend } from 'k6/metrics';
import {
  BASE,
  authHeaders,
  get,
  iteration,
  loadOptions,
  postJson,
  record,
  recordPurchase,
  user,
} from './lib.js';

export { handleSummary } from './lib.js';

const MODE = __ENV.MODE || 'capacity';
const DEAL_ID = __ENV.DEAL_ID;
const PRODUCT_ID = __ENV.PRODUCT_ID;
const RATE = Number(__ENV.RATE || 100);
const DURATION_S = parseInt(__ENV.DURATION || '15', 10);
const TAIL_S = Number(__ENV.TAIL || 20); // after the arrivals: waiters still polling, answers due
const DRIVERS = Number(__ENV.DRIVERS || 16); // VUs that start the arrivals of direct/room
const TIMEOUT = __ENV.REQUEST_TIMEOUT || '20s'; // a shopper's patience; no answer -> status 0
const OFFSET = Number(__ENV.USER_OFFSET || 0);
const JOINED = Number(__ENV.JOINED || 1);
const SOLD_OUT = ['DEAL_SOLD_OUT', 'INSUFFICIENT_STOCK'];
// The designed answers of a purchase under overload (the waiting room's design): accepted, sold out, not
// admitted (the room), rate limited. Anything else counts in `unexpected`.
const PURCHASE_DESIGNED = [...SOLD_OUT, 'NOT_ADMITTED', 'RATE_LIMITED'];

function buildOptions() {
  if (MODE === 'direct' || MODE === 'room') {
    return {
      scenarios: {
        [MODE]: {
          executor: 'per-vu-iterations',
          vus: DRIVERS,
          iterations: 1,
          maxDuration: `${DURATION_S + TAIL_S + 15}s`,
        },
      },
      discardResponseBodies: true,
      summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
    };
  }
  const closed = loadOptions({ vus: 200 }); // capacity, join: MODE is not "open"
  if (MODE !== 'poll') return closed;
  return {
    ...closed,
    scenarios: {
      poll: {
        executor: 'constant-arrival-rate',
        rate: RATE,
        timeUnit: '1s',
        duration: `${DURATION_S}s`,
        preAllocatedVUs: 100,
        maxVUs: 400,
      },
    },
  };
}

export const options = buildOptions();

// --- the overload's own figures (loadtests/overload_report.py reads them) ------------------------
const arrivals = new Counter('arrivals'); // shoppers started
const arrivalLagMs = new Trend('arrival_lag_ms'); // how late the clock started a shopper
const joinDuration = new Trend('join_duration', true);
const pollDuration = new Trend('poll_duration', true);
const purchaseDuration = new Trend('purchase_duration', true); // every purchase answered
const admittedSeen = new Counter('admitted_seen'); // waiters told "admitted"
const waitToAdmitted = new Trend('wait_to_admitted', true); // arrival -> "admitted" seen
const soldOutWaiters = new Counter('sold_out_waiters'); // waiters told "sold_out" by a poll
const soldOutAtJoin = new Counter('sold_out_at_join'); // joins answered DEAL_SOLD_OUT
const stillWaiting = new Counter('still_waiting_at_end'); // never told anything final
const pollFailures = new Counter('poll_failures'); // a poll with no answer or not a 200: gives up
// Epoch milliseconds (not durations): the runner reads min/max. The last unit: the send time
// of the latest accepted purchase (the sale happened after it). A waiter told "sold_out" at
// t while polling every i seconds was told within two of its intervals of the last unit when
// t - 2i <= that send time, so the max of `sold_out_deadline` decides the target.
const firstArrivalAt = new Trend('first_arrival_at');
const acceptedSentAt = new Trend('accepted_sent_at');
// ... and when its answer came: the last unit was surely sold by then (time to sold-out).
const acceptedAnsweredAt = new Trend('accepted_answered_at');
const purchaseUnanswered = new Counter('purchase_unanswered'); // no answer, or a 5xx
const soldOutSeenAt = new Trend('sold_out_seen_at');
const soldOutDeadline = new Trend('sold_out_deadline');
const soldOutInterval = new Trend('sold_out_poll_interval_s');

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function request(method, path, body, who, extra = {}) {
  const headers = { ...authHeaders(who, extra).headers };
  if (body !== null) headers['Content-Type'] = 'application/json';
  return http.asyncRequest(method, `${BASE}${path}`, body === null ? null : JSON.stringify(body), {
    headers,
    responseType: 'text',
    timeout: TIMEOUT,
  });
}

function ticketOf(res) {
  try {
    return JSON.parse(res.body);
  } catch (e) {
    return null;
  }
}

async function buy(n, who, admission) {
  const extra = { 'Idempotency-Key': `${__ENV.RUN_ID || 'run'}-${n}` };
  if (admission) extra.Admission = admission;
  const body = { items: [{ product_id: PRODUCT_ID, deal_id: DEAL_ID, quantity: 1 }] };
  const sent = Date.now();
  const res = await request('POST', '/orders', body, who, extra);
  if (res.status !== 0) purchaseDuration.add(res.timings.duration);
  if (res.status === 0 || res.status >= 500) purchaseUnanswered.add(1);
  if (res.status === 201 || res.status === 202) {
    acceptedSentAt.add(sent);
    acceptedAnsweredAt.add(Date.now());
  }
  recordPurchase(res, PURCHASE_DESIGNED);
}

async function shopperDirect(n) {
  await buy(n, user(OFFSET + n), null);
}

async function shopperInRoom(n, endAt) {
  const who = user(OFFSET + n);
  const arrived = Date.now();
  const joined = await request('POST', `/products/deals/${DEAL_ID}/queue`, null, who);
  if (joined.status !== 0) joinDuration.add(joined.timings.duration);
  if (!record(joined, [200, 201], SOLD_OUT)) return;
  if (joined.status === 400) {
    soldOutAtJoin.add(1);
    return;
  }
  let ticket = ticketOf(joined);
  let interval = 0;
  for (;;) {
    if (ticket === null) return;
    if (ticket.state === 'admitted') {
      admittedSeen.add(1);
      waitToAdmitted.add(Date.now() - arrived);
      await buy(n, who, ticket.admission);
      return;
    }
    if (ticket.state === 'sold_out' || ticket.state === 'closed') {
      const now = Date.now();
      soldOutWaiters.add(1);
      soldOutSeenAt.add(now);
      soldOutDeadline.add(now - 2000 * interval);
      soldOutInterval.add(interval);
      return;
    }
    interval = ticket.poll_after_s || 1;
    if (Date.now() + 1000 * interval > endAt) {
      stillWaiting.add(1);
      return;
    }
    await sleep(1000 * interval);
    const polled = await request('GET', `/products/deals/${DEAL_ID}/queue/me`, null, who);
    if (polled.status !== 0) pollDuration.add(polled.timings.duration);
    if (!record(polled, [200])) {
      pollFailures.add(1);
      return;
    }
    ticket = ticketOf(polled);
  }
}

// One driver VU: starts arrivals number vu, vu + DRIVERS, ... on the clock, RATE / DRIVERS per
// second each, for DURATION_S; then waits for its shoppers (at most until the tail ends).
async function drive() {
  const vu = exec.vu.idInTest - 1;
  const start = exec.scenario.startTime;
  const endAt = start + 1000 * (DURATION_S + TAIL_S);
  const total = Math.floor(RATE * DURATION_S);
  const flows = [];
  let next = vu; // arrival number n is due at start + n / RATE seconds
  if (vu === 0) firstArrivalAt.add(start);
  while (next < total) {
    const now = Date.now();
    while (next < total && start + (1000 * next) / RATE <= now) {
      arrivalLagMs.add(now - (start + (1000 * next) / RATE));
      arrivals.add(1);
      flows.push(MODE === 'room' ? shopperInRoom(next, endAt) : shopperDirect(next));
      next += DRIVERS;
    }
    await sleep(Math.max(1, Math.min(20, start + (1000 * next) / RATE - Date.now())));
  }
  await Promise.all(flows);
}

function capacityPurchase() {
  const n = iteration();
  const body = { items: [{ product_id: PRODUCT_ID, deal_id: DEAL_ID, quantity: 1 }] };
  const res = postJson('/orders', body, {
    ...authHeaders(user(OFFSET + n), { 'Idempotency-Key': `${__ENV.RUN_ID || 'run'}-${n}` }),
    responseType: 'text',
  });
  if (res.status === 0 || res.status >= 500) purchaseUnanswered.add(1);
  recordPurchase(res, PURCHASE_DESIGNED);
}

function join() {
  const res = http.post(`${BASE}/products/deals/${DEAL_ID}/queue`, null, {
    ...authHeaders(user(OFFSET + iteration())),
    responseType: 'text',
  });
  joinDuration.add(res.timings.duration);
  record(res, [200, 201]);
}

function poll() {
  const res = get(`/products/deals/${DEAL_ID}/queue/me`, {
    ...authHeaders(user(OFFSET + (iteration() % JOINED))),
    responseType: 'text',
  });
  pollDuration.add(res.timings.duration);
  record(res, [200]);
}

export default async function () {
  if (MODE === 'direct' || MODE === 'room') return drive();
  if (MODE === 'join') return join();
  if (MODE === 'poll') return poll();
  return capacityPurchase();
}
