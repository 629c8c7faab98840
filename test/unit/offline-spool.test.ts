import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { OFFLINE_MIGRATIONS, OfflineError, getEntry, listEntries, purgeDelivered, purgeEntry, retryEntry } from '../../src/offline/index.ts';
import { claimDue, entryMessages, markDelivered, markFailed, newEntryId, nextDueAt, recoverInterrupted, spoolMessages } from '../../src/offline/spool.ts';
import type { SpoolRequest } from '../../src/offline/spool.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import type { Database } from '../../src/storage/index.ts';
import { openMemoryDatabase, runMigrations, transaction } from '../../src/storage/index.ts';

let db: Database;
beforeEach(() => {
  db = openMemoryDatabase();
  runMigrations(db, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
});

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
const spool = (...rs: SpoolRequest[]) => transaction(db, () => spoolMessages(db, rs));

describe('spool entries', () => {
  it('ids are sp- and 16 base32 characters, all different', () => {
    const ids = new Set(Array.from({ length: 1000 }, newEntryId));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^sp-[a-z2-7]{16}$/);
  });

  it('messages from one sender to one recipient before pickup join one entry, in order', () => {
    const [a, b, c] = spool(req({ receivedAt: 1_000_000 }), req({ receivedAt: 1_000_500 }), req({ receivedAt: 1_000_000 + 2 * MIN - 1, body: new TextEncoder().encode('third') }));
    assert.equal(a?.joined, false);
    assert.equal(b?.entryId, a?.entryId);
    assert.equal(c?.entryId, a?.entryId);
    assert.deepEqual([a?.seq, b?.seq, c?.seq], [1, 2, 3]);
    // the timer runs from the first message: joining does not move pickup
    assert.equal(c?.pickupAt, 1_000_000 + 2 * MIN);
    const entry = getEntry(db, a?.entryId ?? '');
    assert.equal(entry.messageCount, 3);
    assert.deepEqual(entryMessages(db, entry.id).map((m) => new TextDecoder().decode(m.body)), ['hello', 'hello', 'third']);
  });

  it('a message after pickup time, another recipient or another sender opens a new entry', () => {
    const [first] = spool(req());
    const [late] = spool(req({ receivedAt: 1_000_000 + 2 * MIN }));
    const [other] = spool(req({ recipient: 'carol@parley.test' }));
    const [reverse] = spool(req({ sender: 'bob@parley.test', recipient: 'alice@parley.test' }));
    const ids = new Set([first?.entryId, late?.entryId, other?.entryId, reverse?.entryId]);
    assert.equal(ids.size, 4);
  });

  it('a message does not join an entry already being delivered or retried', () => {
    const [first] = spool(req());
    transaction(db, () => claimDue(db, 1_000_000 + 2 * MIN, 10));
    const [next] = spool(req({ receivedAt: 1_000_001 }));
    assert.notEqual(next?.entryId, first?.entryId);
  });

  it('claims due entries only, oldest first, and marks them delivering', () => {
    const [a] = spool(req({ receivedAt: 1000 }));
    const [b] = spool(req({ receivedAt: 2000, recipient: 'carol@parley.test' }));
    assert.equal(nextDueAt(db), 1000 + 2 * MIN);
    assert.deepEqual(claimDue(db, 1000 + 2 * MIN - 1, 10), []);
    const claimed = claimDue(db, 3000 + 2 * MIN, 10);
    assert.deepEqual(claimed.map((e) => e.id), [a?.entryId, b?.entryId]);
    assert.ok(claimed.every((e) => e.state === 'delivering' && e.attempts === 1));
    assert.equal(getEntry(db, a?.entryId ?? '').state, 'delivering');
    assert.equal(nextDueAt(db), undefined);
  });

  it('after a crash, delivering entries are waiting again and due now', () => {
    const [a] = spool(req());
    claimDue(db, 10_000_000, 10);
    assert.deepEqual(recoverInterrupted(db, 20_000_000), [a?.entryId]);
    const entry = getEntry(db, a?.entryId ?? '');
    assert.equal(entry.state, 'waiting');
    assert.equal(entry.nextAttemptAt, 20_000_000);
  });

  it('records received, gated and spooled under the entry id, findable by Call-ID', () => {
    const [a] = spool(req({ callId: 'abc@client' }));
    const steps = readTrace(db, a?.entryId ?? '');
    assert.deepEqual(steps.map((s) => s.step), ['received', 'gated', 'spooled']);
    assert.deepEqual(readTrace(db, 'abc@client').map((s) => s.step), ['received', 'gated', 'spooled']);
    assert.equal(steps[0]?.detail.why, 'not signed in');
  });
});

describe('spool administration', () => {
  it('lists by user and state', () => {
    spool(req(), req({ sender: 'carol@parley.test', recipient: 'dave@parley.test' }));
    assert.equal(listEntries(db, { user: 'bob@parley.test' }).length, 1);
    assert.equal(listEntries(db, { user: 'dave@parley.test', state: 'waiting' }).length, 1);
    assert.equal(listEntries(db, { state: 'failed' }).length, 0);
    assert.throws(() => listEntries(db, { state: 'lost' as never }), (e: unknown) => e instanceof OfflineError && e.code === 'BAD_REQUEST');
  });

  it('retry: a failed entry waits again, due now, with a fresh max-age window; delivered ones are refused', () => {
    const [a] = spool(req());
    markFailed(db, a?.entryId ?? '', 5_000_000, 'mailbox down');
    const retried = retryEntry(db, a?.entryId ?? '', 9_000_000_000, 1000);
    assert.equal(retried.state, 'waiting');
    assert.equal(retried.nextAttemptAt, 9_000_000_000);
    assert.equal(retried.expiresAt, 9_000_001_000);
    markDelivered(db, a?.entryId ?? '', 9_000_000_001);
    assert.throws(() => retryEntry(db, a?.entryId ?? '', 1, 1), (e: unknown) => e instanceof OfflineError && e.code === 'ENTRY_STATE');
    assert.throws(() => retryEntry(db, 'sp-nope', 1, 1), (e: unknown) => e instanceof OfflineError && e.code === 'ENTRY_NOT_FOUND' && /parley spooler list/.test(e.message));
  });

  it('purge: waiting entries only with force; delivered ones by date', () => {
    const [a] = spool(req());
    assert.throws(() => purgeEntry(db, a?.entryId ?? '', 1), /--force/);
    purgeEntry(db, a?.entryId ?? '', 1, true);
    assert.equal(listEntries(db).length, 0);
    assert.equal(entryMessages(db, a?.entryId ?? '').length, 0, 'messages go with the entry');
    const [b] = spool(req({ receivedAt: 2 }));
    markDelivered(db, b?.entryId ?? '', 100);
    assert.equal(purgeDelivered(db, 100), 0);
    assert.equal(purgeDelivered(db, 101), 1);
  });
});
