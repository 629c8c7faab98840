import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Headers, type SipRequest } from '../../src/sip/message.ts';
import { DeadlineWheel } from '../../src/sip/transaction/deadline-wheel.ts';
import { TransactionLayer } from '../../src/sip/transaction/layer.ts';
import type { Flow } from '../../src/sip/transport/flow.ts';

describe('deadline wheel (Timer F over reliable flows)', () => {
  it('fires each item once, after its duration and at most one slot (1/64) later; a cancelled one never', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const wheel = new DeadlineWheel<{ expire(): void; name: string }>(640);
    const fired: string[] = [];
    const item = (name: string) => ({ name, expire: () => fired.push(name) });
    const a = item('a');
    wheel.add(a);
    for (let ms = 0; ms < 15; ms++) t.mock.timers.tick(1);
    const b = item('b');
    const slotB = wheel.add(b);
    const c = item('c');
    const slotC = wheel.add(c);
    wheel.cancel(slotC, c);
    for (let ms = 15; ms < 640; ms++) t.mock.timers.tick(1);
    assert.deepEqual(fired, [], 'nothing before the duration');
    for (let ms = 0; ms < 10; ms++) t.mock.timers.tick(1);
    assert.deepEqual(fired, ['a'], 'a within a slot after its duration');
    for (let ms = 0; ms < 10; ms++) t.mock.timers.tick(1);
    assert.deepEqual(fired, ['a', 'b'], 'b (added 15 ms later) one slot later');
    wheel.cancel(slotB, b);
    assert.equal(wheel.size, 0);
    t.mock.timers.tick(2000);
    assert.deepEqual(fired, ['a', 'b'], 'c was cancelled; b once');
  });

  it('a NOTIFY over TCP unanswered for 64·T1 times out (Timer F), one answered in time does not', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const layer = new TransactionLayer({ t1: 10, t2: 40, t4: 50 }, { onRequest: () => {} });
    const sent: string[] = [];
    const flow = { id: 'tcp:w#1', protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 }, reliable: true, closed: false, send: (b: Buffer) => sent.push(b.toString()) > 0 } as unknown as Flow;
    const outcomes: string[] = [];
    const user = (name: string) => ({ onFinal: () => outcomes.push(`${name} answered`), onTimeout: () => outcomes.push(`${name} timed out`), onTransportError: () => assert.fail() });
    layer.sendRequest(notify('z9hG4bK-1'), flow, user('first'));
    layer.sendRequest(notify('z9hG4bK-2'), flow, user('second'));
    layer.receive({ kind: 'response', status: 200, reason: 'OK', headers: notify('z9hG4bK-2').headers, body: Buffer.alloc(0) } as never, flow);
    for (let ms = 0; ms < 639; ms++) t.mock.timers.tick(1);
    assert.deepEqual(outcomes, ['second answered'], 'no Timer F before 64·T1');
    for (let ms = 0; ms < 20; ms++) t.mock.timers.tick(1);
    assert.deepEqual(outcomes, ['second answered', 'first timed out']);
    assert.equal(sent.length, 2, 'nothing retransmitted over TCP');
    assert.equal(layer.size.client, 0);
  });
});

function notify(branch: string): SipRequest {
  const headers = new Headers([
    { name: 'via', value: `SIP/2.0/TCP 127.0.0.1:5060;branch=${branch}` },
    { name: 'from', value: '<sip:bob@parley.test>;tag=n1' },
    { name: 'to', value: '<sip:alice@parley.test>;tag=s1' },
    { name: 'call-id', value: 'sub-1' },
    { name: 'cseq', value: '1 NOTIFY' },
  ]);
  return { kind: 'request', method: 'NOTIFY', uri: 'sip:alice@127.0.0.1:40000', headers, body: Buffer.alloc(0) };
}
