// The offline spool's quotas (issue 18, finding 3): the tallies of SpoolQuota alone, then the
// pipeline (OfflineService on an in-memory database, a hand-driven clock): a group-commit batch of
// one sender's messages, the mailbox quota counting what waits, deliveries and purges giving back.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { UNLIMITED } from '../../src/bytes.ts';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { EmbeddedMailboxConnector, MAILBOX_MIGRATIONS, MailboxQuota, ensureMailbox, mailboxUsage } from '../../src/mailbox/index.ts';
import { OFFLINE_MIGRATIONS, OfflineService, SpoolQuota, createMailboxRouting, getEntry, purgeEntry } from '../../src/offline/index.ts';
import type { OfflineDecision, OfflineMessage, SpoolQuotaLimits } from '../../src/offline/index.ts';
import { listRefusals } from '../../src/offline/quota-store.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import { SETTINGS_MIGRATIONS } from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { addUserRow } from './presence-database.ts';

const KB = 1024;
const limits = (sender: Partial<SpoolQuotaLimits['sender']>, recipient: Partial<SpoolQuotaLimits['recipient']> = {}): SpoolQuotaLimits => ({
  sender: { maxBytes: UNLIMITED, maxMessages: UNLIMITED, perMinute: UNLIMITED, ...sender },
  recipient: { maxBytes: UNLIMITED, maxMessages: UNLIMITED, ...recipient },
});
const m = (sender: string, recipient: string, bytes: number, now = 0) => ({ sender: `${sender}@parley.test`, recipient: `${recipient}@parley.test`, bytes, now });

