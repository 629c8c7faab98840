// A request its sender made as text (TransactionLayer.sendPrepared, the NOTIFYs of a fan-out):
// written as text where the flow takes text (TCP, TLS: Flow.sendText), as UTF-8 bytes elsewhere.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransactionLayer } from '../../src/sip/transaction/layer.ts';
import type { Flow } from '../../src/sip/transport/flow.ts';

const FAST = { t1: 10, t2: 40, t4: 50 };
const TEXT = 'NOTIFY sip:w@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-t1\r\nSubject: Café\r\nContent-Length: 0\r\n\r\n';

/** Records what it is given, bytes or text; `withText`: it takes text too, as TCP and TLS flows do. */
function fakeFlow(reliable: boolean, withText: boolean): Flow & { sent: Array<Buffer | string>; fail: boolean } {
  const sent: Array<Buffer | string> = [];
  const take = (data: Buffer | string): boolean => {
    if (flow.fail) return false;
    sent.push(data);
    return true;
  };
  const endpoint = { address: '127.0.0.1', port: 5060 };
  const flow = { id: `${reliable ? 'tcp' : 'udp'}:text`, protocol: reliable ? ('tcp' as const) : ('udp' as const), local: endpoint, remote: endpoint, reliable, closed: false, sent, fail: false, send: take, ...(withText ? { sendText: take } : {}) };
  return flow;
}

const USER = { onFinal() {}, onTimeout() {}, onTransportError() {} };

describe('a request sent as text (TransactionLayer.sendPrepared)', () => {
  it('goes to a TCP or TLS flow as the text itself', () => {
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(true, true);
    const tx = layer.sendPrepared('z9hG4bK-t1|NOTIFY', TEXT, flow, USER);
    assert.deepEqual(flow.sent, [TEXT]);
    tx.dispose();
  });

  it('goes as UTF-8 bytes to a reliable flow that takes only bytes (WebSocket)', () => {
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(true, false);
    const tx = layer.sendPrepared('z9hG4bK-t1|NOTIFY', TEXT, flow, USER);
    assert.equal(flow.sent.length, 1);
    assert.deepEqual(flow.sent[0], Buffer.from(TEXT, 'utf8'));
    tx.dispose();
  });

  it('goes as UTF-8 bytes over UDP, and Timer E sends the same bytes again', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(false, true);
    const tx = layer.sendPrepared('z9hG4bK-t1|NOTIFY', TEXT, flow, USER);
    t.mock.timers.tick(FAST.t1);
    assert.equal(flow.sent.length, 2);
    for (const sent of flow.sent) assert.deepEqual(sent, Buffer.from(TEXT, 'utf8'));
    tx.dispose();
  });

  it('tells the TU when the flow cannot take the text', () => {
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(true, true);
    flow.fail = true;
    let failed = false;
    layer.sendPrepared('z9hG4bK-t1|NOTIFY', TEXT, flow, { ...USER, onTransportError: () => (failed = true) });
    assert.ok(failed);
    assert.equal(layer.size.client, 0);
  });
});
