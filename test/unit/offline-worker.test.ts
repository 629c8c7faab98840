// The spool worker on both engines, with a mailbox that only remembers what it was given (the
// embedded store and the settings have their own tests): a round delivers due entries once; two
// workers side by side (the nodes of a cluster) deliver each entry once between them; a worker that
// dies mid-delivery leaves its entries to another once its lease has ended, and what it finishes
// after that is not recorded, so the mailbox holds one item per entry and role.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { DeliveryItem, DeliveryResult, MailboxConnector, MissedSummary } from '../../src/mailbox/index.ts';
import { MailboxError } from '../../src/mailbox/index.ts';
import { OFFLINE_MIGRATIONS, SpoolWorker, getEntry } from '../../src/offline/index.ts';
import type { SpoolEntry, SpoolWorkerOptions } from '../../src/offline/index.ts';
import { spoolMessages } from '../../src/offline/spool.ts';
import type { SpoolRequest } from '../../src/offline/spool.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

after(() => closeTestPostgres());

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const MIN = 60_000;

/** A mailbox keyed by InternetMessageId, as every connector is: a second delivery finds the item. */
class MemoryMailboxes implements MailboxConnector {
  readonly items = new Map<string, DeliveryItem>();
  deliveries = 0;
  /** deliveries wait for this while set (a worker stuck mid-delivery) */
  hold: Promise<void> | undefined;
  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    this.deliveries++;
    await this.hold;
    const key = `${item.mailbox} ${item.internetMessageId}`;
    const created = !this.items.has(key);
    if (created) this.items.set(key, item);
    return { itemId: key, created };
  }
  async missedSummary(): Promise<MissedSummary> {
    return { total: 0, unread: 0 };
  }
}

const req = (recipient: string, over: Partial<SpoolRequest> = {}): SpoolRequest => ({
  sender: 'alice@parley.test',
  recipient,
  callId: `c-${recipient}`,
  contentType: 'text/plain',
  body: new TextEncoder().encode(`hello ${recipient}`),
  receivedAt: T0,
  pickupDelayMs: MIN,
  maxAgeMs: 24 * 60 * MIN,
  why: 'not signed in',
  gate: {},
  ...over,
});