describe('SpoolQuota', () => {
  it('a sender\'s undelivered bytes: admitted up to the limit exactly, then refused naming it; a delivery gives back', () => {
    const q = new SpoolQuota(limits({ maxBytes: 300 * KB }));
    for (let i = 0; i < 5; i++) assert.equal(q.admit(m('alice', 'bob', 60 * KB)), undefined, `message ${i + 1}`);
    const refused = q.admit(m('alice', 'bob', 60 * KB));
    assert.equal(refused?.reason, 'sender-bytes');
    assert.equal(refused?.setting, 'offlineIm.senderQuota.maxBytes');
    assert.equal(refused?.warning, 'offline message refused: alice@parley.test has 300 KB waiting for delivery and this message of 60 KB would pass the limit of 300 KB (offlineIm.senderQuota.maxBytes); try again once they are delivered');
    assert.equal(q.admit(m('carol', 'dave', 60 * KB)), undefined, 'another sender is not held by alice\'s limit');
    assert.deepEqual(q.waitingFrom('alice@parley.test'), { messages: 5, bytes: 300 * KB });
    q.release('alice@parley.test', 'bob@parley.test', { messages: 2, bytes: 120 * KB });
    assert.equal(q.admit(m('alice', 'bob', 60 * KB)), undefined);
    assert.deepEqual(q.refusals['sender-bytes'], 1);
  });

  it('a sender\'s message count, a recipient\'s bytes and count across senders', () => {
    const q = new SpoolQuota(limits({ maxMessages: 3 }, { maxBytes: 10 * KB, maxMessages: 4 }));
    for (let i = 0; i < 3; i++) assert.equal(q.admit(m('alice', 'bob', 100)), undefined);
    assert.equal(q.admit(m('alice', 'carol', 100))?.reason, 'sender-messages');
    assert.equal(q.admit(m('eve', 'bob', 100)), undefined);
    const many = q.admit(m('frank', 'bob', 100));
    assert.equal(many?.reason, 'recipient-messages');
    assert.equal(many?.address, 'bob@parley.test');
    assert.match(many?.warning ?? '', /bob@parley\.test has 4 offline messages waiting for delivery, the limit is 4 \(offlineIm\.recipientQuota\.maxMessages\)/);
    assert.equal(q.admit(m('frank', 'carol', 9 * KB)), undefined);
    assert.equal(q.admit(m('eve', 'carol', 2 * KB))?.reason, 'recipient-bytes');
  });

  it('the rate: a burst of perMinute, then one every 60/perMinute s, with the wait to tell', async () => {
    const q = new SpoolQuota(limits({ perMinute: 6 }));
    for (let i = 0; i < 6; i++) assert.equal(q.admit(m('alice', 'bob', 10, 1000)), undefined);
    const fast = q.admit(m('alice', 'bob', 10, 1000));
    assert.equal(fast?.reason, 'sender-rate');
    assert.equal(fast?.retryAfter, 10);
    assert.match(fast?.warning ?? '', /the limit is 6 a minute \(offlineIm\.senderQuota\.perMinute\); try again in 10 s/);
    assert.equal(q.admit(m('carol', 'bob', 10, 1000)), undefined, 'each sender has their own');
    assert.equal(q.admit(m('alice', 'bob', 10, 6000))?.retryAfter, 5);
    assert.equal(q.admit(m('alice', 'bob', 10, 11_000)), undefined, 'ten seconds later: one more');
    assert.equal(q.admit(m('alice', 'bob', 10, 11_000))?.reason, 'sender-rate');
    q.prune(120_000);
    assert.equal(q.admit(m('alice', 'bob', 10, 120_000)), undefined, 'a minute idle: a full burst again');
  });

  it('asks the mailbox, counting what already waits for it; the recipient\'s mailbox first, then the sender\'s', () => {
    const q = new SpoolQuota(limits({}));
    const asked: string[] = [];
    const full = new Set(['bob@parley.test receive']);
    const check = (address: string, direction: 'send' | 'receive', pending: number) => {
      asked.push(`${address} ${direction} ${pending}`);
      return full.has(`${address} ${direction}`) ? { message: `${address} is full`, setting: 'mailboxQuota.prohibitSendReceiveQuota' } : undefined;
    };
    assert.equal(q.admit(m('alice', 'carol', 500), check), undefined);
    assert.equal(q.admit(m('alice', 'carol', 700), check), undefined);
    assert.deepEqual(asked, ['carol@parley.test receive 0', 'alice@parley.test send 0', 'carol@parley.test receive 500', 'alice@parley.test send 500']);
    const refused = q.admit(m('alice', 'bob', 10), check);
    assert.equal(refused?.reason, 'recipient-mailbox');
    assert.equal(refused?.warning, 'offline message refused: bob@parley.test is full');
    full.add('alice@parley.test send');
    assert.equal(q.admit(m('alice', 'carol', 10), check)?.reason, 'sender-mailbox');
  });

  it('loads what the spool holds at start-up', async () => {
    const q = new SpoolQuota(limits({ maxBytes: 1000 }));
    q.load([
      { sender: 'alice@parley.test', recipient: 'bob@parley.test', messages: 2, bytes: 600 },
      { sender: 'alice@parley.test', recipient: 'carol@parley.test', messages: 1, bytes: 300 },
    ]);
    assert.deepEqual(q.waitingFrom('alice@parley.test'), { messages: 3, bytes: 900 });
    assert.deepEqual(q.waitingFor('bob@parley.test'), { messages: 2, bytes: 600 });
    assert.equal(q.admit(m('alice', 'bob', 101))?.reason, 'sender-bytes');
    assert.equal(q.admit(m('alice', 'bob', 100)), undefined);
  });
});

after(() => closeTestPostgres());

