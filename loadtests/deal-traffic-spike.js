// deal-traffic-spike: a deal opens and shoppers rush in: 0 -> VUS in 2 s, hold, ramp down.
// Each shopper opens the deal page and then their order list (both read PostgreSQL or Redis).
// Before: DB_CONN_MAX_AGE=0 (a new PostgreSQL connection per request); after: persistent ones.
import { get, record, user, iteration, authHeaders, loadOptions } from './lib.js';

export { handleSummary } from './lib.js';
export const options = loadOptions({ vus: 200 });

const DEAL_ID = __ENV.DEAL_ID;

export default function () {
  const u = user(iteration());
  record(get(`/products/deals/${DEAL_ID}`), [200]);
  record(get('/orders?page=1&size=5', authHeaders(u)), [200]);
}
