// Microbenchmark of the offline spool's group commit on a SQLite file (what the spool writer's
// thread runs per batch, spool-writer.ts writeBatch): scenario 3's traffic (200 senders, each to
// the 100 offline recipients in turn, so most messages open an entry of their own), batches of
// --batch messages. Prints CPU µs per message (this thread only: the commit runs here as it does
// in the writer thread; the fsync's system time included) and what serializing a batch for the
// thread costs (v8.serialize, which postMessage uses).
//   node bench/offline-spool-write-micro.ts [--batch 12] [--batches 600] [--against FILE.ts]
// `--against` names another module exporting writeBatch (a copy of an earlier spool-writer.ts):
// both run on databases of their own, taking turns run by run, so that on a shared machine each
// suffers the same disturbance; the least and the median of the runs are given for each.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serialize } from 'node:v8';
import { MAILBOX_MIGRATIONS } from '../src/mailbox/index.ts';
import { writeBatch } from '../src/offline/spool-writer.ts';
import type { SpoolJob } from '../src/offline/spool-writer.ts';
import type { Sql, SqlDatabase } from '../src/storage/index.ts';
import { migrate, openDatabase, sqliteSql } from '../src/storage/index.ts';
import { prepareHistoryDatabase } from '../test/unit/history-fixture.ts';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
}
const BATCH = Number(option('batch') ?? 12);
const BATCHES = Number(option('batches') ?? 600);
/** batches per run */
const RUN = 25;

type Write = (sql: Sql, jobs: readonly SpoolJob[]) => Promise<unknown>;
const variants: Array<{ name: string; write: Write }> = [{ name: 'this', write: writeBatch }];
const against = option('against');
if (against !== undefined) variants.push({ name: against, write: ((await import(pathToFileURL(resolve(against)).href)) as { writeBatch: Write }).writeBatch });

const body = new TextEncoder().encode('Hello from the bench 12345');
const t0 = Date.now();
let n = 0;
const batch = (): SpoolJob[] =>
  Array.from({ length: BATCH }, () => {
    const i = n++;
    const sender = `user${String(i % 200).padStart(3, '0')}@bench.test`;
    const recipient = `off${String(((i % 200) + Math.floor(i / 200)) % 100).padStart(3, '0')}@bench.test`;
    return {
      kind: 'spool',
      request: {
        sender, recipient, callId: `${i}-o@127.0.0.1`, contentType: 'text/plain;charset=UTF-8', body, receivedAt: t0 + Math.floor(i / 5),
        pickupDelayMs: 3_600_000, maxAgeMs: 86_400_000, why: 'not signed in', gate: { EnableOfflineIm: 'Global', EnableIMAutoArchiving: 'Global' }, kind: 'offline',
      },
    } satisfies SpoolJob;
  });

const runs = await Promise.all(
  variants.map(async (v) => {
    const dir = mkdtempSync(join(tmpdir(), 'offline-spool-micro-'));
    const sql: SqlDatabase = sqliteSql(openDatabase(dir));
    await prepareHistoryDatabase(sql);
    await migrate(sql, [MAILBOX_MIGRATIONS]);
    return { ...v, sql, dir, us: [] as number[] };
  }),
);
const batches = Array.from({ length: BATCHES + 10 }, batch);
// warm up: statements prepared
for (const r of runs) for (const b of batches.slice(0, 10)) await r.write(r.sql, b);
const clones: number[] = [];
for (let at = 10; at < batches.length; at += RUN) {
  const part = batches.slice(at, at + RUN);
  const c0 = process.cpuUsage();
  for (const b of part) serialize(b);
  const c = process.cpuUsage(c0);
  clones.push((c.user + c.system) / (part.length * BATCH));
  for (const r of runs) {
    const w0 = process.cpuUsage();
    for (const b of part) await r.write(r.sql, b);
    const w = process.cpuUsage(w0);
    r.us.push((w.user + w.system) / (part.length * BATCH));
  }
}
const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
const median = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round = (x: number | undefined): number => Math.round((x ?? Number.NaN) * 10) / 10;
console.log(JSON.stringify({ batch: BATCH, messages: BATCH * BATCHES, serializeUsPerMessage: round(sorted(clones)[0]), ...Object.fromEntries(runs.map((r) => [r.name, { usPerMessageLeast: round(sorted(r.us)[0]), usPerMessageMedian: round(median(r.us)) }])) }));
for (const r of runs) {
  await r.sql.close();
  rmSync(r.dir, { recursive: true, force: true });
}
