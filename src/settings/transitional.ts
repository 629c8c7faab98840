// While other capabilities still hold the node:sqlite connection (`db`) in synchronous code
// (issue 16, first stage), the reads and the audit write they call take either it or an `Sql`:
// the same statements, run at once on the connection or through the engine. This goes with the
// last caller on `db`, as the `db` beside `sql` in the server and the cmdlet context does.

import type { Database, Sql } from '../storage/index.ts';

export function isSql(on: Sql | Database): on is Sql {
  return 'engine' in on;
}
