// Blocked watchers: the repository (presence_blocks and its change log) and how the presence
// service applies a change — only the blocked watcher hears of it, and sees Offline.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import pino from 'pino';
import { DIRECTORY_MIGRATIONS, addUser, removeUser } from '../../src/directory/index.ts';
import { EventService, ManualTimers, Subscription } from '../../src/events/index.ts';
import {
  BLOCK_LOG_KEEP_MS, addBlock, blockChangesSince, databaseBlockList, getBlock, isBlocked, lastBlockChange, listBlocks, removeBlock,
} from '../../src/presence/blocks.ts';
import { addContact, removeContact } from '../../src/presence/contacts.ts';
import { addToContacts, blockWatcher, unblockWatcher, watcherAddress } from '../../src/presence/policy.ts';
import { MAX_BLOCKS, MAX_CONTACTS, PRESENCE_MIGRATIONS, PresenceError, PresenceService } from '../../src/presence/index.ts';
import { sqliteSql, transaction } from '../../src/storage/index.ts';
import type { Binding } from '../../src/registrar/index.ts';
import type { SipContext } from '../../src/router/context.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { createResponseMessage } from '../../src/sip/index.ts';
import { openMemoryDatabase, runMigrations } from '../../src/storage/index.ts';
import type { Database } from '../../src/storage/index.ts';

const D = 'parley.test';
const T0 = 1_700_000_000_000;

async function database(...users: string[]): Promise<Database> {
  const db = openMemoryDatabase();
  runMigrations(db, [DIRECTORY_MIGRATIONS, PRESENCE_MIGRATIONS]);
  for (const u of users) await addUser(sqliteSql(db), { address: `${u}@${D}`, password: 'pw' });
  return db;
}

describe('presence blocks repository', () => {
  it('adds, reads, lists and removes blocks, logging each change once', async () => {
    const db = await database('alice', 'bob');
    assert.equal(lastBlockChange(db), 0);
    const first = addBlock(db, `alice@${D}`, `mallory@${D}`, T0);
    assert.deepEqual(first, { block: { owner: `alice@${D}`, watcher: `mallory@${D}`, since: new Date(T0) }, created: true, full: false });
    const again = addBlock(db, `alice@${D}`, `mallory@${D}`, T0 + 5);
    assert.deepEqual(again, { block: first.block, created: false, full: false }, 'blocking twice keeps the first date');
    addBlock(db, `bob@${D}`, `mallory@${D}`, T0 + 1);
    addBlock(db, `alice@${D}`, `eve@elsewhere.example`, T0 + 2);
    assert.equal(isBlocked(db, `alice@${D}`, `mallory@${D}`), true);
    assert.equal(isBlocked(db, `mallory@${D}`, `alice@${D}`), false, 'blocking goes one way');
    assert.deepEqual(listBlocks(db, `alice@${D}`).map((b) => b.watcher), [`eve@elsewhere.example`, `mallory@${D}`]);
    assert.deepEqual(listBlocks(db).map((b) => `${b.owner}>${b.watcher}`), [`alice@${D}>eve@elsewhere.example`, `alice@${D}>mallory@${D}`, `bob@${D}>mallory@${D}`]);
    assert.deepEqual(blockChangesSince(db, 0).map((c) => [c.seq, c.owner, c.watcher]), [
      [1, `alice@${D}`, `mallory@${D}`], [2, `bob@${D}`, `mallory@${D}`], [3, `alice@${D}`, `eve@elsewhere.example`],
    ]);

    assert.equal(removeBlock(db, `alice@${D}`, `mallory@${D}`, T0 + 10), true);
    assert.equal(removeBlock(db, `alice@${D}`, `mallory@${D}`, T0 + 11), false);
    assert.equal(getBlock(db, `alice@${D}`, `mallory@${D}`), undefined);
    assert.deepEqual(blockChangesSince(db, 3).map((c) => c.seq), [4]);
    assert.equal(lastBlockChange(db), 4);
  });

  it('refuses blocks of users that do not exist, and forgets those of a removed user', async () => {
    const db = await database('alice');
    assert.throws(() => addBlock(db, `ghost@${D}`, `alice@${D}`, T0), /FOREIGN KEY/);
    addBlock(db, `alice@${D}`, `bob@${D}`, T0);
    await removeUser(sqliteSql(db), `alice@${D}`);
    assert.deepEqual(listBlocks(db), []);
  });

  it('prunes the change log but never reuses a number', async () => {
    const db = await database('alice');
    addBlock(db, `alice@${D}`, `bob@${D}`, T0);
    removeBlock(db, `alice@${D}`, `bob@${D}`, T0 + BLOCK_LOG_KEEP_MS + 1);
    assert.deepEqual(blockChangesSince(db, 0).map((c) => c.seq), [2]);
    assert.equal(lastBlockChange(db), 2);
  });

  it('checks what users and administrators ask for', async () => {
    const db = await database('alice');
    assert.equal(watcherAddress('Bob', D), `bob@${D}`);
    assert.equal(watcherAddress(`sip:Bob@${D}`, D), `bob@${D}`);
    assert.throws(() => watcherAddress('<sip:bob@x>', D), { code: 'BAD_ADDRESS' });
    assert.throws(() => blockWatcher(db, `alice@${D}`, `alice@${D}`, T0), (e: unknown) => e instanceof PresenceError && e.code === 'SELF_BLOCK' && e.httpStatus === 400);
    assert.throws(() => unblockWatcher(db, `alice@${D}`, `bob@${D}`, T0), (e: unknown) => e instanceof PresenceError && e.code === 'NOT_BLOCKED' && e.httpStatus === 404);
  });
});

