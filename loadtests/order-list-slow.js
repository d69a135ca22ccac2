// order-list-slow: GET /orders?page=1&size=20 by shoppers who each have many orders of several
// items. Before: ORDER_LIST_PREFETCH=false (one items query per order, N+1); after: prefetch.
import { get, record, user, userCount, iteration, authHeaders, loadOptions } from './lib.js';

export { handleSummary } from './lib.js';
export const options = loadOptions({ vus: 50 });

const LISTERS = Number(__ENV.LISTERS || 200);

export default function () {
  // The listers are the last LISTERS users (loadtest_prepare orders).
  const u = user(userCount() - 1 - (iteration() % LISTERS));
  record(get('/orders?page=1&size=20', authHeaders(u)), [200]);
}
