// The keep-alive timer (RFC 5626 §4.4.1) and the typed event emitter of the client SDK.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_PONG_TIMEOUT_MS, KeepAlive } from '../../src/client/keepalive.ts';
import type { KeepAliveOptions } from '../../src/client/keepalive.ts';
import { TypedEmitter } from '../../src/client/emitter.ts';

describe('KeepAlive', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());
  /** fake time passes in 50 ms steps (a timer set while one step fires waits for the next), pongs' microtasks in between */
  const pass = async (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      mock.timers.tick(Math.min(50, ms - t));
      await Promise.resolve();
    }
  };

  /** A keep-alive counting its pings and failures; `answer` decides whether a ping is answered. */
  function keepAlive(options: Partial<KeepAliveOptions> & { answer?: () => boolean } = {}) {
    const counts = { pings: 0, failed: 0 };
    const k: KeepAlive = new KeepAlive({
      intervalMs: 1_000,
      pongTimeoutMs: 500,
      expectPong: false,
      ping: () => {
        counts.pings++;
        if (options.answer?.() === true) queueMicrotask(() => k.pong());
      },
      failed: () => counts.failed++,
      ...options,
    });
    return { k, counts };
  }

  it('pings every 80–100 % of the interval and tolerates a server that never pongs', async () => {
    const { k, counts } = keepAlive();
    mock.timers.tick(799);
    assert.equal(counts.pings, 0, 'not before 80 % of the interval');
    mock.timers.tick(201);
    assert.equal(counts.pings, 1, 'by 100 % of it');
    await pass(10_000);
    assert.ok(counts.pings >= 10 && counts.pings <= 13, `pings: ${counts.pings}`);
    assert.equal(counts.failed, 0);
    k.stop();
  });

  it('declares the flow failed when a pong stops coming after one was seen', async () => {
    let answer = true;
    const { k, counts } = keepAlive({ answer: () => answer });
    for (let i = 0; i < 5; i++) {
      await pass(1_000);
      await Promise.resolve(); // the pong's microtask
    }
    assert.equal(counts.failed, 0);
    answer = false;
    await pass(1_000 + 500);
    assert.equal(counts.failed, 1);
    k.stop();
  });

  it('with expectPong, the first unanswered ping fails the flow (a server known to answer: OPTIONS, or one that ponged before)', () => {
    const { k, counts } = keepAlive({ expectPong: true });
    mock.timers.tick(1_000);
    assert.equal(counts.pings, 1);
    mock.timers.tick(499);
    assert.equal(counts.failed, 0);
    mock.timers.tick(1);
    assert.equal(counts.failed, 1);
    k.stop();
  });

  it('by default finds a silent dead server within the ~10 s the issue asks (one period, then the pong timeout)', async () => {
    assert.ok(DEFAULT_KEEPALIVE_INTERVAL_MS + DEFAULT_PONG_TIMEOUT_MS <= 10_000);
    const { k, counts } = keepAlive({ intervalMs: DEFAULT_KEEPALIVE_INTERVAL_MS, pongTimeoutMs: DEFAULT_PONG_TIMEOUT_MS, expectPong: true });
    await pass(DEFAULT_KEEPALIVE_INTERVAL_MS + DEFAULT_PONG_TIMEOUT_MS);
    assert.equal(counts.failed, 1);
    k.stop();
  });

  it('stops pinging after stop(), and a pending pong timer with it', async () => {
    const { k, counts } = keepAlive({ expectPong: true });
    mock.timers.tick(1_000);
    k.stop();
    await pass(10_000);
    assert.deepEqual(counts, { pings: 1, failed: 0 });
  });

  it('a ping that throws (the connection going away) ends the pings without failing the flow', async () => {
    const { k, counts } = keepAlive({
      expectPong: true,
      ping: () => {
        counts.pings++;
        throw new Error('closed');
      },
    });
    await pass(10_000);
    assert.deepEqual(counts, { pings: 1, failed: 0 });
    k.stop();
  });
});

class Demo extends TypedEmitter<{ tick: [number]; error: [Error] }> {
  fire(n: number): boolean {
    return this.emit('tick', n);
  }
  fail(): boolean {
    return this.emit('error', new Error('x'));
  }
}

describe('TypedEmitter', () => {
  it('calls listeners in order, once listeners once, and off removes', () => {
    const demo = new Demo();
    const seen: string[] = [];
    const a = (n: number) => seen.push(`a${n}`);
    demo.on('tick', a).once('tick', (n) => seen.push(`once${n}`));
    demo.fire(1);
    demo.fire(2);
    demo.off('tick', a);
    demo.fire(3);
    assert.deepEqual(seen, ['a1', 'once1', 'a2']);
    assert.equal(demo.listenerCount('tick'), 0);
  });

  it('drops an error event nobody listens to instead of throwing', () => {
    assert.equal(new Demo().fail(), false);
  });
});
