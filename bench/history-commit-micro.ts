// Microbenchmark of Conversation History's group commit on a SQLite file (what the writer thread
// runs per batch): 200 senders to one recipient, round robin (scenario 2's traffic), batches of
// --batch messages. Prints CPU µs per message (this thread only: the commit runs here, as it does in
// the writer thread) and what serializing a batch for the thread costs (v8.serialize, which
// postMessage uses).
//   node bench/history-commit-micro.ts [--batch 48] [--batches 400] [--against FILE.ts] [--postgres]
//     [--prefill 200000] [--pragma "wal_autocheckpoint = 1000"]...
// `--prefill N` writes N messages first (batches of 240), as a bench run leaves the database:
// scenario 2 ends with ~200,000 messages in ~400 conversations (each holds at most
// MAX_CONVERSATION_MESSAGES). `--pragma` (repeatable) is run on each connection after the prefill.
// `--postgres` writes to fresh databases on the machine's PostgreSQL (the tests'), from this thread
// as the server does there: the figures then also give the wall time per batch (round trips), and
// the CPU is Node's only (PostgreSQL's own is not counted).
// `--against` names another module exporting writeHistoryBatch (a copy of an earlier commit.ts):
// both run on databases of their own, taking turns run by run, so that on a shared machine each
// suffers the same disturbance; the least and the median of the runs are given for each.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serialize } from 'node:v8';
import { writeHistoryBatch } from '../src/history/commit.ts';
import type { RecordedMessage } from '../src/router/context.ts';
import type { Sql, SqlDatabase } from '../src/storage/index.ts';
import { DATABASE_FILE, openDatabase, openPostgres, sqliteSql } from '../src/storage/index.ts';
import { closeTestPostgres, freshPostgresDatabase } from '../test/harness/engines.ts';
import { prepareHistoryDatabase } from '../test/unit/history-fixture.ts';
import { addUserRow } from '../test/unit/presence-database.ts';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
}
const BATCH = Number(option('batch') ?? 48);
const BATCHES = Number(option('batches') ?? 400);
/** messages written before the measure (scenario 2 of the bench ends with ~200,000 over 400 conversations) */
const PREFILL = Number(option('prefill') ?? 0);
const SENDERS = 200;
/** batches per run */
const RUN = 20;

type Write = (sql: Sql, messages: readonly RecordedMessage[]) => Promise<unknown>;
const variants: Array<{ name: string; write: Write }> = [{ name: 'this', write: writeHistoryBatch }];
const against = option('against');
if (against !== undefined) variants.push({ name: against, write: ((await import(pathToFileURL(resolve(against)).href)) as { writeHistoryBatch: Write }).writeHistoryBatch });

const body = new TextEncoder().encode('Hello Bob, this is a bench message of some sixty bytes or so.');
const t0 = Date.now();
let n = 0;
const messages = (count: number): RecordedMessage[] =>
  Array.from({ length: count }, () => {
    const i = n++;
    return { sender: `user${String(i % SENDERS).padStart(3, '0')}@parley.test`, recipient: 'bob@parley.test', callId: `${i}-bench@10.0.0.2`, contentType: 'text/plain', body, at: t0 + Math.floor(i / 5), outcome: 'relayed' };
  });
const batch = (): RecordedMessage[] => messages(BATCH);

const POSTGRES = process.argv.includes('--postgres');
const runs = await Promise.all(
  variants.map(async (v) => {
    const dir = mkdtempSync(join(tmpdir(), 'history-micro-'));
    const fresh = POSTGRES ? await freshPostgresDatabase() : undefined;
    const sql: SqlDatabase = fresh === undefined ? sqliteSql(openDatabase(dir)) : await openPostgres(fresh.url, { max: 4 });
    await prepareHistoryDatabase(sql);
    for (let i = 0; i < SENDERS; i++) await addUserRow(sql, { address: `user${String(i).padStart(3, '0')}@parley.test`, displayName: null });
    return { ...v, sql, dir, fresh, file: join(dir, DATABASE_FILE), us: [] as number[], wallMs: [] as number[] };
  }),
);
// the database as a bench run leaves it: the pairs' conversations fill (MAX_CONVERSATION_MESSAGES) and go on in new ones
for (let done = 0; done < PREFILL; done += 240) {
  const b = messages(240);
  for (const r of runs) await r.write(r.sql, b);
}
// `--pragma "cache_size = -16000"` (repeatable): set on each connection after the prefill, to A/B settings
for (let at = process.argv.indexOf('--pragma'); at > 0; at = process.argv.indexOf('--pragma', at + 1)) for (const r of runs) await r.sql.exec(`PRAGMA ${process.argv[at + 1]}`);
const batches = Array.from({ length: BATCHES + 10 }, batch);
// warm up: every pair's conversation opened, statements prepared
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
    const t0 = performance.now();
    for (const b of part) await r.write(r.sql, b);
    r.wallMs.push((performance.now() - t0) / part.length);
    const w = process.cpuUsage(w0);
    r.us.push((w.user + w.system) / (part.length * BATCH));
  }
}
// the WAL frames (pages) a batch writes: the file grows by one frame per page per commit while
// no checkpoint resets it
const frames: Record<string, number> = {};
for (const r of POSTGRES ? [] : runs) {
  await r.sql.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  await r.sql.exec('PRAGMA wal_autocheckpoint = 0');
  const part = Array.from({ length: 50 }, batch);
  for (const b of part) await r.write(r.sql, b);
  const page = (await r.sql.get<{ page_size: number }>('PRAGMA page_size'))?.page_size ?? 4096;
  frames[r.name] = statSync(`${r.file}-wal`).size / (page + 24) / part.length;
}
const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
const median = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round = (x: number | undefined): number => Math.round((x ?? Number.NaN) * 10) / 10;
console.log(JSON.stringify({ batch: BATCH, messages: BATCH * BATCHES, serializeUsPerMessage: round(sorted(clones)[0]), ...Object.fromEntries(runs.map((r) => [r.name, { usPerMessageLeast: round(sorted(r.us)[0]), usPerMessageMedian: round(median(r.us)), msPerBatchMedian: round(median(r.wallMs)), ...(POSTGRES ? {} : { walFramesPerBatch: round(frames[r.name]) }) }])) }));
for (const r of runs) {
  await r.sql.close();
  await r.fresh?.drop();
  rmSync(r.dir, { recursive: true, force: true });
}
await closeTestPostgres();
