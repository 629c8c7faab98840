// The SIP stream listener's close(), the last step of a drain (SIGTERM): it ends every open
// connection and resolves once they have all closed. A drain stops accepting first (the server's
// close()), so when the connections go away before the listener's own close(), node's server may
// have emitted its 'close' already; a close() that waited for that event hung until the process's
// shutdownTimeout (a presence bench's watchers, leaving as their server stopped, hit it 3 times in 4).
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, listenStream, sipLimits } from '../../src/sip/index.ts';
import type { Flow, TransportSink } from '../../src/sip/index.ts';

const CLIENTS = 20;

function options(i: number): string {
  return [
    `OPTIONS sip:listener.test SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-close-${i}`,
    'Max-Forwards: 70',
    `From: <sip:c${i}@listener.test>;tag=c${i}`,
    'To: <sip:listener.test>',
    `Call-ID: close-${i}`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** A listener with CLIENTS connections, each having sent one request (its flow is known). */
async function listenerWithClients() {
  const flows: Flow[] = [];
  let arrived!: () => void;
  const all = new Promise<void>((r) => (arrived = r));
  const sink: TransportSink = {
    onMessage: (_message, flow) => {
      flows.push(flow);
      if (flows.length === CLIENTS) arrived();
    },
    onParseError: () => {},
    onFlowClosed: () => {},
  };
  const listener = await listenStream({ protocol: 'tcp', address: '127.0.0.1', port: 0, limits: sipLimits({}), sink, guard: new ConnectionGuard(DEFAULT_CONNECTION_LIMITS, () => {}) });
  const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => new Promise<Socket>((resolve, reject) => {
    const c = createConnection({ host: '127.0.0.1', port: listener.local.port }, () => {
      c.write(options(i));
      resolve(c);
    });
    c.once('error', reject);
  })));
  await all;
  return { listener, flows, clients };
}

/** close() settles, or says that it did not within `ms` (a hang, not a duration being measured) */
function settles(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('SIP stream listener close()', () => {
  it('connections that closed after the listener stopped accepting, their close events still pending: close() resolves', async () => {
    const { listener, flows, clients } = await listenerWithClients();
    listener.stopAccepting();
    // every connection goes at once; a setImmediate later node's server has emitted 'close'
    // (no connection left) while the sockets' own 'close' events are still to come
    // (a stream flow: the listener's StreamFlow, whose abort() destroys its socket)
    for (const f of flows) (f as Flow & { abort(): void }).abort();
    await new Promise((r) => setImmediate(r));
    assert.ok(await settles(listener.close(), 5_000), 'close() did not resolve: it waited for an event that had fired already');
    for (const c of clients) c.destroy();
  });

  it('open connections: each is ended, the peers see the end, close() resolves', async () => {
    const { listener, clients } = await listenerWithClients();
    const ended = clients.map((c) => new Promise<void>((r) => c.once('end', () => r())));
    const closing = listener.close();
    await Promise.all(ended);
    for (const c of clients) c.end();
    assert.ok(await settles(closing, 5_000), 'close() did not resolve once the peers closed');
  });
});

// A peer that closes its side after its request (as sipp does after its last answer) has the
// connection closed at once when every answer is in the kernel already, or ended once the answers
// still queued in node are out: either way the peer reads the whole answer, then the end.
describe('SIP stream connection closed by its peer', () => {
  for (const [what, size] of [
    ['a short answer', 300],
    ['an answer larger than the socket buffers (still queued when the peer closes)', 8 * 1024 * 1024],
  ] as const) {
    it(`${what}: the peer reads it whole, the flow is reported closed and its count released`, async () => {
      const answer = 'x'.repeat(size);
      let flowClosed!: () => void;
      const closed = new Promise<void>((r) => (flowClosed = r));
      const sink: TransportSink = {
        onMessage: (_message, flow) => void flow.sendText?.(answer),
        onParseError: () => {},
        onFlowClosed: () => flowClosed(),
      };
      const guard = new ConnectionGuard(DEFAULT_CONNECTION_LIMITS, () => {});
      const listener = await listenStream({ protocol: 'tcp', address: '127.0.0.1', port: 0, limits: sipLimits({}), sink, guard });
      const c = createConnection({ host: '127.0.0.1', port: listener.local.port });
      let received = 0;
      c.on('data', (chunk: Buffer) => void (received += chunk.length));
      let ended = false;
      c.once('end', () => void (ended = true));
      c.on('error', () => {}); // a reset: the answer's bytes were lost, which the assertions say
      const gone = new Promise<void>((r) => c.once('close', () => r()));
      c.write(options(0));
      c.end();
      await gone;
      await closed;
      assert.equal(received, size);
      assert.ok(ended, 'the connection was reset rather than closed');
      assert.equal(guard.usage.total, 0);
      c.destroy();
      await listener.close();
    });
  }
});