describe('per-user list limits (issue 18, finding 8b)', () => {
  /** `n` more users as copies of alice's row: hashing that many passwords would take minutes */
  function moreUsers(db: Database, n: number): string[] {
    db.prepare(
      `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
       INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at)
       SELECT 'u' || i || '@${D}', NULL, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at FROM k, users WHERE address = 'alice@${D}'`,
    ).run(n);
    return Array.from({ length: n }, (_, i) => `u${i + 1}@${D}`);
  }

  const lists = [
    { code: 'BLOCK_LIST_FULL', max: MAX_BLOCKS, message: /^the block list of bob@parley\.test holds 1000 blocked watchers already; remove some first$/,
      fill: (db: Database, entries: string[]) => entries.forEach((e) => addBlock(db, `bob@${D}`, e, T0)),
      add: (db: Database, entry: string) => blockWatcher(db, `bob@${D}`, entry, T0).created,
      remove: (db: Database, entry: string) => unblockWatcher(db, `bob@${D}`, entry, T0) },
    { code: 'CONTACT_LIST_FULL', max: MAX_CONTACTS, message: /^the contact list of bob@parley\.test holds 1000 contacts already; remove some first$/,
      fill: (db: Database, entries: string[]) => entries.forEach((e) => addContact(db, `bob@${D}`, e, T0)),
      add: (db: Database, entry: string) => addToContacts(db, `bob@${D}`, entry, T0).created,
      remove: (db: Database, entry: string) => void removeContact(db, `bob@${D}`, entry) },
  ];

  for (const list of lists) {
    it(`stops at ${list.max} with ${list.code} (409); an entry already there still answers; removing one makes room`, async () => {
      const db = await database('alice', 'bob');
      const users = moreUsers(db, list.max + 1);
      const extra = users.pop()!;
      transaction(db, () => list.fill(db, users));
      assert.throws(() => list.add(db, extra), (e: unknown) => e instanceof PresenceError && e.code === list.code && e.httpStatus === 409 && list.message.test(e.message));
      assert.equal(list.add(db, users[0]!), false, 'already on the list: nothing to add');
      list.remove(db, users[0]!);
      assert.equal(list.add(db, extra), true);
      assert.throws(() => list.add(db, users[0]!), { code: list.code });
    });
  }
});