for (const engine of ENGINES) describe(`OfflineService with quotas on ${engine.name}`, () => {
  const logger = pino({ level: 'silent' });
  const T0 = Date.UTC(2026, 11, 6, 9, 0, 0);
  let sql: SqlDatabase;
  let clock: number;

  beforeEach(async () => {
    sql = await engine.open();
    await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS, OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
    for (const user of ['alice', 'bob', 'carol', 'dave']) await addUserRow(sql, { address: `${user}@parley.test`, displayName: user });
    clock = T0;
  });
  afterEach(() => sql.close());

  function service(spool: SpoolQuotaLimits, mailbox = new MailboxQuota(), commitWindowMs = 0): OfflineService {
    const embedded = new EmbeddedMailboxConnector({ sql: sql, userExists: async () => true, quota: mailbox, now: () => clock });
    return new OfflineService({
      sql, logger, domain: 'parley.test', routing: createMailboxRouting({}, embedded), displayName: async () => null,
      retry: { baseMs: 1000, maxMs: 8000 }, deliveryBatch: 16, commitWindowMs, commitMaxBatch: 100, timeZone: 'UTC', now: () => clock, quota: spool,
    });
  }
  const message = (n: number, over: Partial<OfflineMessage> = {}): OfflineMessage => ({
    sender: 'alice@parley.test', recipient: 'bob@parley.test', callId: `call-${n}`, contentType: 'text/plain', body: new Uint8Array(60 * KB).fill(0x61), why: 'not signed in', ...over,
  });
  const kinds = (ds: OfflineDecision[]) => ds.map((d) => d.kind);

  it('one group-commit batch of one sender\'s messages: the first that fit are stored, the rest refused, each traced', async () => {
    const offline = service(limits({ maxBytes: 300 * KB }), new MailboxQuota(), 20);
    await offline.start();
    try {
      // all eight are submitted before the batch's 20 ms window closes: one batch
      // (which ones fit is the order they reach the quota, after reading the settings: on
      // PostgreSQL not always the order they were sent in)
      const decisions = await Promise.all(Array.from({ length: 8 }, (_, i) => offline.accept(message(i))));
      assert.deepEqual(kinds(decisions).sort(), ['refused', 'refused', 'refused', 'spooled', 'spooled', 'spooled', 'spooled', 'spooled']);
      const refusedAt = decisions.findIndex((d) => d.kind === 'refused');
      const refused = decisions[refusedAt];
      assert.match(refused?.kind === 'refused' ? refused.warning : '', /offlineIm\.senderQuota\.maxBytes/);
      assert.equal(refused?.kind === 'refused' ? refused.quota : '', 'sender-bytes');
      // the refusals' trace rows went with a batch before this message's
      const other = await offline.accept(message(9, { sender: 'carol@parley.test', recipient: 'dave@parley.test' }));
      assert.equal(other.kind, 'spooled', 'another sender to another recipient is still taken');
      const trace = await readTrace(sql, `call-${refusedAt}`);
      assert.deepEqual(trace.map((t) => t.step), ['refused']);
      assert.equal(trace[0]?.detail.quota, 'sender-bytes');
      assert.deepEqual((await listRefusals(sql)).map((r) => [r.address, r.reason, r.count]), [['alice@parley.test', 'sender-bytes', 3]]);
      const stored = decisions.find((d) => d.kind === 'spooled');
      const entry = stored?.kind === 'spooled' ? await getEntry(sql, stored.entryId) : undefined;
      assert.deepEqual([entry?.messageCount, entry?.bytes], [5, 300 * KB]);
    } finally {
      await offline.close();
    }
  });

  it('delivery gives the quota back; so does a purge, also by another process', async () => {
    const offline = service(limits({ maxMessages: 2 }));
    await offline.start();
    try {
      const first = await offline.accept(message(1));
      await offline.accept(message(2));
      assert.equal((await offline.accept(message(3))).kind, 'refused');
      clock += 121_000;
      assert.equal(await offline.worker.runOnce(), 1);
      assert.equal(first.kind === 'spooled' && (await getEntry(sql, first.entryId)).state, 'delivered');
      assert.deepEqual(offline.quota.waitingFrom('alice@parley.test'), { messages: 0, bytes: 0 });
      const again = await offline.accept(message(4));
      assert.equal(again.kind, 'spooled');
      await offline.accept(message(5));
      assert.equal((await offline.accept(message(6))).kind, 'refused');
      // `parley spooler purge --force` writes on its own connection; the server sees the release on its next poll
      await purgeEntry(sql, again.kind === 'spooled' ? again.entryId : '', clock, true);
      await offline.applyReleases();
      assert.deepEqual(offline.quota.waitingFrom('alice@parley.test'), { messages: 0, bytes: 0 });
      assert.equal((await offline.accept(message(7))).kind, 'spooled');
    } finally {
      await offline.close();
    }
  });

  it('a restart rebuilds the tallies from the spool', async () => {
    const before = service(limits({ maxMessages: 3 }));
    await before.start();
    await before.accept(message(1));
    await before.accept(message(2, { recipient: 'carol@parley.test' }));
    await before.close();
    const after = service(limits({ maxMessages: 3 }));
    await after.start();
    try {
      assert.deepEqual(after.quota.waitingFrom('alice@parley.test'), { messages: 2, bytes: 120 * KB });
      assert.equal((await after.accept(message(3))).kind, 'spooled');
      assert.equal((await after.accept(message(4))).kind, 'refused');
    } finally {
      await after.close();
    }
  });

  it('the recipient\'s mailbox quota counts what waits for it; what was accepted is delivered past it', async () => {
    const mailbox = new MailboxQuota({ issueWarningQuota: UNLIMITED, prohibitSendQuota: UNLIMITED, prohibitSendReceiveQuota: 150 * KB, recoverableItemsQuota: UNLIMITED });
    const offline = service(limits({}), mailbox);
    await offline.start();
    try {
      const decisions = [];
      for (let i = 0; i < 4; i++) decisions.push(await offline.accept(message(i)));
      assert.deepEqual(kinds(decisions), ['spooled', 'spooled', 'spooled', 'refused'], '0, 60 and 120 KB waiting are below 150 KB; 180 KB is not');
      const full = decisions[3];
      assert.match(full?.kind === 'refused' ? full.warning : '', /^offline message refused: bob@parley\.test's mailbox is full: 180 KB, at or above its ProhibitSendReceiveQuota of 150 KB \(mailboxQuota\.prohibitSendReceiveQuota\)/);
      clock += 121_000;
      await offline.worker.runOnce();
      const bob = (await mailboxUsage(sql, (await ensureMailbox(sql, 'bob@parley.test')).id)).size;
      assert.ok(bob >= 180 * KB, `all three accepted messages are in bob's mailbox (${bob} bytes), past the quota`);
      const refused = await offline.accept(message(9, { sender: 'carol@parley.test' }));
      assert.equal(refused.kind === 'refused' ? refused.quota : refused.kind, 'recipient-mailbox', 'a full mailbox receives nothing more, from anyone');
    } finally {
      await offline.close();
    }
  });

  it('a flood of refused messages grows a count, not the trace: 60 traced a minute per sender', async () => {
    const offline = service(limits({ maxMessages: 1 }));
    await offline.start();
    try {
      assert.equal((await offline.accept(message(0))).kind, 'spooled');
      for (let i = 1; i <= 100; i++) assert.equal((await offline.accept(message(i, { body: new Uint8Array([0x61]) }))).kind, 'refused');
      // the refusals' rows go with the next batches: closing commits them
      await offline.close();
      const traced = (await Promise.all(Array.from({ length: 100 }, (_, i) => readTrace(sql, `call-${i + 1}`)))).reduce((a, b) => a + b.length, 0);
      assert.equal(traced, 60);
      assert.deepEqual((await listRefusals(sql)).map((r) => [r.reason, r.count]), [['sender-messages', 100]]);
      assert.equal(offline.quota.refusals['sender-messages'], 100);
    } finally {
      await offline.close();
    }
  });

  it('a batch that cannot be written holds nothing', async () => {
    const offline = service(limits({ maxMessages: 1 }));
    await offline.start();
    // a write that fails (a full disk), played by a trigger
    await sql.exec(
      sql.engine === 'postgres'
        ? "CREATE FUNCTION fail_spool() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$; CREATE TRIGGER fail_spool BEFORE INSERT ON spool_messages FOR EACH ROW EXECUTE FUNCTION fail_spool();"
        : "CREATE TRIGGER fail_spool BEFORE INSERT ON spool_messages BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    );
    await assert.rejects(offline.accept(message(1)), /disk full/);
    assert.deepEqual(offline.quota.waitingFrom('alice@parley.test'), { messages: 0, bytes: 0 });
    await sql.exec(sql.engine === 'postgres' ? 'DROP TRIGGER fail_spool ON spool_messages' : 'DROP TRIGGER fail_spool');
    assert.equal((await offline.accept(message(2))).kind, 'spooled');
    await offline.close();
  });
});
