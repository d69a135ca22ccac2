// deal-lock-contention: 200 shoppers hammer one hot deal. Variants: ORDER_PIPELINE=db_lock
// (SELECT ... FOR UPDATE) -> db_update (conditional UPDATE) -> redis (Lua gate, row inserted in
// the request). Closed model (capacity) and open model (fixed offered load; the deal sells out).
import { purchase, loadOptions } from './lib.js';

export { handleSummary } from './lib.js';
export const options = loadOptions({ vus: 200 });

export default function () {
  purchase();
}
