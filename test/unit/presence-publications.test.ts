import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { aggregate, PublicationStore } from '../../src/presence/publications.ts';
import { ManualTimers } from '../../src/events/timers.ts';

function fakeClock() {
  const clock = new ManualTimers();
  return { timers: clock, now: clock.now, advance: (ms: number) => clock.advance(ms) };
}

describe('publications (RFC 3903)', () => {
  let clock: ReturnType<typeof fakeClock>;
  let changes: string[];
  let store: PublicationStore;
  beforeEach(() => {
    clock = fakeClock();
    changes = [];
    store = new PublicationStore({ timers: clock.timers, now: clock.now, onChange: (aor) => changes.push(aor), settings: { min: 60, max: 600, default: 300 } });
  });

  it('creates, refreshes, modifies and removes a publication, with a new entity-tag each time', () => {
    const first = store.publish({ aor: 'bob@x', document: { state: 'Busy', note: 'call' } });
    assert.equal(first.kind, 'published');
    assert.ok(first.kind === 'published' && first.change === 'initial' && first.expires === 300);
    assert.deepEqual(store.of('bob@x'), [{ state: 'Busy', note: 'call' }]);
    assert.deepEqual(changes, ['bob@x']);

    const refreshed = store.publish({ aor: 'bob@x', ifMatch: first.etag, expires: 100000 });
    assert.ok(refreshed.kind === 'published' && refreshed.change === 'refresh' && refreshed.expires === 600);
    assert.notEqual(refreshed.etag, first.etag);
    assert.deepEqual(changes, ['bob@x'], 'a refresh changes nothing watchers see');
    assert.equal(store.publish({ aor: 'bob@x', ifMatch: first.etag }).kind, 'unknown-etag', 'the old tag is gone');

    const modified = store.publish({ aor: 'bob@x', ifMatch: refreshed.kind === 'published' ? refreshed.etag : '', document: { state: 'Away', note: '' } });
    assert.ok(modified.kind === 'published' && modified.change === 'modify');
    assert.deepEqual(store.of('bob@x'), [{ state: 'Away', note: '' }]);
    assert.equal(changes.length, 2);

    assert.deepEqual(store.publish({ aor: 'bob@x', ifMatch: modified.etag, expires: 0 }), { kind: 'removed' });
    assert.deepEqual(store.of('bob@x'), []);
    assert.equal(changes.length, 3);
    assert.equal(store.size, 0);
  });

  it('answers 412 for an unknown or foreign entity-tag, 423 below the minimum, 400 without a body', () => {
    assert.deepEqual(store.publish({ aor: 'bob@x', ifMatch: 'nope' }), { kind: 'unknown-etag' });
    const alice = store.publish({ aor: 'alice@x', document: { state: 'Available', note: '' } });
    assert.ok(alice.kind === 'published');
    assert.deepEqual(store.publish({ aor: 'bob@x', ifMatch: alice.etag, expires: 0 }), { kind: 'unknown-etag' });
    assert.deepEqual(store.publish({ aor: 'bob@x', expires: 10, document: { state: 'Busy', note: '' } }), { kind: 'too-brief', minExpires: 60 });
    assert.equal(store.publish({ aor: 'bob@x' }).kind, 'invalid');
    assert.equal(store.publish({ aor: 'bob@x', expires: 0 }).kind, 'invalid');
  });

  it('expires a publication that is not refreshed', () => {
    const p = store.publish({ aor: 'bob@x', expires: 60, document: { state: 'Busy', note: '' } });
    clock.advance(59_000);
    assert.equal(store.of('bob@x').length, 1);
    clock.advance(1_000);
    assert.equal(store.of('bob@x').length, 0);
    assert.deepEqual(changes, ['bob@x', 'bob@x']);
    assert.ok(p.kind === 'published');
    assert.equal(store.publish({ aor: 'bob@x', ifMatch: p.etag }).kind, 'unknown-etag');
  });

  it('keeps one publication per device', () => {
    const phone = store.publish({ aor: 'bob@x', document: { state: 'Away', note: 'phone idle' } });
    clock.advance(1000);
    store.publish({ aor: 'bob@x', document: { state: 'Busy', note: 'typing' } });
    assert.equal(store.of('bob@x').length, 2);
    assert.equal(aggregate(true, store.of('bob@x')).state, 'Busy');
    assert.ok(phone.kind === 'published');
    store.publish({ aor: 'bob@x', ifMatch: phone.etag, expires: 0 });
    assert.deepEqual(aggregate(true, store.of('bob@x')), { state: 'Busy', note: 'typing' });
  });
});

describe('aggregation', () => {
  it('is Offline without a registration, Available with one and nothing published', () => {
    assert.deepEqual(aggregate(false, [{ state: 'Available', note: 'here' }]), { state: 'Offline', note: '' });
    assert.deepEqual(aggregate(true, []), { state: 'Available', note: '' });
  });

  it('picks the most available device', () => {
    const order = ['Available', 'Busy', 'Do Not Disturb', 'Be Right Back', 'Away', 'Offline'] as const;
    for (let i = 0; i < order.length; i++) {
      for (let j = i; j < order.length; j++) {
        const a = order[i]!;
        const b = order[j]!;
        assert.equal(aggregate(true, [{ state: b, note: '' }, { state: a, note: '' }]).state, a, `${a} + ${b}`);
      }
    }
    assert.equal(aggregate(true, [{ state: 'Away', note: 'newer' }, { state: 'Away', note: 'older' }]).note, 'newer');
  });
});
