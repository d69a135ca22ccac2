// order-tps-limit: regular (non-deal) orders, one line each, spread over PRODUCT_IDS so no single
// row is hot: the order throughput ceiling of the web tier. Variants change the JSON renderer
// (API_RENDERER) and the gunicorn worker class/count.
import { postJson, record, user, iteration, authHeaders, loadOptions } from './lib.js';

export { handleSummary } from './lib.js';
export const options = loadOptions({ vus: 50 });

const PRODUCTS = (__ENV.PRODUCT_IDS || '').split(',');

export default function () {
  const n = iteration();
  const body = { items: [{ product_id: PRODUCTS[n % PRODUCTS.length], quantity: 1 }] };
  record(postJson('/orders', body, authHeaders(user(n))), [201]);
}
