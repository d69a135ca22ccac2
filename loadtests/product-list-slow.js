// product-list-slow: GET /products on a 1,000,000-product catalog, random pages 1..10, 50 VUs.
// TARGET=health measures GET /health on the same server (the ceiling of the web tier).
// Before: CATALOG_CACHE_ENABLED=false (count + page query per request); after: cache-aside.
import { get, record, loadOptions } from './lib.js';

export { handleSummary } from './lib.js';
export const options = loadOptions({ vus: 50 });

const TARGET = __ENV.TARGET || 'products';

export default function () {
  if (TARGET === 'health') {
    record(get('/health'), [200]);
    return;
  }
  const page = 1 + Math.floor(Math.random() * 10);
  record(get(`/products?page=${page}&size=20`), [200]);
}
