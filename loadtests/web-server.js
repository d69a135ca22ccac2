// web-server: the same app under three web servers (gunicorn sync as shipped, gunicorn gthread
// with keep-alive, granian's WSGI server). TARGET picks the request: health (GET /health), products
// (the cached product list, first page) or orders (a redis_async deal purchase, lib.js).
import { get, record, purchase, loadOptions } from './lib.js';

export { handleSummary } from './lib.js';
export const options = loadOptions({ vus: 200 });

const TARGET = __ENV.TARGET || 'orders';

export default function () {
  if (TARGET === 'health') {
    record(get('/health'), [200]);
  } else if (TARGET === 'products') {
    record(get('/products?page=1&size=20'), [200]);
  } else {
    purchase();
  }
}
