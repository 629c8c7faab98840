// The pure parts of readiness and the drain: the report /ready answers, the database write probe
// (an in-memory database made read-only with query_only: a real refusal of a write, which the
// e2e test cannot produce on a data directory, as the tests run as root), the count of requests
// in flight, and the dispatcher's 503 to new requests while the server stops.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { createDispatcher } from '../../src/router/dispatch.ts';
import type { MethodHandler, SipContext } from '../../src/router/context.ts';
import { RequestDrain } from '../../src/router/drain.ts';
import { cachedChecks, databaseWritable, postgresWritable, readinessReport, type ReadinessCheck } from '../../src/server/readiness.ts';
import { migrate, openMemoryDatabase, openPostgres, runMigrations } from '../../src/storage/index.ts';
import { closeTestPostgres, freshPostgresDatabase } from '../harness/engines.ts';
import { parseMessage } from '../../src/sip/index.ts';
import type { Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';

const ok = (name: string): ReadinessCheck => ({ name, probe: () => null });
const failing = (name: string, reason: string): ReadinessCheck => ({ name, probe: () => reason });

describe('readinessReport', () => {
  it('200 with every check when all pass', async () => {
    const r = await readinessReport([ok('database'), ok('spool writer')], false);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ready', checks: [{ name: 'database', ok: true }, { name: 'spool writer', ok: true }] });
  });

  it('503 NOT_READY naming each failure and its reason; a check that throws has failed', async () => {
    const r = await readinessReport([ok('database'), failing('spool writer', 'spool writer thread is not running'), { name: 'SIP tcp 127.0.0.1:5060', probe: () => { throw new Error('boom'); } }], false);
    assert.equal(r.status, 503);
    assert.equal(r.body.status, 503);
    assert.ok('code' in r.body && r.body.code === 'NOT_READY');
    assert.ok('detail' in r.body);
    assert.equal(r.body.detail, 'spool writer thread is not running; SIP tcp 127.0.0.1:5060 check failed: boom');
    assert.deepEqual(r.body.checks.map((c) => c.ok), [true, false, false]);
  });

  it('503 DRAINING while stopping, even when every check passes', async () => {
    const r = await readinessReport([ok('database')], true);
    assert.equal(r.status, 503);
    assert.ok('code' in r.body && r.body.code === 'DRAINING');
    assert.deepEqual(r.body.checks, [{ name: 'database', ok: true }]);
  });
});

describe('cachedChecks', () => {
  it('runs the probes at most once a second however often /ready is asked', async () => {
    let now = 1_000_000;
    let probes = 0;
    const results = cachedChecks([{ name: 'database', probe: () => (++probes > 1 ? 'database is not writable: x' : null) }], 1000, () => now);
    for (let i = 0; i < 1000; i++) assert.deepEqual(await results(), [{ name: 'database', ok: true }]);
    assert.equal(probes, 1, 'a flood of requests is one probe');
    now += 1000;
    assert.deepEqual(await results(), [{ name: 'database', ok: false, reason: 'database is not writable: x' }], 'a second later the checks run again');
    assert.equal(probes, 2);
  });
});

describe('databaseWritable', () => {
  function database() {
    const db = openMemoryDatabase();
    runMigrations(db, []);
    return db;
  }

  it('passes on a writable database, leaves no transaction open and the busy timeout as it was', () => {
    const db = database();
    const before = db.prepare('PRAGMA busy_timeout').get();
    assert.equal(databaseWritable(db).probe(), null);
    assert.equal(db.isTransaction, false);
    assert.deepEqual(db.prepare('PRAGMA busy_timeout').get(), before);
    db.close();
  });

  it('fails with SQLite\'s reason when writes are refused, and leaves the connection usable', () => {
    const db = database();
    db.exec('PRAGMA query_only = ON');
    assert.equal(databaseWritable(db).probe(), 'database is not writable: attempt to write a readonly database');
    assert.equal(db.isTransaction, false);
    db.exec('PRAGMA query_only = OFF');
    assert.equal(databaseWritable(db).probe(), null);
    db.close();
  });

  it('fails when the database is closed', () => {
    const db = database();
    db.close();
    assert.equal(databaseWritable(db).probe(), 'database is closed');
  });
});

describe('postgresWritable', () => {
  after(() => closeTestPostgres());

  it('passes on a writable database and leaves nothing behind; fails with PostgreSQL\'s reason on a read-only one', async () => {
    const fresh = await freshPostgresDatabase();
    const sql = await openPostgres(fresh.url, { max: 1 });
    await migrate(sql, []);
    assert.equal(await postgresWritable(sql).probe(), null);
    assert.equal((await sql.get<{ n: number }>('SELECT count(*) AS n FROM schema_migrations'))?.n, 0);
    await sql.exec(`ALTER DATABASE ${fresh.name} SET default_transaction_read_only = on`);
    await sql.close();
    const readOnly = await openPostgres(fresh.url, { max: 1 });
    assert.match((await postgresWritable(readOnly).probe()) ?? '', /^database is not writable: cannot execute DELETE in a read-only transaction/);
    await readOnly.close();
    await fresh.drop();
  });
});

describe('RequestDrain', () => {
  it('idle resolves true once every request in flight settles, a rejected one included', async () => {
    const drain = new RequestDrain(10);
    let finish!: () => void;
    let fail!: (e: Error) => void;
    drain.track(new Promise<void>((r) => (finish = r)));
    const failing = new Promise<void>((_, r) => (fail = r));
    failing.catch(() => undefined); // the dispatcher handles the rejection; the drain only counts it
    drain.track(failing);
    assert.equal(drain.inFlight, 2);
    const idle = drain.idle(60_000);
    finish();
    await Promise.resolve();
    assert.equal(drain.inFlight, 1);
    fail(new Error('handler failed'));
    assert.equal(await idle, true);
    assert.equal(drain.inFlight, 0);
  });

  it('idle resolves false after its timeout when a request never settles; true at once when none is in flight', async () => {
    const drain = new RequestDrain(10);
    assert.equal(await drain.idle(1), true);
    drain.track(new Promise<void>(() => undefined));
    assert.equal(await drain.idle(5), false);
    assert.equal(drain.inFlight, 1);
  });

  it('Retry-After is whole seconds, at least 1', () => {
    assert.equal(new RequestDrain(0.2).retryAfter, 1);
    assert.equal(new RequestDrain(10).retryAfter, 10);
  });
});

describe('the dispatcher while draining', () => {
  it('answers a new MESSAGE 503 with Retry-After and a Warning, and never calls its handler; ACK stays unanswered', () => {
    const sent: SipResponse[] = [];
    const flow = { id: 'tcp#1', protocol: 'tcp', reliable: true, closed: false, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 }, send: (b: Buffer) => (sent.push(parseMessage(b) as SipResponse), true) } as unknown as Flow;
    let handled = 0;
    const handler: MethodHandler = { method: 'MESSAGE', handle: () => void handled++ } as unknown as MethodHandler;
    const drain = new RequestDrain(10);
    const ctx = { domain: 'parley.test', product: 'Parley/test', logger: pino({ level: 'silent' }), allow: ['MESSAGE'], drain } as unknown as SipContext;
    const dispatch = createDispatcher(ctx, [handler]);
    const request = (method: string) => parseMessage(Buffer.from([`${method} sip:bob@parley.test SIP/2.0`, 'Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK1', 'Max-Forwards: 70', 'From: <sip:alice@parley.test>;tag=a', 'To: <sip:bob@parley.test>', 'Call-ID: c1', `CSeq: 1 ${method}`, 'Content-Length: 0', '', ''].join('\r\n'))) as SipRequest;

    dispatch(request('MESSAGE'), flow, null);
    assert.equal(handled, 1);
    assert.equal(sent.length, 0);
    drain.start();
    dispatch(request('MESSAGE'), flow, null);
    dispatch(request('ACK'), flow, null);
    assert.equal(handled, 1);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.status, 503);
    assert.equal(sent[0]?.headers.get('retry-after'), '10');
    assert.match(sent[0]?.headers.get('warning') ?? '', /^399 parley\.test "the server is stopping/);
  });
});
