// Blocked watchers: the repository (presence_blocks and its change log) and how the presence
// service applies a change — only the blocked watcher hears of it, and sees Offline.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, afterEach, describe, it } from 'node:test';
import pino from 'pino';
import { EventService, FANOUT_SLICE, ManualTimers, Subscription } from '../../src/events/index.ts';
import {
  BLOCK_LOG_KEEP_MS, addBlock, blockChangesSince, databaseBlockList, getBlock, isBlocked, lastBlockChange, listBlocks, removeBlock,
} from '../../src/presence/blocks.ts';
import { removeContact } from '../../src/presence/contacts.ts';
import { addToContacts, blockWatcher, unblockWatcher, watcherAddress } from '../../src/presence/policy.ts';
import { MAX_BLOCKS, MAX_CONTACTS, PresenceError, PresenceService } from '../../src/presence/index.ts';
import type { Binding } from '../../src/registrar/index.ts';
import type { SipContext } from '../../src/router/context.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { createResponseMessage } from '../../src/sip/index.ts';
import type { Sql, SqlDatabase, SqlValue } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { closePresenceDatabases, presenceDatabase, quiet, removeUserRow, until } from './presence-database.ts';

const D = 'parley.test';
const T0 = 1_700_000_000_000;

afterEach(closePresenceDatabases);
after(closeTestPostgres);

