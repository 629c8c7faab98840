import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { OFFLINE_MIGRATIONS, OfflineError, getEntry, listEntries, purgeDelivered, purgeEntry, retryEntry } from '../../src/offline/index.ts';
import { claimDue, entryMessages, markDelivered, markFailed, newEntryId, nextDueAt, recoverInterrupted, spoolMessages } from '../../src/offline/spool.ts';
import type { SpoolRequest } from '../../src/offline/spool.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

after(() => closeTestPostgres());

const MIN = 60_000;
function req(over: Partial<SpoolRequest> = {}): SpoolRequest {
  return {
    sender: 'alice@parley.test',
    recipient: 'bob@parley.test',
    callId: `call-${Math.random()}`,
    contentType: 'text/plain',
    body: new TextEncoder().encode('hello'),
    receivedAt: 1_000_000,
    pickupDelayMs: 2 * MIN,
    maxAgeMs: 24 * 60 * MIN,
    why: 'not signed in',
    gate: { EnableOfflineIm: 'Global', EnableIMAutoArchiving: 'Global' },
    ...over,
  };
}
const LEASE = { owner: 'test-worker', ms: 60_000 };

describe('spool entry ids', () => {
  it('ids are sp- and 16 base32 characters, all different', async () => {
    const ids = new Set(Array.from({ length: 1000 }, newEntryId));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^sp-[a-z2-7]{16}$/);
  });

  it('ids made later sort after earlier ones (the indexes keyed by them take them in order), within a millisecond too', () => {
    const at = Date.UTC(2026, 11, 7, 9, 30);
    const ids = [newEntryId(at - 1), newEntryId(at), newEntryId(at), newEntryId(at), newEntryId(at + 1), newEntryId(at + 32), newEntryId(at + 86_400_000 * 365 * 50)];
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
  });
});

