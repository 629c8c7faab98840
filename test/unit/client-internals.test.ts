// The keep-alive timer (RFC 5626 §4.4.1) and the typed event emitter of the client SDK.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeepAlive } from '../../src/client/keepalive.ts';
import { TypedEmitter } from '../../src/client/emitter.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('KeepAlive', () => {
  it('pings every 80–100 % of the interval and tolerates a server that never pongs', async () => {
    let pings = 0;
    let failed = false;
    const keepAlive = new KeepAlive(20, () => pings++, () => (failed = true), 10);
    await sleep(130);
    keepAlive.stop();
    assert.ok(pings >= 2 && pings <= 9, `pings: ${pings}`);
    assert.equal(failed, false);
  });

  it('declares the flow failed when a pong stops coming after one was seen', async () => {
    let failed = 0;
    let answer = true;
    const keepAlive: KeepAlive = new KeepAlive(20, () => answer && queueMicrotask(() => keepAlive.pong()), () => failed++, 15);
    keepAlive.pong(); // the server has shown it answers pings
    await sleep(60);
    assert.equal(failed, 0);
    answer = false;
    await sleep(60);
    keepAlive.stop();
    assert.ok(failed >= 1);
  });

  it('stops pinging after stop()', async () => {
    let pings = 0;
    const keepAlive = new KeepAlive(10, () => pings++, () => undefined);
    keepAlive.stop();
    await sleep(40);
    assert.equal(pings, 0);
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