for (const engine of ENGINES) {
const database = (...users: string[]): Promise<SqlDatabase> => presenceDatabase(engine, users.map((u) => `${u}@${D}`));

describe(`presence blocks repository on ${engine.name}`, () => {
  it('adds, reads, lists and removes blocks, logging each change once', async () => {
    const db = await database('alice', 'bob');
    assert.equal(await lastBlockChange(db), 0);
    const first = await addBlock(db, `alice@${D}`, `mallory@${D}`, T0);
    assert.deepEqual(first, { block: { owner: `alice@${D}`, watcher: `mallory@${D}`, since: new Date(T0) }, created: true, full: false });
    const again = await addBlock(db, `alice@${D}`, `mallory@${D}`, T0 + 5);
    assert.deepEqual(again, { block: first.block, created: false, full: false }, 'blocking twice keeps the first date');
    await addBlock(db, `bob@${D}`, `mallory@${D}`, T0 + 1);
    await addBlock(db, `alice@${D}`, `eve@elsewhere.example`, T0 + 2);
    assert.equal(await isBlocked(db, `alice@${D}`, `mallory@${D}`), true);
    assert.equal(await isBlocked(db, `mallory@${D}`, `alice@${D}`), false, 'blocking goes one way');
    assert.deepEqual((await listBlocks(db, `alice@${D}`)).map((b) => b.watcher), [`eve@elsewhere.example`, `mallory@${D}`]);
    assert.deepEqual((await listBlocks(db)).map((b) => `${b.owner}>${b.watcher}`), [`alice@${D}>eve@elsewhere.example`, `alice@${D}>mallory@${D}`, `bob@${D}>mallory@${D}`]);
    assert.deepEqual((await blockChangesSince(db, 0)).map((c) => [c.seq, c.owner, c.watcher]), [
      [1, `alice@${D}`, `mallory@${D}`], [2, `bob@${D}`, `mallory@${D}`], [3, `alice@${D}`, `eve@elsewhere.example`],
    ]);

    assert.equal(await removeBlock(db, `alice@${D}`, `mallory@${D}`, T0 + 10), true);
    assert.equal(await removeBlock(db, `alice@${D}`, `mallory@${D}`, T0 + 11), false);
    assert.equal(await getBlock(db, `alice@${D}`, `mallory@${D}`), undefined);
    assert.deepEqual((await blockChangesSince(db, 3)).map((c) => c.seq), [4]);
    assert.equal(await lastBlockChange(db), 4);
  });

  it('refuses blocks of users that do not exist, and forgets those of a removed user', async () => {
    const db = await database('alice');
    await assert.rejects(addBlock(db, `ghost@${D}`, `alice@${D}`, T0), /foreign key/i);
    await addBlock(db, `alice@${D}`, `bob@${D}`, T0);
    await removeUserRow(db, `alice@${D}`);
    assert.deepEqual(await listBlocks(db), []);
  });

  it('blocks made at the same time are all logged, each number once', async () => {
    const db = await database('alice', 'bob');
    const watchers = ['w1', 'w2', 'w3', 'w4'].map((w) => `${w}@elsewhere.example`);
    // on PostgreSQL these are concurrent transactions: conflicts are run again, the log's writers take turns
    const results = await Promise.all(watchers.flatMap((w) => [addBlock(db, `alice@${D}`, w, T0), addBlock(db, `bob@${D}`, w, T0)]));
    assert.ok(results.every((r) => r.created));
    const changes = await blockChangesSince(db, 0);
    assert.equal(changes.length, 8);
    assert.equal(new Set(changes.map((c) => c.seq)).size, 8);
    assert.deepEqual(changes.map((c) => `${c.owner} ${c.watcher}`).sort(), watchers.flatMap((w) => [`alice@${D} ${w}`, `bob@${D} ${w}`]).sort());
  });

  it('a burst of asks for one owner\'s blocks (a NOTIFY fan-out) reads them once', async () => {
    const db = await database('alice');
    await addBlock(db, `alice@${D}`, `mallory@${D}`, T0);
    const reads: string[] = [];
    const counted: Sql = {
      engine: db.engine,
      inTransaction: false,
      all<T>(query: string, params?: readonly SqlValue[]) {
        reads.push(query);
        return db.all<T>(query, params);
      },
      get: <T>(query: string, params?: readonly SqlValue[]) => db.get<T>(query, params),
      run: (query, params) => db.run(query, params),
      exec: (query) => db.exec(query),
      transaction: (fn, options) => db.transaction(fn, options),
    };
    const blocks = databaseBlockList(counted);
    const watchers = Array.from({ length: 20 }, (_, i) => i === 7 ? `mallory@${D}` : `w${i}@${D}`);
    const burst = () => Promise.all(watchers.map((w) => blocks.isBlocked(`alice@${D}`, w)));
    assert.deepEqual((await burst()).map((b, i) => (b ? i : -1)).filter((i) => i >= 0), [7]);
    assert.equal(reads.length, 1, 'one read for the burst');
    await burst();
    assert.equal(reads.length, 1, 'kept');
    blocks.forget?.();
    await burst();
    assert.equal(reads.length, 2, 'one read again after forget');
  });

  it('prunes the change log but never reuses a number', async () => {
    const db = await database('alice');
    await addBlock(db, `alice@${D}`, `bob@${D}`, T0);
    await removeBlock(db, `alice@${D}`, `bob@${D}`, T0 + BLOCK_LOG_KEEP_MS + 1);
    assert.deepEqual((await blockChangesSince(db, 0)).map((c) => c.seq), [2]);
    assert.equal(await lastBlockChange(db), 2);
  });

  it('checks what users and administrators ask for', async () => {
    const db = await database('alice');
    assert.equal(watcherAddress('Bob', D), `bob@${D}`);
    assert.equal(watcherAddress(`sip:Bob@${D}`, D), `bob@${D}`);
    assert.throws(() => watcherAddress('<sip:bob@x>', D), { code: 'BAD_ADDRESS' });
    await assert.rejects(blockWatcher(db, `alice@${D}`, `alice@${D}`, T0), (e: unknown) => e instanceof PresenceError && e.code === 'SELF_BLOCK' && e.httpStatus === 400);
    await assert.rejects(unblockWatcher(db, `alice@${D}`, `bob@${D}`, T0), (e: unknown) => e instanceof PresenceError && e.code === 'NOT_BLOCKED' && e.httpStatus === 404);
  });

  it('keeps each owner\'s blocks in memory until a list changes, by whichever process', async () => {
    const db = await database('alice', 'bob');
    const blocks = databaseBlockList(db);
    assert.equal(await blocks.isBlocked(`alice@${D}`, `mallory@${D}`), false);
    // written by another process: the version row moved, so the kept answer goes at the next check
    await addBlock(db, `alice@${D}`, `mallory@${D}`, T0);
    await until(async () => blocks.isBlocked(`alice@${D}`, `mallory@${D}`));
    await removeBlock(db, `alice@${D}`, `mallory@${D}`, T0);
    blocks.forget?.();
    assert.equal(await blocks.isBlocked(`alice@${D}`, `mallory@${D}`), false, 'forgotten at once when this process says so');
    assert.deepEqual((await blocks.changesSince(await blocks.lastChange() - 1)).map((c) => c.owner), [`alice@${D}`]);
  });
});

describe(`per-user list limits (issue 18, finding 8b) on ${engine.name}`, () => {
  /** `n` more users, u1…un: rows written straight, as hashing that many passwords would take minutes */
  async function moreUsers(db: SqlDatabase, n: number): Promise<string[]> {
    await db.run(
      `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
       INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at)
       SELECT 'u' || i || '@${D}', NULL, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at FROM k, users WHERE address = 'alice@${D}'`,
      [n],
    );
    return Array.from({ length: n }, (_, i) => `u${i + 1}@${D}`);
  }

  const everyone = { userExists: async () => true };
  const lists = [
    { code: 'BLOCK_LIST_FULL', max: MAX_BLOCKS, message: /^the block list of bob@parley\.test holds 1000 blocked watchers already; remove some first$/,
      // straight into the table: a thousand transactions of the repository would only be slower
      fill: (db: SqlDatabase, except: string) => db.run(`INSERT INTO presence_blocks (owner, watcher, created_at) SELECT 'bob@${D}', address, ? FROM users WHERE address LIKE 'u%' AND address <> ?`, [T0, except]),
      add: async (db: SqlDatabase, entry: string) => (await blockWatcher(db, `bob@${D}`, entry, T0)).created,
      remove: (db: SqlDatabase, entry: string) => unblockWatcher(db, `bob@${D}`, entry, T0) },
    { code: 'CONTACT_LIST_FULL', max: MAX_CONTACTS, message: /^the contact list of bob@parley\.test holds 1000 contacts already; remove some first$/,
      fill: (db: SqlDatabase, except: string) => db.run(`INSERT INTO presence_contacts (owner, member, created_at) SELECT 'bob@${D}', address, ? FROM users WHERE address LIKE 'u%' AND address <> ?`, [T0, except]),
      add: async (db: SqlDatabase, entry: string) => (await addToContacts(db, `bob@${D}`, entry, T0, everyone)).created,
      remove: async (db: SqlDatabase, entry: string) => void (await removeContact(db, `bob@${D}`, entry)) },
  ];

  for (const list of lists) {
    it(`stops at ${list.max} with ${list.code} (409); an entry already there still answers; removing one makes room`, async () => {
      const db = await database('alice', 'bob');
      const users = await moreUsers(db, list.max + 1);
      const extra = users.pop()!;
      await list.fill(db, extra);
      await assert.rejects(list.add(db, extra), (e: unknown) => e instanceof PresenceError && e.code === list.code && e.httpStatus === 409 && list.message.test(e.message));
      assert.equal(await list.add(db, users[0]!), false, 'already on the list: nothing to add');
      await list.remove(db, users[0]!);
      assert.equal(await list.add(db, extra), true);
      await assert.rejects(list.add(db, users[0]!), { code: list.code });
      });
  }
});

describe(`presence service with blocks on ${engine.name}`, () => {
  const logger = pino({ level: 'silent' });
  const FLOW = { id: 'tcp#1', protocol: 'tcp' as const, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } };

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
    await quiet(presence, events);
    for (const s of sent.splice(0)) s.user.onFinal(createResponseMessage(200, 'OK') as SipResponse);
    const basicOf = (r: SipRequest) => /<basic>(\w+)<\/basic>/.exec(r.body.toString())?.[1];
    const toOf = (r: SipRequest) => /<sip:([^>]+)>/.exec(r.headers.get('to') ?? '')?.[1];
    return { db, clock, sent, presence, events, basicOf, toOf };
  }

  it('a block made in the server NOTIFYs only the blocked watcher, who sees Offline; unblocking restores the state', async () => {
    const { db, sent, presence, events, basicOf, toOf } = await setup();
    await blockWatcher(db, `bob@${D}`, `mallory@${D}`, T0);
    await presence.blocksChanged();
    await quiet(presence, events);
    assert.deepEqual(sent.map((s) => [toOf(s.request), basicOf(s.request)]), [[`mallory@${D}`, 'closed']]);
    sent.splice(0)[0]!.user.onFinal(createResponseMessage(200, 'OK') as SipResponse);
    await presence.blocksChanged();
    await quiet(presence, events);
    assert.equal(sent.length, 0, 'a change already applied sends nothing');

    const inspection = await presence.inspect(`bob@${D}`);
    assert.deepEqual(inspection.watchers.map((w) => [w.watcher, w.blocked, w.viaList]), [[`alice@${D}`, false, false], [`mallory@${D}`, true, false]]);
    assert.equal(inspection.state, 'Available');
    assert.deepEqual(inspection.registrations, [{ contact: `sip:bob@127.0.0.1:1`, transport: 'tcp', userAgent: 'phone', expiresAt: T0 + 300_000 }]);

    await unblockWatcher(db, `bob@${D}`, `mallory@${D}`, T0);
    await presence.blocksChanged();
    await quiet(presence, events);
    assert.deepEqual(sent.map((s) => [toOf(s.request), basicOf(s.request)]), [[`mallory@${D}`, 'open']]);
    events.close();
  });

  it('a fan-out to more watchers than one slice reads the state once and gives every watcher its view, in CSeq order', async () => {
    const db = await database('bob');
    const clock = new ManualTimers(T0);
    const sent: Array<{ request: SipRequest; user: ClientTransactionUser }> = [];
    let bindings: Binding[] = [];
    let lookups = 0;
    const ctx = {
      domain: D, product: 'Parley/test', logger, now: clock.now,
      registrations: new EventEmitter<{ changed: [aor: string] }>(),
      transactions: { sendRequest: (request: SipRequest, _flow: Flow, user: ClientTransactionUser) => void sent.push({ request, user }) },
      resolveFlow: () => ({ ...FLOW, reliable: true, closed: false, send: () => true }),
      location: { lookup: async () => (lookups++, bindings) },
    } as unknown as SipContext;
    const presence = new PresenceService({ timers: clock, blocks: databaseBlockList(db), blockPollMs: 1000 });
    // slices smaller than the server's (FANOUT_SLICE): the test crosses them with a few thousand watchers
    const slice = Math.min(FANOUT_SLICE, 1000);
    const events = new EventService({ packages: [presence], timers: clock, fanoutSlice: slice });
    events.start(ctx);
    const n = 2 * slice + 7;
    const subs = Array.from({ length: n }, (_, i) => subscription(`w${i}@${D}`, i));
    for (const sub of subs) events.subscriptions.add(sub);
    const blocked = [3, slice + 1, n - 1];
    for (const i of blocked) await blockWatcher(db, `bob@${D}`, `w${i}@${D}`, T0);
    // the first NOTIFY of each (bob is offline), answered
    for (const sub of subs) events.notifier.notify(sub);
    await quiet(presence, events);
    assert.equal(sent.length, n);
    for (const s of sent.splice(0)) s.user.onFinal(createResponseMessage(200, 'OK') as SipResponse);

    // bob registers: one change, every watcher but the blocked ones hears of it
    bindings = [{ aor: `bob@${D}`, contact: `sip:bob@127.0.0.1:1`, userAgent: 'phone', expiresAt: T0 + 300_000, flow: FLOW } as Binding];
    lookups = 0;
    ctx.registrations.emit('changed', `bob@${D}`);
    await quiet(presence, events);
    assert.equal(lookups, 1, 'the presentity\'s state is read once for the fan-out');
    const basicOf = (r: SipRequest) => /<basic>(\w+)<\/basic>/.exec(r.body.toString())?.[1];
    assert.equal(sent.length, n - 3, 'the blocked watchers still see Offline: nothing changed for them');
    assert.ok(sent.every((s) => basicOf(s.request) === 'open' && s.request.headers.get('cseq') === '2 NOTIFY'));
    assert.deepEqual(sent.filter((s) => blocked.some((i) => (s.request.headers.get('to') ?? '').includes(`<sip:w${i}@`))), []);
    assert.equal(new Set(sent.map((s) => s.request.headers.get('call-id'))).size, n - 3, 'one NOTIFY per watcher');

    // a change while those are unanswered: folded, sent once each is answered, CSeq 3
    bindings = [];
    ctx.registrations.emit('changed', `bob@${D}`);
    await quiet(presence, events);
    assert.equal(sent.length, n - 3, 'one NOTIFY in flight per dialog');
    for (const s of sent.splice(0)) s.user.onFinal(createResponseMessage(200, 'OK') as SipResponse);
    await quiet(presence, events);
    assert.equal(sent.length, n - 3);
    assert.ok(sent.every((s) => basicOf(s.request) === 'closed' && s.request.headers.get('cseq') === '3 NOTIFY'));
    events.close();
  });

  it('finds a block made by another process with its poll', async () => {
    const { db, clock, sent, presence, events, basicOf, toOf } = await setup();
    await addBlock(db, `bob@${D}`, `alice@${D}`, T0); // as `parley admin --data-dir` would: the service is not told
    await quiet(presence, events);
    assert.equal(sent.length, 0);
    clock.advance(1000);
    await quiet(presence, events);
    assert.deepEqual(sent.map((s) => [toOf(s.request), basicOf(s.request)]), [[`alice@${D}`, 'closed']]);
    events.close();
    await addBlock(db, `bob@${D}`, `mallory@${D}`, T0);
    clock.advance(5000);
    await presence.settled();
    assert.equal(sent.length, 1, 'no poll after close');
  });
});
}
