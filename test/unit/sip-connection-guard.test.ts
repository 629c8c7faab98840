import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONNECTION_GUARD_CODES as C, ConnectionGuard, type ConnectionGuardEvent, type ConnectionLimits, GuardedConnection, sourceOf } from '../../src/sip/index.ts';
import type { Endpoint } from '../../src/sip/index.ts';

const LIMITS: ConnectionLimits = { idleTimeoutMs: 10_000, messageTimeoutMs: 4_000, maxPerSource: 2, maxTotal: 3, unauthenticatedBufferBudget: 1000 };

class FakeConnection extends GuardedConnection {
  readonly id: string;
  readonly protocol = 'tcp' as const;
  readonly remote: Endpoint;
  aborted = 0;

  constructor(guard: ConnectionGuard, id: string, address = '192.0.2.1') {
    super(guard);
    this.id = id;
    this.remote = { address, port: 5000 };
  }

  abort(): void {
    this.aborted++;
  }
}

function setup(limits: Partial<ConnectionLimits> = {}) {
  let clock = 1_000_000;
  const events: ConnectionGuardEvent[] = [];
  const guard = new ConnectionGuard({ ...LIMITS, ...limits }, (e) => events.push(e), () => clock);
  const connect = (id: string, address?: string) => {
    const c = new FakeConnection(guard, id, address);
    guard.track(c);
    return c;
  };
  return {
    guard,
    events,
    connect,
    advance(ms: number) {
      clock += ms;
    },
    codes: () => events.map((e) => `${e.code} ${e.flow ?? e.remote?.address}`),
  };
}

describe('connection guard: limits on accept', () => {
  it('refuses a source past maxPerSource while another source still connects, and counts closes', () => {
    const { guard, codes } = setup();
    const a = { address: '192.0.2.1', port: 1 };
    const b = { address: '192.0.2.2', port: 1 };
    const first = guard.admit('tcp', a);
    assert.equal(first, '192.0.2.1');
    assert.equal(guard.admit('tls', a), '192.0.2.1', 'TCP and TLS count against the same source');
    assert.equal(guard.admit('ws', a), null, 'the third from one source is refused');
    assert.equal(guard.admit('tcp', b), '192.0.2.2');
    assert.deepEqual(codes(), [`${C.SOURCE_LIMIT} 192.0.2.1`]);
    assert.equal(guard.admit('tcp', { address: '192.0.2.3', port: 1 }), null, 'the fourth in all is refused');
    assert.equal(codes()[1], `${C.TOTAL_LIMIT} 192.0.2.3`);
    guard.release('192.0.2.1');
    assert.equal(guard.admit('tcp', a), '192.0.2.1', 'a closed connection frees its place');
    assert.deepEqual(guard.usage, { total: 3, sources: 2, watched: 0, unauthenticatedHeld: 0 });
  });

  it('counts IPv6 peers by their /64 and IPv4-mapped peers as IPv4', () => {
    assert.equal(sourceOf('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceOf('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:DB8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:0db8:0001::9'), '2001:db8:1:0::/64');
    assert.equal(sourceOf('::1'), '0:0:0:0::/64');
    assert.equal(sourceOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(sourceOf('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  });
});

describe('connection guard: timeouts', () => {
  it('closes a connection silent for idleTimeout, and not before', () => {
    const { guard, connect, advance, codes } = setup();
    const c = connect('c1');
    assert.deepEqual([...guard.countByProtocol()], [['tcp', 1]], 'open per transport, for /metrics');
    advance(9_000);
    guard.received(c, 0, false, true);
    advance(9_000);
    guard.sweep();
    assert.equal(c.aborted, 0, 'bytes 9 s ago: still open');
    advance(1_000);
    guard.sweep();
    assert.equal(c.aborted, 1);
    assert.deepEqual(codes(), [`${C.IDLE} c1`]);
    guard.sweep();
    assert.equal(c.aborted, 1, 'closed once');
    assert.equal(guard.usage.watched, 0);
    assert.equal(guard.countByProtocol().size, 0);
  });

  it('keeps a connection a registration lives on open until it expires, then idleTimeout more', () => {
    const { guard, connect, advance } = setup();
    const c = connect('registered');
    c.markTrusted();
    c.keepOpenUntil(guard.now() + 60_000);
    c.keepOpenUntil(guard.now() + 30_000); // a shorter one does not shorten it
    advance(69_000);
    guard.sweep();
    assert.equal(c.aborted, 0);
    advance(1_000);
    guard.sweep();
    assert.equal(c.aborted, 1);
  });

  it('closes a connection whose message does not complete within messageTimeout, however it trickles', () => {
    const { guard, connect, advance, codes } = setup();
    const slow = connect('slow');
    const steady = connect('steady');
    guard.received(slow, 10, true, false);
    guard.received(steady, 10, true, false);
    for (let i = 0; i < 3; i++) {
      advance(1_000);
      guard.received(slow, 20 + i, true, false); // one more byte a second: not a new message
      guard.received(steady, 20, true, true); // a message ended and the next began
    }
    advance(1_000);
    guard.sweep();
    assert.equal(slow.aborted, 1);
    assert.equal(steady.aborted, 0, 'a sender of whole messages is not slow');
    assert.deepEqual(codes(), [`${C.MESSAGE_TIMEOUT} slow`]);
    assert.equal(guard.usage.unauthenticatedHeld, 20, 'the closed one no longer counts');
  });

  it('stops watching a connection the transport reports closed', () => {
    const { guard, connect, advance } = setup();
    const c = connect('gone');
    guard.received(c, 300, true, false);
    guard.untrack(c);
    guard.untrack(c);
    advance(60_000);
    guard.sweep();
    guard.received(c, 900, true, false);
    assert.equal(c.aborted, 0);
    assert.deepEqual(guard.usage, { total: 0, sources: 0, watched: 0, unauthenticatedHeld: 0 });
  });
});

describe('connection guard: budget of unauthenticated connections', () => {
  it('closes the unauthenticated connection holding the most once the budget is passed', () => {
    const { guard, connect, codes } = setup();
    const small = connect('small');
    const big = connect('big');
    const user = connect('user');
    user.markTrusted();
    guard.received(user, 5000, true, false);
    assert.equal(guard.usage.unauthenticatedHeld, 0, 'an authenticated connection is not counted');
    guard.received(small, 300, true, false);
    guard.received(big, 600, true, false);
    assert.equal(guard.usage.unauthenticatedHeld, 900);
    assert.deepEqual(codes(), []);
    guard.received(small, 450, true, false); // 1050 > 1000
    assert.equal(big.aborted, 1, 'the one holding the most goes, not the one that passed the budget');
    assert.equal(small.aborted, 0);
    assert.equal(user.aborted, 0);
    assert.deepEqual(codes(), [`${C.BUFFER_BUDGET} big`]);
    assert.equal(guard.usage.unauthenticatedHeld, 450);
  });

  it('gives a connection its bytes back when it authenticates or its message completes', () => {
    const { guard, connect } = setup();
    const a = connect('a');
    const b = connect('b');
    guard.received(a, 700, true, false);
    a.markTrusted();
    assert.equal(guard.usage.unauthenticatedHeld, 0);
    guard.received(b, 700, true, false);
    guard.received(b, 0, false, true);
    guard.received(b, 900, true, false);
    assert.equal(guard.usage.unauthenticatedHeld, 900);
    assert.equal(a.aborted + b.aborted, 0);
  });
});
