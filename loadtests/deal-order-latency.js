// deal-order-latency: the same deal burst through the synchronous pipelines and redis_async
// (Lua gate + stream, 202 at once, Celery batch writer). TARGET=health measures GET /health on
// the redis_async server in the same run (the web tier's ceiling).
import { get, record, purchase, loadOptions } from './lib.js';

export { handleSummary } from './lib.js';
export const options = loadOptions({ vus: 200 });

const TARGET = __ENV.TARGET || 'orders';

export default function () {
  if (TARGET === 'health') {
    record(get('/health'), [200]);
    return;
  }
  purchase();
}