for (const engine of ENGINES) describe(`the spool on ${engine.name}`, () => {
let db: SqlDatabase;
beforeEach(async () => {
  db = await engine.open();
  await migrate(db, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
});
afterEach(() => db.close());
const spool = (...rs: SpoolRequest[]) => db.transaction((tx) => spoolMessages(tx, rs));

describe('spool entries', () => {
  it('messages from one sender to one recipient before pickup join one entry, in order', async () => {
    const [a, b, c] = await spool(req({ receivedAt: 1_000_000 }), req({ receivedAt: 1_000_500 }), req({ receivedAt: 1_000_000 + 2 * MIN - 1, body: new TextEncoder().encode('third') }));
    assert.equal(a?.joined, false);
    assert.equal(b?.entryId, a?.entryId);
    assert.equal(c?.entryId, a?.entryId);
    assert.deepEqual([a?.seq, b?.seq, c?.seq], [1, 2, 3]);
    // the timer runs from the first message: joining does not move pickup
    assert.equal(c?.pickupAt, 1_000_000 + 2 * MIN);
    const entry = await getEntry(db, a?.entryId ?? '');
    assert.equal(entry.messageCount, 3);
    assert.deepEqual((await entryMessages(db, entry.id)).map((m) => new TextDecoder().decode(m.body)), ['hello', 'hello', 'third']);
  });

  it('one batch of several pairs: each message joins its own pair\'s entry (one made by an earlier batch, or earlier in the batch), in order, its trace rows in order', async () => {
    const [earlier] = await spool(req());
    const carol = { recipient: 'carol@parley.test' };
    const batch = await spool(req({ receivedAt: 1_000_100 }), req({ ...carol, receivedAt: 1_000_200 }), req({ receivedAt: 1_000_300 }), req({ ...carol, receivedAt: 1_000_400 }), req({ receivedAt: 1_000_000 + 2 * MIN }));
    assert.deepEqual(batch.map((r) => r.seq), [2, 1, 3, 2, 1]);
    assert.deepEqual(batch.map((r) => r.joined), [true, false, true, true, false]);
    assert.equal(batch[0]?.entryId, earlier?.entryId);
    assert.equal(batch[2]?.entryId, earlier?.entryId);
    assert.equal(batch[3]?.entryId, batch[1]?.entryId);
    assert.equal(new Set(batch.map((r) => r.entryId)).size, 3);
    assert.equal((await getEntry(db, earlier?.entryId ?? '')).messageCount, 3);
    assert.deepEqual((await entryMessages(db, batch[1]?.entryId ?? '')).map((m) => m.receivedAt), [1_000_200, 1_000_400]);
    assert.deepEqual((await readTrace(db, batch[1]?.entryId ?? '')).map((e) => [e.step, e.at]), [['received', 1_000_200], ['gated', 1_000_200], ['spooled', 1_000_200], ['received', 1_000_400], ['gated', 1_000_400], ['spooled', 1_000_400]]);
  });

  it('a message after pickup time, another recipient or another sender opens a new entry', async () => {
    const [first] = await spool(req());
    const [late] = await spool(req({ receivedAt: 1_000_000 + 2 * MIN }));
    const [other] = await spool(req({ recipient: 'carol@parley.test' }));
    const [reverse] = await spool(req({ sender: 'bob@parley.test', recipient: 'alice@parley.test' }));
    const ids = new Set([first?.entryId, late?.entryId, other?.entryId, reverse?.entryId]);
    assert.equal(ids.size, 4);
  });

  it('a message does not join an entry already being delivered or retried', async () => {
    const [first] = await spool(req());
    await db.transaction((tx) => claimDue(tx, 1_000_000 + 2 * MIN, 10, LEASE));
    const [next] = await spool(req({ receivedAt: 1_000_001 }));
    assert.notEqual(next?.entryId, first?.entryId);
  });

  it('claims due entries only, oldest first, and marks them delivering under the lease', async () => {
    const [a] = await spool(req({ receivedAt: 1000 }));
    const [b] = await spool(req({ receivedAt: 2000, recipient: 'carol@parley.test' }));
    assert.equal(await nextDueAt(db), 1000 + 2 * MIN);
    assert.deepEqual(await claimDue(db, 1000 + 2 * MIN - 1, 10, LEASE), []);
    const claimed = await claimDue(db, 3000 + 2 * MIN, 10, LEASE);
    assert.deepEqual(claimed.map((e) => e.id), [a?.entryId, b?.entryId]);
    assert.ok(claimed.every((e) => e.state === 'delivering' && e.attempts === 1));
    assert.equal((await getEntry(db, a?.entryId ?? '')).state, 'delivering');
    assert.equal(await nextDueAt(db), undefined);
  });

  it('an entry under a live lease is not claimed again; once the lease ends another worker takes it, and only its outcome is written', async () => {
    const [a] = await spool(req());
    const due = 1_000_000 + 2 * MIN;
    const [mine] = await claimDue(db, due, 10, { owner: 'node-1', ms: MIN });
    assert.equal(mine?.id, a?.entryId);
    assert.deepEqual(await claimDue(db, due + MIN - 1, 10, { owner: 'node-2', ms: MIN }), [], 'node-1 still holds it');
    const [taken] = await claimDue(db, due + MIN, 10, { owner: 'node-2', ms: MIN });
    assert.equal(taken?.id, a?.entryId);
    assert.equal(taken?.attempts, 2);
    assert.equal(await markDelivered(db, a?.entryId ?? '', due + MIN + 1, 'node-1'), false, 'node-1 lost its lease: it writes nothing');
    assert.equal((await getEntry(db, a?.entryId ?? '')).state, 'delivering');
    assert.equal(await markDelivered(db, a?.entryId ?? '', due + MIN + 2, 'node-2'), true);
    const entry = await getEntry(db, a?.entryId ?? '');
    assert.equal(entry.state, 'delivered');
    assert.equal(entry.deliveredAt, due + MIN + 2);
  });

  it('workers claiming side by side never take the same entry', async () => {
    const requests = Array.from({ length: 30 }, (_, i) => req({ recipient: `user${i}@parley.test` }));
    await spool(...requests);
    const claim = (owner: string) => db.transaction((tx) => claimDue(tx, 10_000_000, 7, { owner, ms: MIN }), { isolation: 'read committed' });
    const rounds = await Promise.all(['a', 'b', 'c', 'd', 'e'].flatMap((owner) => [claim(owner), claim(owner)]));
    const ids = rounds.flat().map((e) => e.id);
    assert.equal(ids.length, 30, 'every entry was taken');
    assert.equal(new Set(ids).size, 30, 'none twice');
  });

  it('after a crash, delivering entries are waiting again and due now; with a bound, only those whose lease ended', async () => {
    const [a] = await spool(req());
    const [b] = await spool(req({ recipient: 'carol@parley.test' }));
    await claimDue(db, 10_000_000, 1, { owner: 'gone', ms: MIN });
    await claimDue(db, 10_000_000, 1, { owner: 'alive', ms: 10 * MIN });
    assert.deepEqual(await recoverInterrupted(db, 10_000_000 + 2 * MIN, 10_000_000 + 2 * MIN), [a?.entryId], 'the live lease is left alone');
    assert.deepEqual(await recoverInterrupted(db, 20_000_000), [b?.entryId]);
    const entry = await getEntry(db, a?.entryId ?? '');
    assert.equal(entry.state, 'waiting');
    assert.equal(entry.nextAttemptAt, 10_000_000 + 2 * MIN);
    assert.equal((await getEntry(db, b?.entryId ?? '')).nextAttemptAt, 20_000_000);
  });

  it('a node that restarts takes back its own leases at once and leaves live ones of other nodes', async () => {
    const [mine] = await spool(req());
    const [theirs] = await spool(req({ recipient: 'carol@parley.test' }));
    await claimDue(db, 10_000_000, 1, { owner: 'host-a:-data/4242/abcde', ms: 10 * MIN });
    await claimDue(db, 10_000_000, 1, { owner: 'host-b:-data/777/fghij', ms: 10 * MIN });
    assert.deepEqual(await recoverInterrupted(db, 10_000_001, 10_000_001, 'host-a:-data/'), [mine?.entryId]);
    assert.equal((await getEntry(db, theirs?.entryId ?? '')).state, 'delivering', 'the other node still holds its lease');
    assert.deepEqual(await recoverInterrupted(db, 10_000_002, 10_000_002, 'host-a:-data/'), [], 'nothing of this node is left');
  });

  it('records received, gated and spooled under the entry id, findable by Call-ID', async () => {
    const [a] = await spool(req({ callId: 'abc@client' }));
    const steps = await readTrace(db, a?.entryId ?? '');
    assert.deepEqual(steps.map((s) => s.step), ['received', 'gated', 'spooled']);
    assert.deepEqual((await readTrace(db, 'abc@client')).map((s) => s.step), ['received', 'gated', 'spooled']);
    assert.equal(steps[0]?.detail.why, 'not signed in');
  });
});

describe('spool administration', () => {
  it('lists by user and state', async () => {
    await spool(req(), req({ sender: 'carol@parley.test', recipient: 'dave@parley.test' }));
    assert.equal((await listEntries(db, { user: 'bob@parley.test' })).length, 1);
    assert.equal((await listEntries(db, { user: 'dave@parley.test', state: 'waiting' })).length, 1);
    assert.equal((await listEntries(db, { state: 'failed' })).length, 0);
    await assert.rejects(listEntries(db, { state: 'lost' as never }), (e: unknown) => e instanceof OfflineError && e.code === 'BAD_REQUEST');
  });

  it('retry: a failed entry waits again, due now, with a fresh max-age window; delivered ones are refused', async () => {
    const [a] = await spool(req());
    await markFailed(db, a?.entryId ?? '', 5_000_000, 'mailbox down');
    const retried = await retryEntry(db, a?.entryId ?? '', 9_000_000_000, 1000);
    assert.equal(retried.state, 'waiting');
    assert.equal(retried.nextAttemptAt, 9_000_000_000);
    assert.equal(retried.expiresAt, 9_000_001_000);
    await markDelivered(db, a?.entryId ?? '', 9_000_000_001);
    await assert.rejects(retryEntry(db, a?.entryId ?? '', 1, 1), (e: unknown) => e instanceof OfflineError && e.code === 'ENTRY_STATE');
    await assert.rejects(retryEntry(db, 'sp-nope', 1, 1), (e: unknown) => e instanceof OfflineError && e.code === 'ENTRY_NOT_FOUND' && /parley spooler list/.test(e.message));
  });

  it('purge: waiting entries only with force; delivered ones by date', async () => {
    const [a] = await spool(req());
    await assert.rejects(purgeEntry(db, a?.entryId ?? '', 1), /--force/);
    await purgeEntry(db, a?.entryId ?? '', 1, true);
    assert.equal((await listEntries(db)).length, 0);
    assert.equal((await entryMessages(db, a?.entryId ?? '')).length, 0, 'messages go with the entry');
    const [b] = await spool(req({ receivedAt: 2 }));
    await markDelivered(db, b?.entryId ?? '', 100);
    assert.equal(await purgeDelivered(db, 100), 0);
    assert.equal(await purgeDelivered(db, 101), 1);
  });
});
});
