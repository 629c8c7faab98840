// The offline spool's batches written as the server writes them on a SQLite file: through the
// spool writer's thread (ThreadBatchWriter, spool-writer-thread.ts, its own connection), one batch
// at a time, scenario 3's traffic (200 senders, each to the 100 offline recipients in turn).
// Prints the CPU per message of each thread of the process (/proc: the writer is "WorkerThread",
// V8's helpers "V8Worker"), over --messages messages in batches of --batch (21: scenario 3's mean
// at 4,000/s). A batch's fixed cost (the hand-offs, the transaction, its fsync) is large: about
// 0.5 ms of CPU, so the batch size moves the figure (72 µs a message at 10, 51 at 21, 41 at 42).
//   node bench/offline-spool-thread-micro.ts [--batch 21] [--messages 36000] [--entry FILE.ts]
// `--entry` names another thread entry file (one that calls serveBatches with a variant of
// writeBatch): to compare, run both one after the other, several times, pinned (taskset -c 0).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SpoolJob } from '../src/offline/spool-writer.ts';
import { DATABASE_FILE, openDatabase, sqliteSql, ThreadBatchWriter } from '../src/storage/index.ts';
import { prepareHistoryDatabase } from '../test/unit/history-fixture.ts';
import { threadTicks, TICK_US } from './offline-thread-ticks.ts';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
}
const BATCH = Number(option('batch') ?? 21);
const BATCHES = Math.round(Number(option('messages') ?? 36_000) / BATCH);
const variant = option('entry');
const entry = variant === undefined ? new URL('../src/offline/spool-writer-thread.ts', import.meta.url) : pathToFileURL(path.resolve(variant));

const dir = mkdtempSync(path.join(tmpdir(), 'offline-spool-thread-'));
const sql = sqliteSql(openDatabase(dir));
await prepareHistoryDatabase(sql);
const writer = new ThreadBatchWriter<SpoolJob, unknown>({ file: path.join(dir, DATABASE_FILE), entry, name: 'the spool writer (bench)' });
const body = new TextEncoder().encode('Hello from the bench 12345');
let n = 0;
const job = (): SpoolJob => {
  const i = n++;
  return {
    kind: 'spool',
    request: {
      sender: `user${String(i % 200).padStart(3, '0')}@bench.test`, recipient: `off${String(((i % 200) + Math.floor(i / 200)) % 100).padStart(3, '0')}@bench.test`,
      callId: `${i}-o@127.0.0.1`, contentType: 'text/plain;charset=UTF-8', body, receivedAt: Date.now(), pickupDelayMs: 3_600_000, maxAgeMs: 86_400_000,
      why: 'not signed in', gate: { EnableOfflineIm: 'Global', EnableIMAutoArchiving: 'Global' }, kind: 'offline',
    },
  };
};
// warm up: the thread started, statements prepared
for (let i = 0; i < 100; i++) await writer.write(Array.from({ length: BATCH }, job));
const t0 = threadTicks();
for (let i = 0; i < BATCHES; i++) await writer.write(Array.from({ length: BATCH }, job));
const t1 = threadTicks();
// clock ticks are 10 ms (USER_HZ 100)
const perMessage = [...t1].map(([name, t]) => [name, ((t - (t0.get(name) ?? 0)) * TICK_US) / (BATCHES * BATCH)] as const).filter(([, us]) => us > 0);
console.log(`${variant ?? 'spool-writer-thread.ts'}, batches of ${BATCH}: ${perMessage.map(([name, us]) => `${name} ${us.toFixed(1)}`).join(', ')} µs per message`);
await writer.close();
await sql.close();
rmSync(dir, { recursive: true, force: true });
