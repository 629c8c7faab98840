// Preloaded into the Parley the bench starts (`node --import ./bench/commit-stats.ts src/cli.ts
// serve`): reports the offline spool's group commits without changing the server. It finds the
// GroupCommit instance (src/offline/group-commit.ts) on its first submission, by wrapping
// GroupCommit.prototype.submit, and on SIGUSR2 prints its `stats` in one line on stderr:
//   bench-commit-stats <n> {"batches":…,"items":…,"maxBatch":…,"commitMs":…,"maxCommitMs":…,"sizes":{…}}
// where <n> counts the requests (1, 2, …), so that the bench knows which answer is new. Before the
// first submission it prints zeros; without the class (renamed, moved) `null`: the report then omits them.

import { GroupCommit } from '../src/offline/group-commit.ts';
import type { GroupCommitStats } from '../src/offline/group-commit.ts';

let seen: { stats: GroupCommitStats } | undefined;
let hooked = false;

type Submitting = { submit(item: unknown): Promise<unknown>; stats: GroupCommitStats };
const proto = (GroupCommit as unknown as { prototype?: Submitting } | undefined)?.prototype;
if (proto && typeof proto.submit === 'function') {
  const submit = proto.submit;
  proto.submit = function (this: Submitting, item: unknown): Promise<unknown> {
    seen ??= this;
    return submit.call(this, item);
  };
  hooked = true;
}

const zero: GroupCommitStats = { batches: 0, items: 0, maxBatch: 0, commitMs: 0, maxCommitMs: 0, sizes: {} };
let requests = 0;
process.on('SIGUSR2', () => {
  requests++;
  process.stderr.write(`bench-commit-stats ${requests} ${hooked ? JSON.stringify(seen?.stats ?? zero) : 'null'}\n`);
});
