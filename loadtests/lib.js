// Shared helpers for the flashdeals k6 scripts. The runner (loadtests/run.py) passes everything
// through environment variables:
//   BASE_URL      server under test, e.g. http://127.0.0.1:8101
//   USERS_FILE    JSON [{id, token}] from `manage.py loadtest_prepare users` (absolute path)
//   MODEL         "closed" (constant VUs, no think time) | "open" (constant arrival rate)
//   VUS, DURATION, RATE (open model, requests/s)
//   SUMMARY_FILE  where handleSummary writes the raw k6 summary (JSON)
// No think time anywhere: capacity runs measure the server, not a sleep.
import http from 'k6/http';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { Counter, Trend } from 'k6/metrics';

export const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8000';

const USERS = __ENV.USERS_FILE
  ? new SharedArray('users', () => JSON.parse(open(__ENV.USERS_FILE)))
  : [];

export function userCount() {
  return USERS.length;
}

// The n-th user, wrapping around: many distinct users and tokens, so no cache of one token's
// answer can fake a result.
export function user(n) {
  return USERS[n % USERS.length];
}

// Unique across all VUs of this k6 run: picks a fresh shopper per purchase.
export function iteration() {
  return exec.scenario.iterationInTest;
}

const CODES = [0, 200, 201, 202, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504];
const statusCounters = {};
for (const code of CODES) statusCounters[code] = new Counter(`status_${code}`);
const otherStatus = new Counter('status_other');
// Error codes of the 4xx answers that can be designed ones (the contract's `error` field), one
// counter each, named by code only (report.py's CODE_STATUS puts the status back in front).
const business = {};
for (const code of [
  'DEAL_SOLD_OUT',
  'DEAL_LIMIT_EXCEEDED',
  'INSUFFICIENT_STOCK',
  'NOT_ADMITTED', // 403: the deal's waiting room is on and no valid admission was shown
  'RATE_LIMITED', // 429
  'NOT_QUEUED', // 404 on a ticket: never joined, lapsed, left
  'QUEUE_NOT_OPEN', // 400 on a join: no room, or before the pre-queue window
]) {
  business[code] = new Counter(`biz_${code}`);
}
const otherBusiness = new Counter('biz_other');
const unexpected = new Counter('unexpected');
const accepted = new Counter('accepted');
const acceptedDuration = new Trend('accepted_duration', true);
// Responses completed within the nominal DURATION: the throughput numerator. Requests still in
// flight when the duration ends complete (and count for the invariant checks) but don't stretch
// the denominator the way k6's own http_reqs rate (over the whole run, graceful stop included)
// does, which would penalise the slowest variant most.
const windowReqs = new Counter('window_reqs');
const windowAccepted = new Counter('window_accepted');
const WINDOW_MS = 1000 * parseInt(__ENV.DURATION || '15', 10);

function inWindow() {
  return Date.now() - exec.scenario.startTime <= WINDOW_MS;
}

const CODED = [400, 403, 404, 409, 429];

// Counts the response by status. `expected` lists the statuses that are normal answers; a 4xx
// with an error code (400, 403, 404, 409, 429) is normal only with one of `businessCodes`
// (e.g. DEAL_SOLD_OUT in a purchase burst, NOT_ADMITTED or RATE_LIMITED under overload). The
// body must have been kept (responseType: 'text') for the code to be read.
export function record(res, expected, businessCodes = []) {
  (statusCounters[res.status] || otherStatus).add(1);
  if (inWindow()) windowReqs.add(1);
  let ok = expected.includes(res.status);
  if (CODED.includes(res.status)) {
    let code = 'unparsed';
    try {
      code = JSON.parse(res.body).error;
    } catch (e) {
      // keep 'unparsed'
    }
    (business[code] || otherBusiness).add(1);
    ok = businessCodes.includes(code);
  }
  if (!ok) unexpected.add(1);
  return ok;
}

// A purchase answered 201 (sync pipelines) or 202 (redis_async): counted for the invariant check.
// `businessCodes`: the refusals that are designed answers in this scenario.
export function recordPurchase(
  res,
  businessCodes = ['DEAL_SOLD_OUT', 'DEAL_LIMIT_EXCEEDED', 'INSUFFICIENT_STOCK'],
) {
  if (res.status === 201 || res.status === 202) {
    accepted.add(1);
    acceptedDuration.add(res.timings.duration);
    if (inWindow()) windowAccepted.add(1);
  }
  return record(res, [201, 202], businessCodes);
}

export function authHeaders(u, extra = {}) {
  return { headers: { Authorization: `Bearer ${u.token}`, ...extra } };
}

export function get(path, params = {}) {
  return http.get(`${BASE}${path}`, params);
}

export function postJson(path, body, params = {}) {
  const headers = { 'Content-Type': 'application/json', ...(params.headers || {}) };
  return http.post(`${BASE}${path}`, JSON.stringify(body), { ...params, headers });
}

// The executor for MODEL: closed = constant VUs looping without pause; open = a fixed offered
// load (constant arrival rate) whatever the latency, which shows queueing honestly.
export function loadOptions(defaults = {}) {
  const model = __ENV.MODEL || 'closed';
  const vus = Number(__ENV.VUS || defaults.vus || 50);
  const duration = __ENV.DURATION || defaults.duration || '15s';
  let scenario;
  if (model === 'open') {
    scenario = {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || defaults.rate || 100),
      timeUnit: '1s',
      duration,
      preAllocatedVUs: vus,
      maxVUs: vus * 2,
    };
  } else if (model === 'spike') {
    const hold = Math.max(1, parseInt(duration, 10) - 4);
    scenario = {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: '2s', target: vus },
        { duration: `${hold}s`, target: vus },
        { duration: '2s', target: 0 },
      ],
      gracefulRampDown: '2s',
    };
  } else {
    scenario = { executor: 'constant-vus', vus, duration };
  }
  return {
    scenarios: { [model]: scenario },
    discardResponseBodies: true,
    summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
    insecureSkipTLSVerify: true,
    noConnectionReuse: false,
  };
}

export function handleSummary(data) {
  const out = {};
  if (__ENV.SUMMARY_FILE) out[__ENV.SUMMARY_FILE] = JSON.stringify(data);
  const reqs = data.metrics.http_reqs ? data.metrics.http_reqs.values : { count: 0, rate: 0 };
  const dur = data.metrics.http_req_duration ? data.metrics.http_req_duration.values : {};
  const bad = data.metrics.unexpected ? data.metrics.unexpected.values.count : 0;
  out.stdout =
    `k6: ${reqs.count} requests, ${reqs.rate.toFixed(1)} req/s, ` +
    `p95 ${(dur['p(95)'] || 0).toFixed(1)} ms, unexpected ${bad}\n`;
  return out;
}

// One deal purchase (DEAL_ID/PRODUCT_ID) by a fresh shopper per iteration; every 10th iteration
// retries the previous shopper (often while that shopper's own purchase is in flight), so the
// per-user limit is exercised under real concurrency. A unique Idempotency-Key per attempt.
export function purchase() {
  const n = iteration();
  const who = n % 10 === 9 ? user(n - 1) : user(n);
  const body = { items: [{ product_id: __ENV.PRODUCT_ID, deal_id: __ENV.DEAL_ID, quantity: 1 }] };
  const key = `${__ENV.RUN_ID || 'run'}-${n}`;
  const res = postJson('/orders', body, {
    ...authHeaders(who, { 'Idempotency-Key': key }),
    responseType: 'text',
  });
  return recordPurchase(res);
}