for (const engine of ENGINES) {
  describe(`the spool worker on ${engine.name}`, () => {
    let sql: SqlDatabase;
    let mailboxes: MemoryMailboxes;
    let clock: number;
    beforeEach(async () => {
      sql = await engine.open();
      await migrate(sql, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
      mailboxes = new MemoryMailboxes();
      clock = T0;
    });
    afterEach(() => sql.close());

    const worker = (over: Partial<SpoolWorkerOptions> = {}) =>
      new SpoolWorker({
        sql,
        logger: pino({ level: 'silent' }),
        domain: 'parley.test',
        routing: { connectorFor: () => ({ name: 'memory', connector: mailboxes }) },
        displayName: async (a) => (a.startsWith('alice') ? 'Alice Example' : null),
        retry: { baseMs: 1000, maxMs: 8000 },
        deliveryBatch: 4,
        timeZone: 'UTC',
        now: () => clock,
        leaseMs: 5 * MIN,
        ...over,
      });
    const spool = (...requests: SpoolRequest[]) => sql.transaction((tx) => spoolMessages(tx, requests));

    it('delivers a due entry once: the recipient\'s Missed Conversation and the sender\'s copy, traced', async () => {
      const [receipt] = await spool(req('bob@parley.test'));
      const done: SpoolEntry[] = [];
      const w = worker({ onEntryDelivered: (e) => done.push(e) });
      assert.equal(await w.runOnce(), 0, 'not before the pickup delay');
      clock = T0 + MIN;
      assert.equal(await w.runOnce(), 1);
      assert.deepEqual([...mailboxes.items.keys()].sort(), [`alice@parley.test <${receipt?.entryId}@parley.test>`, `bob@parley.test <${receipt?.entryId}@parley.test>`]);
      assert.equal(mailboxes.items.get(`bob@parley.test <${receipt?.entryId}@parley.test>`)?.subject, 'Missed conversation with Alice Example');
      const entry = await getEntry(sql, receipt?.entryId ?? '');
      assert.equal(entry.state, 'delivered');
      assert.deepEqual(done.map((e) => e.id), [receipt?.entryId]);
      assert.deepEqual((await readTrace(sql, receipt?.entryId ?? '')).map((s) => s.step), ['received', 'gated', 'spooled', 'picked-up', 'delivered', 'delivered']);
      assert.equal(await w.runOnce(), 0);
    });

    it('a mailbox server that says when to come back (Retry-After) is not tried before then, nor past the entry\'s end', async () => {
      const [receipt] = await spool(req('bob@parley.test'));
      const entryId = receipt?.entryId ?? '';
      // throttled for 10 minutes: longer than the back-off (1 s), shorter than OfflineImMaxAge
      let throttledUntil = T0 + 11 * MIN;
      const throttled: MailboxConnector = {
        deliver: async (item) => {
          if (clock < throttledUntil) throw new MailboxError('REMOTE_UNAVAILABLE', 'throttled', { retryAt: throttledUntil });
          return mailboxes.deliver(item);
        },
        missedSummary: async () => ({ total: 0, unread: 0 }),
      };
      const w = worker({ routing: { connectorFor: () => ({ name: 'throttled', connector: throttled }) } });
      clock = T0 + MIN;
      assert.equal(await w.runOnce(), 1);
      assert.equal((await getEntry(sql, entryId)).nextAttemptAt, T0 + 11 * MIN, 'the next attempt waits for the Retry-After, not the 1 s back-off');
      clock = T0 + 11 * MIN;
      assert.equal(await w.runOnce(), 1);
      assert.equal((await getEntry(sql, entryId)).state, 'delivered');
      // a Retry-After past the entry's end does not keep it beyond OfflineImMaxAge
      const [late] = await spool(req('carol@parley.test', { receivedAt: clock }));
      throttledUntil = clock + 48 * 60 * MIN;
      clock += MIN;
      await w.runOnce();
      const entry = await getEntry(sql, late?.entryId ?? '');
      assert.equal(entry.nextAttemptAt, entry.expiresAt);
    });

    it('two workers side by side (two nodes) deliver every entry, each once', async () => {
      await spool(...Array.from({ length: 12 }, (_, i) => req(`user${i}@parley.test`)));
      clock = T0 + MIN;
      const done: string[] = [];
      const a = worker({ onEntryDelivered: (e) => done.push(e.id) });
      const b = worker({ onEntryDelivered: (e) => done.push(e.id) });
      while ((await Promise.all([a.runOnce(), b.runOnce()])).some((n) => n > 0));
      assert.equal(done.length, 12);
      assert.equal(new Set(done).size, 12, 'no entry settled twice');
      assert.equal(mailboxes.items.size, 24);
      assert.equal(mailboxes.deliveries, 24, 'no item delivered twice');
    });

    it('a worker stuck mid-delivery (a dead node) leaves its entry to another once the lease ends; its late outcome is not recorded', async () => {
      const [receipt] = await spool(req('bob@parley.test'));
      clock = T0 + MIN;
      let release!: () => void;
      mailboxes.hold = new Promise<void>((resolve) => (release = resolve));
      const stuck = worker();
      const stuckRound = stuck.runOnce();
      // the stuck worker has taken the entry: another finds nothing while the lease lasts
      while ((await getEntry(sql, receipt?.entryId ?? '')).state !== 'delivering') await new Promise((r) => setImmediate(r));
      const other = worker();
      clock = T0 + MIN + 5 * MIN - 1;
      assert.equal(await other.runOnce(), 0);
      clock = T0 + MIN + 5 * MIN;
      mailboxes.hold = undefined;
      const takeover = other.runOnce();
      assert.equal(await takeover, 1);
      assert.equal((await getEntry(sql, receipt?.entryId ?? '')).state, 'delivered');
      assert.equal((await getEntry(sql, receipt?.entryId ?? '')).attempts, 2);
      // the stuck worker wakes up: its items are found, not made again, and it records nothing
      release();
      assert.equal(await stuckRound, 1);
      assert.equal(mailboxes.items.size, 2, 'one item per mailbox');
      const steps = (await readTrace(sql, receipt?.entryId ?? '')).map((s) => s.step);
      assert.deepEqual(steps.filter((s) => s === 'delivered').length, 2, 'one outcome recorded (the two items of the worker that held the lease)');
      assert.deepEqual(steps.filter((s) => s === 'picked-up').length, 2);
    });
  });
}
