// The retention thread (see scheduler.ts): its own connection to the database file with a short
// busy timeout; runs a purge when asked and sends back what it did.
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabaseFile, sqliteSql } from '../storage/index.ts';
import { BUSY_TIMEOUT_MS, runPurges, type RunRequest, type RunResult } from './run.ts';

export type ThreadRequest = { kind: 'run'; request: RunRequest } | { kind: 'stop' };
export type ThreadReply = { kind: 'done'; result: RunResult } | { kind: 'failed'; message: string };

const port = parentPort;
if (port === null) throw new Error('purge-thread.ts runs as the retention scheduler\'s worker thread');
const sql = sqliteSql(openDatabaseFile((workerData as { file: string }).file, { busyTimeoutMs: BUSY_TIMEOUT_MS }));
let stopping = false;
let running: Promise<void> | undefined;

port.on('message', (message: ThreadRequest) => {
  if (message.kind === 'stop') {
    stopping = true;
    // a run ends at its next batch; then the connection closes
    void (running ?? Promise.resolve()).then(async () => {
      await sql.close();
      port.close();
    });
    return;
  }
  if (stopping || running !== undefined) return;
  running = runPurges(sql, message.request, () => stopping).then(
    (result) => port.postMessage({ kind: 'done', result } satisfies ThreadReply),
    (err: unknown) => port.postMessage({ kind: 'failed', message: err instanceof Error ? err.message : String(err) } satisfies ThreadReply),
  ).finally(() => {
    running = undefined;
  });
});
