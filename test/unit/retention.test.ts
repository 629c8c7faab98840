// Retention (src/retention): the policy's durations and config checks, and each purge against a
// real database file, run by the scheduler with a fake clock: what is old and done goes, what is
// waiting, failed, recent or still needed stays.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { AUTH_MIGRATIONS } from '../../src/auth/index.ts';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { MAILBOX_MIGRATIONS } from '../../src/mailbox/index.ts';
import { changeFloor } from '../../src/mailbox/changes.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import { OFFLINE_MIGRATIONS, oldestSpoolRows, purgeDeliveredBatch, purgeLooseTraceBatch } from '../../src/offline/index.ts';
import { PRESENCE_MIGRATIONS } from '../../src/presence/index.ts';
import { DEFAULT_RETENTION, RetentionScheduler, describeRetention, formatDuration, parseDuration, type RetentionPolicy } from '../../src/retention/index.ts';
import { loadConfig } from '../../src/server/config.ts';
import { SESSION_MIGRATIONS } from '../../src/session/index.ts';
import { SETTINGS_MIGRATIONS } from '../../src/settings/index.ts';
import { type Database, migrate, openDatabase, runMigrations, type Sql, sqliteSql } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 6);
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
after(() => closeTestPostgres());

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'parley-retention-'));
  dirs.push(d);
  return d;
}

describe('retention policy', () => {
  it('reads durations in seconds, s, m, h, d and "forever", and writes them back', async () => {
    assert.equal(parseDuration('30d'), 30 * 86400);
    assert.equal(parseDuration('12h'), 43200);
    assert.equal(parseDuration('15m'), 900);
    assert.equal(parseDuration('90s'), 90);
    assert.equal(parseDuration(45), 45);
    assert.equal(parseDuration('forever'), 'forever');
    for (const bad of ['30', '0d', -1, 0, '1w', '', null, 'never']) assert.equal(parseDuration(bad), undefined, String(bad));
    assert.equal(formatDuration(30 * 86400), '30d');
    assert.equal(formatDuration(5400), '90m');
    assert.equal(formatDuration(61), '61s');
  });

  it('has defaults: delivered 30 days, audit a year, change log 7 to 90 days, every 5 minutes in batches of 200', async () => {
    const c = loadConfig(undefined, {});
    assert.deepEqual(c.retention, DEFAULT_RETENTION);
    assert.deepEqual(describeRetention(c.retention), [
      'delivered offline messages (spool entries, messages, trace): 30d; waiting and failed entries: until delivered or an administrator acts',
      'audit log: 365d',
      'mailbox change log: at least 7d, then once every pull subscription read past it, at most 90d',
      'purge: every 5m, 200 rows a statement',
    ]);
  });

  it('takes a config file key by key and names the setting at fault', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ retention: { delivered: '7d', audit: 'forever', changeLog: { minAge: '1h' }, batch: 100 } }));
    const c = loadConfig(file, {});
    assert.deepEqual(c.retention, { delivered: 7 * 86400, audit: 'forever', changeLog: { minAge: 3600, maxAge: 90 * 86400 }, interval: 300, batch: 100 });
    const refused = (retention: object, message: RegExp) => {
      writeFileSync(file, JSON.stringify({ retention }));
      assert.throws(() => loadConfig(file, {}), message);
    };
    refused({ delivered: '30 days' }, /retention\.delivered must be a duration such as "30d"/);
    refused({ batch: 0 }, /retention\.batch must be a whole number from 1 to 10000/);
    refused({ interval: 'forever' }, /retention\.interval must be a duration from 1 s to 86400 s/);
    refused({ changeLog: { minAge: '100d' } }, /retention\.changeLog\.minAge must not exceed retention\.changeLog\.maxAge/);
    refused({ keep: '1d' }, /unknown setting config\.retention\.keep/);
  });
});

