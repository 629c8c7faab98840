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

  /**
   * A keep-alive counting what it sends and its failures; `crlf` / `options` decide whether the
   * server answers each kind (at once, on a microtask).
   */
  function keepAlive(answers: { crlf?: () => boolean; options?: () => boolean } = {}, overrides: Partial<KeepAliveOptions> = {}) {
    const counts = { crlf: 0, options: 0, failed: 0 };
    const k: KeepAlive = new KeepAlive({
      intervalMs: 1_000,
      pongTimeoutMs: 500,
      sendCrlf: () => {
        counts.crlf++;
        if (answers.crlf?.() === true) queueMicrotask(() => k.pong());
      },
      sendOptions: () => {
        counts.options++;
        return answers.options?.() === true ? Promise.resolve() : new Promise(() => undefined);
      },
      failed: () => counts.failed++,
      ...overrides,
    });
    return { k, counts };
  }

  it('pings every 80–100 % of the interval; a server that pongs gets CRLFCRLF alone after the first ping', async () => {
    const { k, counts } = keepAlive({ crlf: () => true });
    await pass(799);
    assert.equal(counts.crlf, 0, 'not before 80 % of the interval');
    await pass(201);
    assert.deepEqual(counts, { crlf: 1, options: 1, failed: 0 }, 'the first ping: both kinds');
    await pass(10_000);
    assert.ok(counts.crlf >= 11 && counts.crlf <= 14, `pings: ${counts.crlf}`);
    assert.equal(counts.options, 1, 'no OPTIONS once the CRLF was answered');
    assert.equal(counts.failed, 0);
    k.stop();
  });

  it('a server that answers OPTIONS but not CRLFCRLF gets OPTIONS alone after the first ping', async () => {
    const { k, counts } = keepAlive({ options: () => true });
    await pass(10_000);
    assert.equal(counts.crlf, 1);
    assert.ok(counts.options >= 10, `OPTIONS: ${counts.options}`);
    assert.equal(counts.failed, 0);
    k.stop();
  });

  it('declares the flow failed when answers stop coming, whichever kind they were', async () => {
    for (const kind of ['crlf', 'options'] as const) {
      let answer = true;
      const { k, counts } = keepAlive({ [kind]: () => answer });
      await pass(5_000);
      assert.equal(counts.failed, 0, kind);
      answer = false;
      await pass(1_000 + 500);
      assert.equal(counts.failed, 1, kind);
      k.stop();
    }
  });

  it('a server that never answers fails at the first ping, after the pong timeout', async () => {
    const { k, counts } = keepAlive();
    await pass(1_000);
    assert.deepEqual(counts, { crlf: 1, options: 1, failed: 0 }, 'pinged at 80–100 % of the interval');
    await pass(500);
    assert.equal(counts.failed, 1);
    k.stop();
  });

  it('by default finds a silent dead server within the ~10 s the issue asks (one period, then the pong timeout)', async () => {
    assert.ok(DEFAULT_KEEPALIVE_INTERVAL_MS + DEFAULT_PONG_TIMEOUT_MS <= 10_000);
    let answer = true;
    const { k, counts } = keepAlive({ crlf: () => answer }, { intervalMs: DEFAULT_KEEPALIVE_INTERVAL_MS, pongTimeoutMs: DEFAULT_PONG_TIMEOUT_MS });
    await pass(3 * DEFAULT_KEEPALIVE_INTERVAL_MS);
    answer = false; // the node dies just after a pong
    const pingsBefore = counts.crlf;
    await pass(DEFAULT_KEEPALIVE_INTERVAL_MS + DEFAULT_PONG_TIMEOUT_MS);
    assert.ok(counts.crlf > pingsBefore);
    assert.equal(counts.failed, 1);
    k.stop();
  });

  it('stops pinging after stop(), and a pending pong timer with it', async () => {
    const { k, counts } = keepAlive();
    await pass(1_000);
    k.stop();
    await pass(10_000);
    assert.deepEqual(counts, { crlf: 1, options: 1, failed: 0 });
  });

  it('a ping that throws (the connection going away) ends the pings without failing the flow', async () => {
    const { k, counts } = keepAlive({}, {
      sendCrlf: () => {
        counts.crlf++;
        throw new Error('closed');
      },
    });
    await pass(10_000);
    assert.deepEqual(counts, { crlf: 1, options: 0, failed: 0 });
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