describe('presence service with blocks', () => {
  const logger = pino({ level: 'silent' });
  const FLOW = { id: 'tcp#1', protocol: 'tcp' as const, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } };
  const tick = () => new Promise((r) => setImmediate(r));

  function subscription(watcher: string, n: number): Subscription {
    return new Subscription({
      watcher, package: 'presence', resource: `bob@${D}`, event: 'presence', flow: FLOW, expiresAt: T0 + 3_600_000,
      dialog: {
        callId: `c${n}`, localTag: 'srv', remoteTag: `cli${n}`, localHeader: `<sip:bob@${D}>;tag=srv`, remoteHeader: `<sip:${watcher}>;tag=cli${n}`,
        remoteTarget: `sip:${watcher};transport=tcp`, routeSet: [], remoteCSeq: 1,
      },
    });
  }

  async function setup() {
    const db = await database('bob');
    const clock = new ManualTimers(T0);
    const sent: Array<{ request: SipRequest; user: ClientTransactionUser }> = [];
    const ctx = {
      domain: D, product: 'Parley/test', logger, now: clock.now,
      registrations: new EventEmitter<{ changed: [aor: string] }>(),
      transactions: { sendRequest: (request: SipRequest, _flow: Flow, user: ClientTransactionUser) => void sent.push({ request, user }) },
      resolveFlow: () => ({ ...FLOW, reliable: true, closed: false, send: () => true }),
      location: { lookup: async () => [{ aor: `bob@${D}`, contact: `sip:bob@127.0.0.1:1`, userAgent: 'phone', expiresAt: T0 + 300_000, flow: FLOW } as Binding] },
    } as unknown as SipContext;
    const presence = new PresenceService({ timers: clock, blocks: databaseBlockList(db), blockPollMs: 1000 });
    const events = new EventService({ packages: [presence], timers: clock });
    events.start(ctx);
    const alice = subscription(`alice@${D}`, 1);
    const mallory = subscription(`mallory@${D}`, 2);
    events.subscriptions.add(alice);
    events.subscriptions.add(mallory);
    // the first NOTIFY of each, answered
    events.notifier.notify(alice);
    events.notifier.notify(mallory);
    await tick();
    for (const s of sent.splice(0)) s.user.onFinal(createResponseMessage(200, 'OK') as SipResponse);
    const basicOf = (r: SipRequest) => /<basic>(\w+)<\/basic>/.exec(r.body.toString())?.[1];
    const toOf = (r: SipRequest) => /<sip:([^>]+)>/.exec(r.headers.get('to') ?? '')?.[1];
    return { db, clock, sent, presence, events, basicOf, toOf };
  }

  it('a block made in the server NOTIFYs only the blocked watcher, who sees Offline; unblocking restores the state', async () => {
    const { db, sent, presence, events, basicOf, toOf } = await setup();
    blockWatcher(db, `bob@${D}`, `mallory@${D}`, T0);
    presence.blocksChanged();
    await tick();
    assert.deepEqual(sent.map((s) => [toOf(s.request), basicOf(s.request)]), [[`mallory@${D}`, 'closed']]);
    sent.splice(0)[0]!.user.onFinal(createResponseMessage(200, 'OK') as SipResponse);
    presence.blocksChanged();
    await tick();
    assert.equal(sent.length, 0, 'a change already applied sends nothing');

    const inspection = await presence.inspect(`bob@${D}`);
    assert.deepEqual(inspection.watchers.map((w) => [w.watcher, w.blocked, w.viaList]), [[`alice@${D}`, false, false], [`mallory@${D}`, true, false]]);
    assert.equal(inspection.state, 'Available');
    assert.deepEqual(inspection.registrations, [{ contact: `sip:bob@127.0.0.1:1`, transport: 'tcp', userAgent: 'phone', expiresAt: T0 + 300_000 }]);

    unblockWatcher(db, `bob@${D}`, `mallory@${D}`, T0);
    presence.blocksChanged();
    await tick();
    assert.deepEqual(sent.map((s) => [toOf(s.request), basicOf(s.request)]), [[`mallory@${D}`, 'open']]);
    events.close();
  });

  it('finds a block made by another process with its poll', async () => {
    const { db, clock, sent, events, basicOf, toOf } = await setup();
    addBlock(db, `bob@${D}`, `alice@${D}`, T0); // as `parley admin --data-dir` would: the service is not told
    await tick();
    assert.equal(sent.length, 0);
    clock.advance(1000);
    await tick();
    assert.deepEqual(sent.map((s) => [toOf(s.request), basicOf(s.request)]), [[`alice@${D}`, 'closed']]);
    events.close();
    clock.advance(5000);
    await tick();
    assert.equal(sent.length, 1, 'no poll after close');
  });
});