function setUp(): { db: Database; file: string } {
  const dir = tempDir();
  const db = openDatabase(dir);
  runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS, OFFLINE_MIGRATIONS, TRACE_MIGRATIONS, PRESENCE_MIGRATIONS, AUTH_MIGRATIONS, SESSION_MIGRATIONS]);
  return { db, file: path.join(dir, 'parley.db') };
}

function entry(db: Database, id: string, state: string, at: number): void {
  db.prepare(`INSERT INTO spool_entries (id, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, message_count, delivered_at, failed_at)
    VALUES (?, 'a@x', 'b@x', ?, ?, ?, ?, ?, 1, ?, ?)`).run(id, state, at, at, at, at + DAY, state === 'delivered' ? at : null, state === 'failed' ? at : null);
  db.prepare("INSERT INTO spool_messages (entry_id, seq, call_id, received_at, content_type, body) VALUES (?, 0, ?, ?, 'text/plain', 'hi')").run(id, `call-${id}`, at);
  for (const step of ['received', 'spooled', state]) db.prepare("INSERT INTO trace_events (trace_id, call_id, at, step, detail) VALUES (?, ?, ?, ?, '{}')").run(id, `call-${id}`, at, step);
}

const ids = (db: Database, sql: string): string[] => (db.prepare(sql).all() as Array<{ v: string }>).map((r) => String(r.v));

async function runAt(file: string, now: number, policy: Partial<RetentionPolicy> = {}): Promise<RetentionScheduler> {
  // a handle on the file: the scheduler runs the purge in its thread, on a connection of its own
  const sql = sqliteSql(openDatabase(path.dirname(file)));
  const r = new RetentionScheduler({ sql, policy: { ...DEFAULT_RETENTION, batch: 2, ...policy }, logger: createLogger('silent'), lockoutWindowMs: 900_000, now: () => now });
  r.start();
  await r.runOnce();
  await r.close();
  await sql.close();
  return r;
}

