// Preloaded into the Parley the bench starts (`node --import ./bench/commit-stats.ts src/cli.ts
// serve`): counts the offline spool's group commits without changing the server. It wraps
// GroupCommit.prototype.flush (src/offline/group-commit.ts; the class keeps `stats`
// {batches, items} for this) to record each batch's size and how long its transaction (the
// writes and the WAL fsync) held the event loop. On SIGUSR2 it prints one line on stderr:
//   bench-commit-stats <n> {"batches":…,"items":…,"maxBatch":…,"commitMs":…,"maxCommitMs":…,"sizes":{…}}
// where <n> counts the requests (1, 2, …), so that the bench knows which answer is new.
// Without the class (renamed, moved), it prints `bench-commit-stats <n> null`: the report then omits them.

import { GroupCommit } from '../src/offline/group-commit.ts';
import type { CommitTotals } from './servers.ts';


const totals: CommitTotals = { batches: 0, items: 0, maxBatch: 0, commitMs: 0, maxCommitMs: 0, sizes: {} };
let hooked = false;

type Flushable = { flush(): void; stats?: { items: number } };
const proto = (GroupCommit as unknown as { prototype?: Flushable } | undefined)?.prototype;
if (proto && typeof proto.flush === 'function') {
  const flush = proto.flush;
  proto.flush = function (this: Flushable): void {
    const before = this.stats?.items ?? 0;
    const t0 = performance.now();
    try {
      flush.call(this);
    } finally {
      const ms = performance.now() - t0;
      const n = (this.stats?.items ?? 0) - before;
      if (n > 0) {
        totals.batches++;
        totals.items += n;
        totals.maxBatch = Math.max(totals.maxBatch, n);
        totals.commitMs += ms;
        totals.maxCommitMs = Math.max(totals.maxCommitMs, ms);
        const low = 2 ** Math.floor(Math.log2(n));
        const key = low === 1 ? '1' : `${low}-${low * 2 - 1}`;
        totals.sizes[key] = (totals.sizes[key] ?? 0) + 1;
      }
    }
  };
  hooked = true;
}

let requests = 0;
process.on('SIGUSR2', () => {
  requests++;
  process.stderr.write(`bench-commit-stats ${requests} ${hooked ? JSON.stringify(totals) : 'null'}\n`);
});
