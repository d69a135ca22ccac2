// auth-cpu-bottleneck: every request carries a different shopper's JWT (GET /auth/verify).
// Before: AUTH_MODE=database (the user row is loaded per request); after: stateless claims.
import { get, record, user, iteration, authHeaders, loadOptions } from './lib.js';

export { handleSummary } from './lib.js';
export const options = loadOptions({ vus: 50 });

export default function () {
  record(get('/auth/verify', authHeaders(user(iteration()))), [200]);
}