for (const engine of ENGINES) {
  describe(`spool and trace retention on ${engine.name}`, () => {
    const at = (sql: Sql, id: string, state: string, when: number) =>
      sql.transaction(async (tx) => {
        await tx.run(
          `INSERT INTO spool_entries (id, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, message_count, delivered_at, failed_at) VALUES (?, 'a@x', 'b@x', ?, ?, ?, ?, ?, 1, ?, ?)`,
          [id, state, when, when, when, when + DAY, state === 'delivered' ? when : null, state === 'failed' ? when : null],
        );
        await tx.run("INSERT INTO spool_messages (entry_id, seq, call_id, received_at, content_type, body) VALUES (?, 0, ?, ?, 'text/plain', ?)", [id, `call-${id}`, when, Buffer.from('hi')]);
        for (const step of ['received', 'spooled', state]) await tx.run("INSERT INTO trace_events (trace_id, call_id, at, step, detail) VALUES (?, ?, ?, ?, '{}')", [id, `call-${id}`, when, step]);
      });

    it('delivered entries past the cutoff go in batches with their messages and trace rows; loose trace rows by a cursor; the oldest kept rows', async () => {
      const sql = await engine.open();
      await migrate(sql, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
      await sql.run("INSERT INTO trace_events (trace_id, call_id, at, step, detail) VALUES (NULL, 'refused-old', ?, 'refused', '{}')", [NOW - 41 * DAY]);
      for (let i = 0; i < 3; i++) await at(sql, `old-${i}`, 'delivered', NOW - 40 * DAY + i);
      await at(sql, 'failed', 'failed', NOW - 300 * DAY);
      await at(sql, 'recent', 'delivered', NOW - 2 * DAY);
      const cutoff = NOW - 30 * DAY;
      assert.deepEqual(await sql.transaction((tx) => purgeDeliveredBatch(tx, cutoff, 2)), { entries: 2, traces: 6 });
      assert.deepEqual(await sql.transaction((tx) => purgeDeliveredBatch(tx, cutoff, 2)), { entries: 1, traces: 3 });
      assert.deepEqual(await sql.transaction((tx) => purgeDeliveredBatch(tx, cutoff, 2)), { entries: 0, traces: 0 });
      const first = await sql.transaction((tx) => purgeLooseTraceBatch(tx, cutoff, 0, 2));
      assert.equal(first.deleted, 1, 'the refusal, no entry of its own');
      assert.equal(first.more, true);
      const second = await sql.transaction((tx) => purgeLooseTraceBatch(tx, cutoff, first.lastSeq, 100));
      assert.deepEqual([second.deleted, second.more], [0, false], 'the failed entry\'s rows stay with it');
      const left = await sql.all<{ id: string }>('SELECT id FROM spool_entries ORDER BY id');
      assert.deepEqual(left.map((r) => r.id), ['failed', 'recent']);
      assert.equal((await sql.get<{ n: number }>('SELECT count(*) AS n FROM spool_messages'))?.n, 2);
      assert.deepEqual(await oldestSpoolRows(sql), { delivered: NOW - 2 * DAY, failed: NOW - 300 * DAY });
      await sql.close();
    });
  });
}

describe('retention purges', () => {
  it('deletes delivered entries past 30 days with their messages and trace rows, in batches; keeps waiting, failed and recent entries', async () => {
    const { db, file } = setUp();
    // a MESSAGE refused at the gate leaves trace rows without an entry (rows are recorded in time order)
    db.prepare("INSERT INTO trace_events (trace_id, call_id, at, step, detail) VALUES (NULL, 'refused-old', ?, 'refused', '{}')").run(NOW - 41 * DAY);
    // seven old delivered entries: four batches of two
    for (let i = 0; i < 7; i++) entry(db, `old-${i}`, 'delivered', NOW - 40 * DAY + i);
    entry(db, 'recent', 'delivered', NOW - 2 * DAY);
    entry(db, 'failed', 'failed', NOW - 300 * DAY);
    entry(db, 'waiting', 'waiting', NOW - 40 * DAY);
    db.prepare("INSERT INTO trace_events (trace_id, call_id, at, step, detail) VALUES (NULL, 'refused-new', ?, 'refused', '{}')").run(NOW - DAY);
    db.prepare("INSERT INTO admin_audit (at, actor, cmdlet, identity) VALUES (?, 'root', 'Set-X', 'Global'), (?, 'root', 'Set-X', 'Global')").run(NOW - 400 * DAY, NOW - 100 * DAY);

    const r = await runAt(file, NOW);
    assert.deepEqual(ids(db, 'SELECT id AS v FROM spool_entries ORDER BY id'), ['failed', 'recent', 'waiting']);
    assert.deepEqual(ids(db, 'SELECT DISTINCT entry_id AS v FROM spool_messages ORDER BY entry_id'), ['failed', 'recent', 'waiting']);
    assert.deepEqual(ids(db, "SELECT DISTINCT coalesce(trace_id, call_id) AS v FROM trace_events ORDER BY 1"), ['failed', 'recent', 'refused-new', 'waiting']);
    assert.equal(ids(db, 'SELECT count(*) AS v FROM admin_audit')[0], '1');
    assert.equal(r.stats.purged.delivered, 7);
    // the entries' own trace rows go with them (counted under delivered); the loose refusal here
    assert.equal(r.stats.purged.trace, 1);
    assert.equal(r.stats.purged.audit, 1);
    assert.equal(r.stats.oldest.delivered, NOW - 2 * DAY);
    assert.equal(r.stats.oldest.failed, NOW - 300 * DAY);
    db.close();
  });

  it('"forever" keeps delivered entries and audit rows', async () => {
    const { db, file } = setUp();
    entry(db, 'old', 'delivered', NOW - 400 * DAY);
    db.prepare("INSERT INTO admin_audit (at, actor, cmdlet, identity) VALUES (?, 'root', 'Set-X', 'Global')").run(NOW - 4000 * DAY);
    await runAt(file, NOW, { delivered: 'forever', audit: 'forever' });
    assert.equal(ids(db, 'SELECT count(*) AS v FROM spool_entries')[0], '1');
    assert.equal(ids(db, 'SELECT count(*) AS v FROM trace_events')[0], '3');
    assert.equal(ids(db, 'SELECT count(*) AS v FROM admin_audit')[0], '1');
    db.close();
  });

  it('compacts the change log below what every live pull subscription read, keeping the Create of each item still there', async () => {
    const { db, file } = setUp();
    db.prepare("INSERT INTO mailboxes (id, address, created_at) VALUES (1, 'b@x', 0)").run();
    const log = (item: string, kind: string, at: number) => db.prepare("INSERT INTO mail_changes (mailbox_id, folder_id, item_id, kind, at) VALUES (1, 'f', ?, ?, ?)").run(item, kind, at);
    const old = NOW - 10 * DAY;
    log('kept', 'create', old); // 1
    log('kept', 'read', old); // 2
    log('gone', 'create', old); // 3
    log('gone', 'delete', old); // 4
    log('late', 'create', old); // 5: a live subscription has read only up to 4
    log('late', 'update', old); // 6
    log('new', 'create', NOW - DAY); // 7: younger than minAge
    db.prepare("INSERT INTO mail_subscriptions (id, mailbox_id, folders_json, events_json, position, timeout_minutes, expires_at) VALUES ('live', 1, '[]', '[]', 4, 30, ?), ('lapsed', 1, '[]', '[]', 0, 30, ?)").run(NOW + 100 * DAY, NOW - 60_000);

    await runAt(file, NOW);
    const rows = () => (db.prepare('SELECT seq, item_id, kind FROM mail_changes ORDER BY seq').all() as Array<{ seq: number; item_id: string; kind: string }>).map((r) => `${r.seq} ${r.item_id} ${r.kind}`);
    assert.deepEqual(rows(), ['1 kept create', '5 late create', '6 late update', '7 new create']);
    assert.equal(await changeFloor(sqliteSql(db)), 4);
    assert.deepEqual(ids(db, 'SELECT id AS v FROM mail_subscriptions'), ['live']);

    // past maxAge the log goes even though the subscription has not read it; the subscription ends
    await runAt(file, NOW + 85 * DAY);
    // (once that subscription ended, nothing holds the rest back: the floor reaches the end)
    assert.deepEqual(rows(), ['1 kept create', '5 late create', '7 new create']);
    assert.equal(await changeFloor(sqliteSql(db)), 7);
    assert.deepEqual(ids(db, 'SELECT id AS v FROM mail_subscriptions'), []);
    db.close();
  });

  it('sweeps expired web sessions, ended lockouts and old familiar sources', async () => {
    const { db, file } = setUp();
    db.prepare("INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at) VALUES ('a@x', 'A', 'h', 'x', 'm', 's', 0, 0)").run();
    db.prepare("INSERT INTO web_sessions (token_hash, address, password_stamp, created_at, last_seen) VALUES ('old', 'a@x', 's', ?, ?), ('new', 'a@x', 's', ?, ?)").run(NOW - 8 * DAY, NOW - 8 * DAY, NOW - 60_000, NOW - 60_000);
    db.prepare("INSERT INTO auth_lockouts (kind, key, failures, last_failure, locked_until, lockouts) VALUES ('source', '192.0.2.1', 10, ?, ?, 1), ('source', '192.0.2.2', 10, ?, ?, 1)").run(NOW - DAY, NOW - DAY, NOW - 1000, NOW + 60_000);
    await runAt(file, NOW);
    assert.deepEqual(ids(db, 'SELECT token_hash AS v FROM web_sessions'), ['new']);
    assert.deepEqual(ids(db, 'SELECT key AS v FROM auth_lockouts'), ['192.0.2.2']);
    db.close();
  });
});
