// The offline pipeline and Conversation History end to end in process, on both engines: the
// settings, the directory, the embedded mailboxes and the spool in one database. A MESSAGE is
// answered only once its entry is committed (read back through another of the pool's
// connections on PostgreSQL); the worker delivers it into the mailboxes once; a conversation
// recorded by the group commit becomes its participants' history items.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { writeHistoryBatch } from '../../src/history/commit.ts';
import { HISTORY_MIGRATIONS } from '../../src/history/schema.ts';
import { HistoryWorker } from '../../src/history/worker.ts';
import { CONVERSATION_CLASS, EmbeddedMailboxConnector, MAILBOX_MIGRATIONS, MISSED_CLASS, ensureMailbox, findItems, getDistinguishedFolder } from '../../src/mailbox/index.ts';
import { OFFLINE_MIGRATIONS, OfflineService, createMailboxRouting, getEntry, listEntries } from '../../src/offline/index.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import { GLOBAL, IM_CONFIGURATION, SETTINGS_MIGRATIONS, updateInstance } from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { addUserRow } from './presence-database.ts';

after(() => closeTestPostgres());

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const ALICE = 'alice@parley.test';
const BOB = 'bob@parley.test';
const change = { actor: 'test', cmdlet: 'test', now: () => 1 };
const logger = pino({ level: 'silent' });
const enc = (s: string) => new TextEncoder().encode(s);

/** A database on `engine` with every table the pipeline uses, and alice and bob. */
async function preparedDatabase(engine: (typeof ENGINES)[number]): Promise<SqlDatabase> {
  const sql = await engine.open();
  await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS, OFFLINE_MIGRATIONS, TRACE_MIGRATIONS, HISTORY_MIGRATIONS]);
  await addUserRow(sql, { address: ALICE, displayName: 'Alice Example' });
  await addUserRow(sql, { address: BOB, displayName: 'Bob Example' });
  return sql;
}

for (const engine of ENGINES) {
  describe(`offline IM and Conversation History on ${engine.name}`, () => {
    let sql: SqlDatabase;
    let clock: number;
    let embedded: EmbeddedMailboxConnector;
    let service: OfflineService;
    const displayName = async (a: string) => (await sql.get<{ n: string | null }>('SELECT display_name AS n FROM users WHERE address = ?', [a]))?.n ?? null;

    beforeEach(async () => {
      sql = await preparedDatabase(engine);
      clock = T0;
      embedded = new EmbeddedMailboxConnector({ sql, userExists: async () => true, now: () => clock });
      service = new OfflineService({
        sql,
        logger,
        domain: 'parley.test',
        routing: createMailboxRouting({ servers: {}, users: {} }, embedded),
        displayName,
        retry: { baseMs: 1000, maxMs: 8000 },
        deliveryBatch: 16,
        commitWindowMs: 2,
        commitMaxBatch: 100,
        timeZone: 'UTC',
        now: () => clock,
      });
      await service.start();
    });
    afterEach(async () => {
      await service.close();
      await sql.close();
    });

    const items = async (address: string) => {
      const mailbox = await ensureMailbox(sql, address);
      return (await findItems(sql, mailbox.id, (await getDistinguishedFolder(sql, mailbox.id, 'conversationhistory')).id)).items;
    };

    it('messages accepted together go in one group commit, committed before they are answered, and become one Missed Conversation and one copy', async () => {
      const decisions = await Promise.all(['one', 'two', 'three'].map((t) => service.accept({ sender: ALICE, recipient: BOB, callId: `c-${t}`, contentType: 'text/plain', body: enc(t), why: 'not signed in' })));
      assert.ok(decisions.every((d) => d.kind === 'spooled'));
      const entryId = decisions[0]?.kind === 'spooled' ? decisions[0].entryId : '';
      assert.ok(decisions.every((d) => d.kind === 'spooled' && d.entryId === entryId), 'one entry');
      // answered: on disk, seen by any connection
      assert.equal((await getEntry(sql, entryId)).messageCount, 3);
      clock = T0 + 120_000;
      assert.equal(await service.worker.runOnce(), 1);
      const missed = await items(BOB);
      assert.deepEqual(missed.map((i) => [i.itemClass, i.subject]), [[MISSED_CLASS, 'Missed conversation with Alice Example']]);
      assert.deepEqual((await items(ALICE)).map((i) => i.itemClass), [CONVERSATION_CLASS]);
      assert.equal((await getEntry(sql, entryId)).state, 'delivered');
      assert.deepEqual(service.quota.waitingFrom(ALICE), { messages: 0, bytes: 0 }, 'delivered: the quota is free again');
      assert.equal(await service.worker.runOnce(), 0);
    });

    it('the gate reads the settings on the same database: a refusal is answered and traced', async () => {
      await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change);
      const refused = await service.accept({ sender: ALICE, recipient: BOB, callId: 'c-no', contentType: 'text/plain', body: enc('no'), why: 'not signed in' });
      assert.match(refused.kind === 'refused' ? refused.warning : '', /EnableOfflineIm is False/);
      await service.close();
      assert.deepEqual((await readTrace(sql, 'c-no')).map((s) => [s.step, s.detail.decision]), [['gated', 'refused']]);
    });

    it('a conversation the group commit recorded becomes one history item per participant, delivered by the spool', async () => {
      const summary = await writeHistoryBatch(sql, [
        { sender: ALICE, recipient: BOB, callId: 'h1', contentType: 'text/plain', body: enc('hi bob'), at: T0, outcome: 'relayed' },
        { sender: BOB, recipient: ALICE, callId: 'h2', contentType: 'text/plain', body: enc('hi alice'), at: T0 + 1000, outcome: 'relayed' },
      ]);
      assert.deepEqual(summary, { recorded: 2, displayed: 0, opened: 1 });
      const worker = new HistoryWorker({ sql, logger, displayName, now: () => clock });
      assert.deepEqual(await worker.round(T0 + 1000 + 600_000), { missed: 0, closed: 1, entries: 2 });
      assert.deepEqual((await listEntries(sql)).map((e) => e.kind), ['history', 'history']);
      clock = T0 + 1000 + 600_000;
      assert.equal(await service.worker.runOnce(), 2);
      for (const who of [ALICE, BOB]) assert.deepEqual((await items(who)).map((i) => [i.itemClass, i.subject]), [[CONVERSATION_CLASS, `Conversation with ${who === ALICE ? 'Bob Example' : 'Alice Example'}`]]);
    });
  });
}

