// Spool drain rate (Parley only, after scenario 3): how fast the History Spooler empties into the
// embedded mailbox. Scenario 3 runs with a long pickup delay, so its entries are all still
// waiting; this moves every waiting entry's next attempt to now (as if the pickup delay had ended
// for all of them at once: the backlog after an outage, or a burst reaching its pickup time) and
// then polls <dataDir>/parley.db on a read-only connection (or, for Parley on PostgreSQL, its
// database on a connection of its own) until no entry is waiting or being delivered. The worker wakes within its idle poll (1 s) and delivers in rounds of
// offlineIm.deliveryBatch entries; each delivered entry makes two mailbox items (the recipient's
// Missed Conversation and the sender's Conversation).

import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openPostgres, sqliteSql } from '../src/storage/index.ts';
import type { Sql } from '../src/storage/index.ts';
import type { BenchServer } from './servers.ts';
import { cpuSeconds, postgresCpu } from './servers.ts';

export interface DrainReport {
  /** entries waiting when the drain started, and the messages in them */
  entries: number;
  messages: number;
  delivered: number;
  failed: number;
  /** mail_items rows created during the drain */
  items: number;
  /** from making the entries due to the first sample that saw one delivered, s */
  startSec: number;
  /** from the first sample that saw a delivery to the one that saw the spool empty, s */
  busySec: number;
  /** delivered entries / busySec, and mailbox items / busySec */
  entriesPerSec: number;
  itemsPerSec: number;
  /** entries/s over the first and the second half of the delivered entries: the rate falls when the work per delivery grows with the mailboxes */
  halves: [number, number];
  /** server CPU over the busy interval (1.0 = one core) */
  cpu: number;
  /** Parley on PostgreSQL, over the busy interval (1.0 = one core): the whole PostgreSQL server, and Parley's own backends */
  postgresCpu?: { server: number; database: number };
  /** set when the spool did not empty in time */
  incomplete?: string;
}

const POLL_MS = 100;

/** The spool's counters in one statement (both engines). */
const COUNTS = `SELECT
  (SELECT count(*) FROM spool_entries WHERE state = 'delivered') AS delivered,
  (SELECT count(*) FROM spool_entries WHERE state = 'failed') AS failed,
  (SELECT count(*) FROM spool_entries WHERE state IN ('waiting', 'delivering')) AS open,
  (SELECT count(*) FROM mail_items) AS items`;

interface Counts {
  delivered: number;
  failed: number;
  open: number;
  items: number;
}

async function counts(sql: Sql): Promise<Counts> {
  const row = (await sql.get<Record<keyof Counts, number | bigint | string>>(COUNTS))!;
  return { delivered: Number(row.delivered), failed: Number(row.failed), open: Number(row.open), items: Number(row.items) };
}

/**
 * The server's spool: on SQLite a read-write connection (to make the entries due, closed at once)
 * and a read-only one to poll; on PostgreSQL one connection for both.
 */
async function openSpool(server: BenchServer): Promise<{ writer: Sql; reader(): Sql; close(): Promise<void> }> {
  if (server.postgres) {
    const sql = await openPostgres(server.postgres.url, { max: 1, applicationName: 'parley-bench-drain' });
    return { writer: sql, reader: () => sql, close: () => sql.close() };
  }
  if (!server.dataDir) throw new Error('the drain needs the server data directory');
  const file = path.join(server.dataDir, 'parley.db');
  const rw = new DatabaseSync(file, { timeout: 10_000 });
  let ro: DatabaseSync | undefined;
  return {
    writer: sqliteSql(rw),
    reader() {
      if (rw.isOpen) rw.close();
      ro ??= new DatabaseSync(file, { readOnly: true, timeout: 10_000 });
      return sqliteSql(ro);
    },
    async close() {
      if (rw.isOpen) rw.close();
      ro?.close();
    },
  };
}

export async function measureDrain(server: BenchServer, opts: { timeoutMs: number; stallMs: number }): Promise<DrainReport> {
  const count = async (sql: Sql, text: string): Promise<number> => Number((await sql.get<{ n: number | bigint | string }>(text))!.n);
  const spool = await openSpool(server);
  const pgCpu = () => (server.postgres ? postgresCpu(server.postgres.name) : undefined);
  try {
    const rw = spool.writer;
    const entries = await count(rw, "SELECT count(*) AS n FROM spool_entries WHERE state = 'waiting'");
    const messages = await count(rw, "SELECT count(*) AS n FROM spool_messages m JOIN spool_entries e ON e.id = m.entry_id WHERE e.state = 'waiting'");
    const base = await counts(rw);
    const t0 = performance.now();
    await rw.run("UPDATE spool_entries SET next_attempt_at = ? WHERE state = 'waiting'", [Date.now()]);
    const ro = spool.reader();
    const sample = async () => {
      const c = await counts(ro);
      return {
        t: performance.now(),
        cpu: cpuSeconds(server.pid),
        pg: pgCpu(),
        delivered: c.delivered - base.delivered,
        failed: c.failed - base.failed,
        open: c.open,
        items: c.items - base.items,
      };
    };
    let first: Awaited<ReturnType<typeof sample>> | undefined;
    let last = await sample();
    const samples = [last];
    let lastProgress = last.t;
    let incomplete: string | undefined;
    while (last.open > 0) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      const s = await sample();
      if (s.delivered + s.failed > last.delivered + last.failed) lastProgress = s.t;
      if (first === undefined && s.delivered + s.failed > 0) first = last; // the sample before the first delivery
      last = s;
      samples.push(s);
      if (s.t - lastProgress > opts.stallMs) {
        incomplete = `no entry finished for ${(opts.stallMs / 1000).toFixed(0)} s; ${s.open} still open`;
        break;
      }
      if (s.t - t0 > opts.timeoutMs) {
        incomplete = `stopped after ${(opts.timeoutMs / 1000).toFixed(0)} s; ${s.open} still open`;
        break;
      }
    }
    const from = first ?? last;
    const busySec = Math.max(0.001, (last.t - from.t) / 1000);
    // the sample where half of the entries were delivered splits the busy interval
    const mid = samples.find((x) => x.t >= from.t && x.delivered >= (from.delivered + last.delivered) / 2) ?? last;
    const rate = (a: typeof last, b: typeof last) => (b.t > a.t ? ((b.delivered - a.delivered) * 1000) / (b.t - a.t) : 0);
    const pg = from.pg && last.pg ? { server: (last.pg.server - from.pg.server) / busySec, database: (last.pg.database - from.pg.database) / busySec } : undefined;
    return {
      entries,
      messages,
      delivered: last.delivered,
      failed: last.failed,
      items: last.items,
      startSec: (from.t - t0) / 1000,
      busySec,
      entriesPerSec: (last.delivered - from.delivered) / busySec,
      itemsPerSec: (last.items - from.items) / busySec,
      halves: [rate(from, mid), rate(mid, last)],
      cpu: (last.cpu - from.cpu) / busySec,
      ...(pg ? { postgresCpu: pg } : {}),
      ...(incomplete ? { incomplete } : {}),
    };
  } finally {
    await spool.close();
  }
}
