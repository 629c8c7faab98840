// GET /ready on the HTTP port: whether this node should be given traffic. /health says the process
// is alive (the event loop answers); /ready says it can do its work: the database takes writes,
// the spool writer thread runs, every listener is bound, and the server is not stopping. A load
// balancer's probe reads it without credentials, so the answers name what failed and why, never
// a path, a user or a secret.

import type http from 'node:http';
import { makeProblem } from '../admin/index.ts';
import { statement, type Database, type Sql } from '../storage/index.ts';
import type { HttpRoute } from './http.ts';

export const READY_PATH = '/ready';

/** One thing readiness depends on: `probe` returns null when it is fine, else why it is not. */
export interface ReadinessCheck {
  readonly name: string;
  probe(): string | null | Promise<string | null>;
}

export interface ReadinessResult {
  name: string;
  ok: boolean;
  reason?: string;
}

export type ReadinessReport =
  | { status: 200; body: { status: 'ready'; checks: ReadinessResult[] } }
  | { status: 503; body: ReturnType<typeof makeProblem> & { checks: ReadinessResult[] } };

/**
 * Runs every check (a check that throws has failed, with its message) and builds the answer:
 * 200 when all pass and the server is not draining; 503 DRAINING while it stops (whatever the
 * checks say: a load balancer must take the node out), 503 NOT_READY with each failure otherwise.
 */
export async function readinessReport(checks: readonly ReadinessCheck[], draining: boolean): Promise<ReadinessReport> {
  return reportOf(await runChecks(checks), draining);
}

/** Every check's result; a check that throws has failed, with its message. */
function runChecks(checks: readonly ReadinessCheck[]): Promise<ReadinessResult[]> {
  return Promise.all(
    checks.map(async (c): Promise<ReadinessResult> => {
      let reason: string | null;
      try {
        reason = await c.probe();
      } catch (err) {
        reason = `${c.name} check failed: ${err instanceof Error ? err.message : String(err)}`;
      }
      return reason === null ? { name: c.name, ok: true } : { name: c.name, ok: false, reason };
    }),
  );
}

/** How long the checks' results answer /ready before they are run again, ms. */
export const CHECKS_TTL_MS = 1000;

/**
 * The checks' results, run at most once per `ttlMs`: /ready is open to anyone, and the database
 * probe may wait up to PROBE_BUSY_MS for the spool writer's lock on the event loop that carries
 * SIP, so a flood of /ready requests must not turn into a flood of probes. A load balancer asks
 * every few seconds; an answer up to a second old serves it.
 */
export function cachedChecks(checks: readonly ReadinessCheck[], ttlMs = CHECKS_TTL_MS, now: () => number = Date.now): () => Promise<ReadinessResult[]> {
  // the promise is kept, so the requests that come while a probe runs share it
  let last: { at: number; results: Promise<ReadinessResult[]> } | undefined;
  return () => {
    const t = now();
    if (last === undefined || t - last.at >= ttlMs) last = { at: t, results: runChecks(checks) };
    return last.results;
  };
}

function reportOf(results: ReadinessResult[], draining: boolean): ReadinessReport {
  if (draining) {
    return { status: 503, body: { ...makeProblem(503, 'DRAINING', 'the server is stopping (SIGTERM): it takes no new connections or requests'), checks: results } };
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) return { status: 503, body: { ...makeProblem(503, 'NOT_READY', failed.map((r) => r.reason).join('; ')), checks: results } };
  return { status: 200, body: { status: 'ready', checks: results } };
}

/** How long the database probe waits for another writer's lock before it calls the database busy, ms. */
export const PROBE_BUSY_MS = 100;

/**
 * A real write, undone: BEGIN IMMEDIATE takes the write lock (so a read-only file, a read-only
 * connection or a lock held for good shows here), a DELETE that matches nothing is a write
 * statement, and ROLLBACK leaves no trace. The lock wait is cut to PROBE_BUSY_MS for the probe so
 * that the event loop, which carries SIP, is never held longer.
 */
export function databaseWritable(db: Database): ReadinessCheck {
  return {
    name: 'database',
    probe() {
      if (!db.isOpen) return 'database is closed';
      // a transaction of the loop's own is open only within one synchronous step, never between turns
      if (db.isTransaction) return null;
      const previous = (statement(db, 'PRAGMA busy_timeout').get() as { timeout: number }).timeout;
      db.exec(`PRAGMA busy_timeout = ${PROBE_BUSY_MS}`);
      try {
        db.exec('BEGIN IMMEDIATE');
        db.exec('DELETE FROM schema_migrations WHERE 0');
        return null;
      } catch (err) {
        const e = err as { errstr?: string; errcode?: number; message?: string };
        const what = e.errcode === 5 ? `locked by another writer for over ${PROBE_BUSY_MS} ms` : (e.errstr ?? e.message ?? String(err));
        return `database is not writable: ${what}`;
      } finally {
        if (db.isTransaction) db.exec('ROLLBACK');
        db.exec(`PRAGMA busy_timeout = ${previous}`);
      }
    },
  };
}

export interface ReadyRouteOptions {
  checks: readonly ReadinessCheck[];
  draining(): boolean;
  product: string;
}

export function createReadyRoute(opts: ReadyRouteOptions): HttpRoute {
  const results = cachedChecks(opts.checks);
  return {
    handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
      if (url.pathname !== READY_PATH) return false;
      req.resume();
      const base = { server: opts.product, 'cache-control': 'no-store' };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        const body = JSON.stringify(makeProblem(405, 'METHOD_NOT_ALLOWED', '/ready is read with GET or HEAD'));
        res.writeHead(405, { ...base, allow: 'GET, HEAD', 'content-type': 'application/problem+json; charset=utf-8' });
        res.end(`${body}\n`);
        return true;
      }
      void results().then((checked) => {
        // draining is read each time: a stopping server is taken out at once
        const report = reportOf(checked, opts.draining());
        const body = `${JSON.stringify(report.body)}\n`;
        const type = report.status === 200 ? 'application/json; charset=utf-8' : 'application/problem+json; charset=utf-8';
        res.writeHead(report.status, { ...base, 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      return true;
    },
  };
}

/** How long the PostgreSQL probe may take before it calls the database unwritable, ms. */
export const PROBE_TIMEOUT_MS = 1000;

/**
 * The same probe on PostgreSQL: a write statement in a transaction that is rolled back, limited by
 * a statement and lock timeout, so a read-only replica (after a fail-over that went wrong), a
 * server that refuses connections or a table locked for good shows here.
 */
export function postgresWritable(sql: Sql): ReadinessCheck {
  const undo = new Error('probe done');
  return {
    name: 'database',
    async probe() {
      try {
        await sql.transaction(
          async (tx) => {
            await tx.exec(`SET LOCAL statement_timeout = ${PROBE_TIMEOUT_MS}; SET LOCAL lock_timeout = ${PROBE_TIMEOUT_MS}`);
            await tx.run('DELETE FROM schema_migrations WHERE 1 = 0');
            throw undo;
          },
          { isolation: 'read committed' },
        );
        return null;
      } catch (err) {
        if (err === undo) return null;
        return `database is not writable: ${err instanceof Error ? err.message : String(err)}`;
      }
    },
  };
}