// The nodes of a cluster share one spool: each admits messages and any may deliver them. Their
// quota tallies must follow the spool, not each node's own counting (shared: true).
for (const engine of ENGINES) {
  describe(`a spool shared by two servers on ${engine.name}`, () => {
    let sql: SqlDatabase;
    let clock: number;
    const nodes: OfflineService[] = [];

    const node = (name: string): OfflineService =>
      new OfflineService({
        sql,
        logger,
        node: name,
        domain: 'parley.test',
        routing: createMailboxRouting({ servers: {}, users: {} }, new EmbeddedMailboxConnector({ sql, userExists: async () => true, now: () => clock })),
        displayName: async () => null,
        retry: { baseMs: 1000, maxMs: 8000 },
        deliveryBatch: 16,
        commitWindowMs: 2,
        commitMaxBatch: 100,
        timeZone: 'UTC',
        // a limit of two waiting messages per recipient, whichever node admitted them
        quota: { sender: { maxMessages: 100, maxBytes: 1_000_000, perMinute: 1000 }, recipient: { maxMessages: 2, maxBytes: 1_000_000 } },
        shared: true,
        now: () => clock,
      });

    beforeEach(async () => {
      sql = await preparedDatabase(engine);
      clock = T0;
      nodes.push(node('node-a'), node('node-b'));
      for (const n of nodes) await n.start();
    });
    afterEach(async () => {
      for (const n of nodes.splice(0)) await n.close();
      await sql.close();
    });

    it('what one node admits counts on the other, and what the other delivers frees it on both', async () => {
      const [a, b] = nodes as [OfflineService, OfflineService];
      const send = (via: OfflineService, text: string) => via.accept({ sender: ALICE, recipient: BOB, callId: `c-${text}`, contentType: 'text/plain', body: enc(text), why: 'not signed in' });
      assert.equal((await send(a, 'one')).kind, 'spooled');
      assert.equal((await send(a, 'two')).kind, 'spooled');
      // node b has not admitted anything itself; once it reads the spool it holds bob's two
      await b.reconcile();
      assert.deepEqual(b.quota.waitingFor(BOB), { messages: 2, bytes: 6 });
      const refused = await send(b, 'three');
      assert.equal(refused.kind === 'refused' ? refused.quota : refused.kind, 'recipient-messages');
      // node b's worker delivers what node a admitted
      clock = T0 + 120_000;
      assert.equal(await b.worker.runOnce(), 1);
      assert.equal(await a.worker.runOnce(), 0, 'delivered once, by one node');
      await a.reconcile();
      await b.reconcile();
      for (const n of [a, b]) assert.deepEqual(n.quota.waitingFor(BOB), { messages: 0, bytes: 0 }, 'free again on both nodes');
      assert.equal((await send(a, 'four')).kind, 'spooled');
    });
  });
}
