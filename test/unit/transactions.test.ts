import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Headers, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { createResponse } from '../../src/sip/response.ts';
import { AnsweredRequests, FingerprintSet } from '../../src/sip/transaction/answered.ts';
import { TransactionLayer } from '../../src/sip/transaction/layer.ts';
import type { NonInviteServerTransaction } from '../../src/sip/transaction/server-non-invite.ts';
import type { Flow } from '../../src/sip/transport/flow.ts';

const FAST = { t1: 10, t2: 40, t4: 50 };

function fakeFlow(reliable: boolean): Flow & { sent: string[]; fail: boolean } {
  const flow = {
    id: reliable ? 'tcp:test#1' : 'udp:test',
    protocol: reliable ? ('tcp' as const) : ('udp' as const),
    local: { address: '127.0.0.1', port: 5060 },
    remote: { address: '127.0.0.1', port: 40000 },
    reliable,
    closed: false,
    sent: [] as string[],
    fail: false,
    send(bytes: Buffer): boolean {
      if (flow.fail) return false;
      flow.sent.push(bytes.toString());
      return true;
    },
  };
  return flow;
}

function request(method = 'MESSAGE', branch = 'z9hG4bK-abc'): SipRequest {
  const headers = new Headers([
    { name: 'via', value: `SIP/2.0/UDP 127.0.0.1:40000;branch=${branch}` },
    { name: 'from', value: '<sip:alice@parley.test>;tag=a1' },
    { name: 'to', value: '<sip:bob@parley.test>' },
    { name: 'call-id', value: 'call-1' },
    { name: 'cseq', value: `1 ${method}` },
  ]);
  return { kind: 'request', method, uri: 'sip:bob@parley.test', headers, body: Buffer.alloc(0) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('hands a new request to the TU once and absorbs retransmissions while trying', () => {
    const seen: NonInviteServerTransaction[] = [];
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, tx) => tx && seen.push(tx) });
    const flow = fakeFlow(false);
    layer.receive(request(), flow);
    layer.receive(request(), flow);
    assert.equal(seen.length, 1);
    assert.equal(flow.sent.length, 0, 'nothing to resend before the TU answers');
    layer.close();
  });

  it('answers a retransmission with the last response in completed, then handles it as new after Timer J', async () => {
    let tx: NonInviteServerTransaction | null = null;
    let requests = 0;
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, t) => ((tx = t), requests++) });
    const flow = fakeFlow(false);
    const req = request();
    layer.receive(req, flow);
    assert.ok(tx);
    const ok = createResponse(req, 200);
    ok.headers.append('warning', '399 parley.test "délivré à Zoë ✓"'); // UTF-8 beyond latin1: kept byte for byte
    (tx as NonInviteServerTransaction).respond(ok);
    assert.equal((tx as NonInviteServerTransaction).state, 'completed');
    layer.receive(request(), flow);
    assert.equal(flow.sent.length, 2);
    assert.equal(flow.sent[0], flow.sent[1]);
    assert.match(flow.sent[1] ?? '', /délivré à Zoë ✓/);
    assert.equal(requests, 1, 'the retransmission did not reach the TU');
    assert.equal(layer.size.server, 1, 'kept for Timer J');
    // Timer J is 64·T1; the layer keeps a completed transaction up to 2·T1 longer (completed.ts)
    await sleep(66 * FAST.t1 + 30);
    assert.equal(layer.size.server, 0);
    layer.receive(request(), flow);
    assert.equal(requests, 2, 'after Timer J the same request is a new one for the TU');
    assert.equal(flow.sent.length, 2, 'and the layer did not answer it by itself');
    layer.close();
  });

  it('tells apart completed transactions whose keys share a fingerprint, and keeps big responses', async () => {
    const { CompletedTransactions } = await import('../../src/sip/transaction/completed.ts');
    const { fingerprint } = await import('../../src/sip/transaction/answered.ts');
    // two keys with one fingerprint: FNV-1a over 30 bits, found by search among short suffixes
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined; i++) {
      const key = `z9hG4bK-${i}|10.0.0.1:5060|MESSAGE`;
      const f = fingerprint(key);
      const other = seen.get(f);
      if (other !== undefined) pair = [other, key];
      else seen.set(f, key);
    }
    const kept = new CompletedTransactions(60_000, 1000, 60_000, () => 0);
    const big = Buffer.alloc(200_000, 0x62);
    kept.add(pair[0], Buffer.from('first'));
    kept.add(pair[1], Buffer.from('second'));
    kept.add('z9hG4bK-big|10.0.0.1:5060|MESSAGE', big);
    assert.equal(kept.response(pair[0])?.toString(), 'first');
    assert.equal(kept.response(pair[1])?.toString(), 'second');
    assert.deepEqual(kept.response('z9hG4bK-big|10.0.0.1:5060|MESSAGE'), big);
    assert.equal(kept.response('z9hG4bK-none|10.0.0.1:5060|MESSAGE'), undefined);
    assert.equal(kept.size, 3);
    kept.clear();
    assert.equal(kept.response(pair[0]), undefined);
  });

  it('drops completed transactions a bucket at a time, and their chunks with the last bucket in them', async () => {
    const { CompletedTransactions } = await import('../../src/sip/transaction/completed.ts');
    let clock = 0;
    const kept = new CompletedTransactions(20, 10, 20, () => clock);
    // random responses, each its own: nothing for delta-codec.ts to share, each record takes its 1,000 bytes
    const responses = Array.from({ length: 400 }, () => randomBytes(1000));
    for (let i = 0; i < 200; i++) kept.add(`z9hG4bK-a${i}|h:1|MESSAGE`, responses[i]!); // bucket 0, opened at 0
    clock = 10;
    for (let i = 0; i < 200; i++) kept.add(`z9hG4bK-b${i}|h:1|MESSAGE`, responses[200 + i]!); // bucket 1, opened at 10
    assert.equal(kept.size, 400);
    assert.equal(kept.chunks, 2, 'one chunk shared by both buckets, a second for bucket 1');
    clock = 30; // bucket 0 is due (0 + 20 + 10), bucket 1 is not
    await sleep(50);
    assert.equal(kept.size, 200);
    assert.equal(kept.response('z9hG4bK-a0|h:1|MESSAGE'), undefined);
    assert.deepEqual(kept.response('z9hG4bK-b199|h:1|MESSAGE'), responses[399]);
    assert.equal(kept.chunks, 2, 'the shared chunk stays while bucket 1 has records in it');
    clock = 40;
    await sleep(50);
    assert.deepEqual([kept.size, kept.chunks], [0, 0]);
    kept.add('z9hG4bK-c|h:1|MESSAGE', responses[0]!); // chunks freed whole are used again
    assert.deepEqual(kept.response('z9hG4bK-c|h:1|MESSAGE'), responses[0]);
    kept.clear();
  });

  it('with responses kept shorter than Timer J, absorbs a late retransmission unanswered until Timer J', async () => {
    const { CompletedTransactions } = await import('../../src/sip/transaction/completed.ts');
    let clock = 0;
    const kept = new CompletedTransactions(40, 10, 10, () => clock);
    kept.add('z9hG4bK-1|h:1|MESSAGE', Buffer.from('200'));
    assert.equal(kept.response('z9hG4bK-1|h:1|MESSAGE')?.toString(), '200');
    clock = 20; // responses due at 0 + 10 + 10
    await sleep(40);
    assert.equal(kept.chunks, 0, 'the response is gone');
    assert.equal(kept.response('z9hG4bK-1|h:1|MESSAGE'), 'absorbed');
    assert.equal(kept.response('z9hG4bK-2|h:1|MESSAGE'), undefined, 'another key is a new request');
    assert.equal(kept.size, 1);
    clock = 50; // the transaction is due at 0 + 40 + 10
    await sleep(40);
    assert.equal(kept.response('z9hG4bK-1|h:1|MESSAGE'), undefined);
    assert.equal(kept.size, 0);
  });

  it('through the layer: a retransmission after the kept response is absorbed, not handed to the TU', async () => {
    let requests = 0;
    let tx: NonInviteServerTransaction | null = null;
    const layer = new TransactionLayer({ ...FAST, completedResponse: 2 * FAST.t1 }, { onRequest: (_r, _f, t) => ((tx = t), requests++) });
    const flow = fakeFlow(false);
    const req = request();
    layer.receive(req, flow);
    (tx as unknown as NonInviteServerTransaction).respond(createResponse(req, 200));
    layer.receive(request(), flow);
    assert.deepEqual([requests, flow.sent.length], [1, 2], 'answered again while the response is kept');
    await sleep(4 * FAST.t1 + 30);
    layer.receive(request(), flow);
    assert.deepEqual([requests, flow.sent.length], [1, 2], 'absorbed: neither answered nor handed to the TU');
    await sleep(64 * FAST.t1 + 30);
    layer.receive(request(), flow);
    assert.equal(requests, 2, 'after Timer J a new request');
    layer.close();
  });

  it('terminates at once over a reliable transport (Timer J = 0)', () => {
    let tx: NonInviteServerTransaction | null = null;
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, t) => (tx = t) });
    const req = request();
    layer.receive(req, fakeFlow(true));
    (tx as unknown as NonInviteServerTransaction).respond(createResponse(req, 200));
    assert.equal((tx as unknown as NonInviteServerTransaction).state, 'terminated');
  });

  it('forgets a stateless answer at once, so a retransmission is a new request for the TU', () => {
    const seen: NonInviteServerTransaction[] = [];
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, tx) => tx && seen.push(tx) });
    const flow = fakeFlow(false);
    const req = request('REGISTER');
    layer.receive(req, flow);
    seen[0]?.respond(createResponse(req, 401), { stateless: true });
    assert.equal(seen[0]?.state, 'terminated');
    assert.equal(layer.size.server, 0);
    layer.receive(request('REGISTER'), flow);
    assert.equal(seen.length, 2, 'the retransmission reached the TU again');
    assert.equal(flow.sent.length, 1, 'and the layer did not answer it by itself');
    layer.close();
  });

  it('remembers an answerAgain answer for Timer J by its key only, and marks the retransmission for the TU', () => {
    const seen: NonInviteServerTransaction[] = [];
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, tx) => tx && seen.push(tx) });
    const flow = fakeFlow(false);
    const req = request('REGISTER');
    layer.receive(req, flow);
    assert.equal(seen[0]?.retransmission, false);
    seen[0]?.respond(createResponse(req, 200), { stateless: true, answerAgain: true });
    assert.equal(seen[0]?.state, 'terminated');
    assert.deepEqual([layer.size.server, layer.answeredSize], [0, 1], 'no transaction, one fingerprint');
    layer.receive(request('REGISTER'), flow);
    assert.equal(seen[1]?.retransmission, true, 'the same branch, sent-by and method');
    layer.receive(request('REGISTER', 'z9hG4bK-other'), flow);
    assert.equal(seen[2]?.retransmission, false, 'another branch is another request');
    layer.receive(request('MESSAGE'), flow);
    assert.equal(seen[3]?.retransmission, false, 'another method is another transaction');
    layer.close();
  });

  it('remembers nothing over a reliable transport (no retransmissions) nor for a plain stateless answer', () => {
    const seen: NonInviteServerTransaction[] = [];
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, tx) => tx && seen.push(tx) });
    const tcp = fakeFlow(true);
    layer.receive(request('REGISTER'), tcp);
    seen[0]?.respond(createResponse(request('REGISTER'), 200), { stateless: true, answerAgain: true });
    const udp = fakeFlow(false);
    layer.receive(request('REGISTER', 'z9hG4bK-challenged'), udp);
    seen[1]?.respond(createResponse(request('REGISTER'), 401), { stateless: true });
    assert.equal(layer.answeredSize, 0);
    layer.close();
  });

  it('keeps many completed transactions until Timer J, each answering its own retransmission', async () => {
    const seen: NonInviteServerTransaction[] = [];
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, tx) => tx && seen.push(tx) });
    const flow = fakeFlow(false);
    for (let i = 0; i < 50; i++) {
      const req = request('MESSAGE', `z9hG4bK-many-${i}`);
      layer.receive(req, flow);
      seen[i]?.respond(createResponse(req, 200));
    }
    assert.equal(layer.size.server, 50);
    for (const i of [49, 0, 17]) layer.receive(request('MESSAGE', `z9hG4bK-many-${i}`), flow);
    assert.equal(seen.length, 50, 'no retransmission reached the TU');
    assert.deepEqual(flow.sent.slice(50), [flow.sent[49], flow.sent[0], flow.sent[17]]);
    await sleep(66 * FAST.t1 + 30);
    assert.equal(layer.size.server, 0);
    layer.close();
  });

  it('refuses a second final response', () => {
    let tx: NonInviteServerTransaction | null = null;
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, t) => (tx = t) });
    const req = request();
    layer.receive(req, fakeFlow(false));
    const t = tx as unknown as NonInviteServerTransaction;
    t.respond(createResponse(req, 200));
    assert.throws(() => t.respond(createResponse(req, 500)), /already answered/);
    layer.close();
  });

  it('keeps CANCEL apart from the request it names (same branch, other method)', () => {
    const methods: string[] = [];
    const layer = new TransactionLayer(FAST, { onRequest: (r) => methods.push(r.method) });
    const flow = fakeFlow(false);
    layer.receive(request('MESSAGE'), flow);
    layer.receive(request('CANCEL'), flow);
    assert.deepEqual(methods, ['MESSAGE', 'CANCEL']);
    layer.close();
  });

  it('passes INVITE and ACK to the TU without a transaction', () => {
    const txs: Array<unknown> = [];
    const layer = new TransactionLayer(FAST, { onRequest: (_r, _f, tx) => txs.push(tx) });
    layer.receive(request('INVITE'), fakeFlow(false));
    layer.receive(request('ACK'), fakeFlow(false));
    assert.deepEqual(txs, [null, null]);
  });
});

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it('retransmits with Timer E doubling to T2, then times out with Timer F', (t) => {
    // the timers' own clock, so the count does not depend on how loaded the machine is
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(false);
    let timedOut = false;
    layer.sendRequest(request(), flow, { onFinal: () => assert.fail('no response was sent'), onTimeout: () => (timedOut = true), onTransportError: () => assert.fail() });
    // a millisecond at a time: a timer set while one fires runs in a later tick
    for (let ms = 1; ms < 64 * FAST.t1; ms++) t.mock.timers.tick(1);
    assert.equal(timedOut, false);
    // E fires at 10, 30, 70, then every T2 = 40 ms: 110, 150, …, 630; the first send and 17 copies
    assert.equal(flow.sent.length, 18);
    t.mock.timers.tick(1);
    assert.ok(timedOut, 'Timer F at 64·T1');
    assert.equal(flow.sent.length, 18);
    assert.equal(layer.size.client, 0);
  });

  it('after a provisional response retransmits every T2, and Timer F still ends it at 64·T1 from the first send', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(false);
    let timedOut = false;
    const req = request('MESSAGE', 'z9hG4bK-proceeding');
    layer.sendRequest(req, flow, { onFinal: () => assert.fail('no final response was sent'), onTimeout: () => (timedOut = true), onTransportError: () => assert.fail() });
    for (let ms = 1; ms <= 15; ms++) t.mock.timers.tick(1);
    // E fired at 10 (trying); a 100 Trying comes at 15: the next E is the one set at 10, at 30
    assert.equal(flow.sent.length, 2);
    layer.receive(createResponse(req, 100), flow);
    for (let ms = 16; ms < 64 * FAST.t1; ms++) t.mock.timers.tick(1);
    // E at 30, then every T2 = 40 ms in proceeding: 70, 110, …, 630: 16 more copies
    assert.equal(flow.sent.length, 2 + 16);
    assert.equal(timedOut, false);
    t.mock.timers.tick(1);
    assert.ok(timedOut, 'Timer F at 64·T1');
    assert.equal(layer.size.client, 0);
  });

  it('does not retransmit over a reliable transport', async () => {
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(true);
    const tx = layer.sendRequest(request(), flow, { onFinal: () => {}, onTimeout: () => {}, onTransportError: () => {} });
    await sleep(5 * FAST.t1);
    assert.equal(flow.sent.length, 1);
    tx.dispose();
  });

  it('delivers the final response once and absorbs its retransmissions (Timer K)', async () => {
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(false);
    const finals: SipResponse[] = [];
    const req = request('MESSAGE', 'z9hG4bK-client');
    layer.sendRequest(req, flow, { onFinal: (r) => finals.push(r), onTimeout: () => assert.fail(), onTransportError: () => assert.fail() });
    const ok = createResponse(req, 200);
    assert.equal(layer.receive(ok, flow), true);
    assert.equal(layer.receive(ok, flow), true, 'a retransmission is still claimed during Timer K');
    assert.equal(finals.length, 1);
    assert.equal(layer.size.client, 1, 'kept for Timer K');
    // Timer K keeps the key's fingerprint from T4 to 2·T4 (two generations, answered.ts)
    await sleep(2 * FAST.t4 + 30);
    assert.equal(layer.receive(ok, flow), false, 'after Timer K the transaction is gone');
    assert.equal(layer.size.client, 0);
  });

  it('tells the TU of a transport error', () => {
    const layer = new TransactionLayer(FAST, { onRequest: () => {} });
    const flow = fakeFlow(true);
    flow.fail = true;
    let failed = false;
    layer.sendRequest(request(), flow, { onFinal: () => {}, onTimeout: () => {}, onTransportError: () => (failed = true) });
    assert.ok(failed);
    assert.equal(layer.size.client, 0);
  });
});

describe('expiry queue (Timers J and K)', () => {
  it('expires items in the order they were added, each after the delay, with one timer', async () => {
    const { ExpiryQueue } = await import('../../src/sip/transaction/expiry.ts');
    let clock = 0;
    const expired: string[] = [];
    const queue = new ExpiryQueue<string>(20, (item) => expired.push(`${item}@${clock}`), () => clock);
    queue.add('a');
    clock = 10;
    queue.add('b');
    assert.equal(queue.size, 2);
    clock = 25; // a is due (20), b is not (30)
    await sleep(30);
    assert.deepEqual(expired, ['a@25']);
    clock = 30;
    await sleep(30);
    assert.deepEqual(expired, ['a@25', 'b@30']);
    assert.equal(queue.size, 0);
  });

  it('gives back what had not expired when drained', async () => {
    const { ExpiryQueue } = await import('../../src/sip/transaction/expiry.ts');
    const queue = new ExpiryQueue<number>(60_000, () => assert.fail('nothing expires'));
    queue.add(1);
    queue.add(2);
    assert.deepEqual(queue.drain(), [1, 2]);
    assert.equal(queue.size, 0);
  });
});

describe('answered requests (fingerprints for Timer J)', () => {
  it('remembers a key for one to two windows, then forgets it', () => {
    let now = 0;
    const answered = new AnsweredRequests(1000, () => now);
    answered.add('z9hG4bK-1|127.0.0.1:5060|REGISTER');
    assert.equal(answered.has('z9hG4bK-1|127.0.0.1:5060|REGISTER'), true);
    assert.equal(answered.has('z9hG4bK-2|127.0.0.1:5060|REGISTER'), false);
    now = 1500; // one window on: in the previous generation
    assert.equal(answered.has('z9hG4bK-1|127.0.0.1:5060|REGISTER'), true);
    now = 2600; // two windows on
    assert.equal(answered.has('z9hG4bK-1|127.0.0.1:5060|REGISTER'), false);
    answered.add('z9hG4bK-3|127.0.0.1:5060|REGISTER');
    now = 10_000; // idle for long: both generations dropped at once
    assert.equal(answered.has('z9hG4bK-3|127.0.0.1:5060|REGISTER'), false);
    assert.equal(answered.size, 0);
  });
});

describe('fingerprint sets (answered requests, off the JS heap)', () => {
  it('holds every fingerprint added through its growth, and no other', () => {
    const set = new FingerprintSet();
    const added: number[] = [];
    // 0 and the largest 30-bit value included: a slot holds the fingerprint + 1
    for (let i = 0; i < 5000; i++) added.push(i === 0 ? 0 : i === 1 ? 0x3fffffff : (Math.imul(i, 0x9e3779b1) >>> 2) & 0x3fffffff);
    for (const f of added) set.add(f);
    for (const f of added) set.add(f); // twice: counted once
    assert.equal(set.size, new Set(added).size);
    assert.equal(added.every((f) => set.has(f)), true);
    const others = Array.from({ length: 5000 }, (_, i) => (Math.imul(i + 7, 0x85ebca6b) >>> 2) & 0x3fffffff).filter((f) => !added.includes(f));
    assert.equal(others.some((f) => set.has(f)), false);
  });

  it('starts big enough for the fingerprints it is expected to hold', () => {
    const set = new FingerprintSet(3000);
    for (let i = 0; i < 3000; i++) set.add(i * 17);
    assert.equal(set.size, 3000);
    assert.equal(set.has(17 * 2999), true);
    assert.equal(set.has(1), false);
  });
});

describe('Via received/rport (RFC 3581)', () => {
  it('adds received when the sent-by host is not the source, and fills an empty rport', async () => {
    const { stampReceived } = await import('../../src/sip/transport/received.ts');
    const req = request();
    req.headers.set('via', 'SIP/2.0/UDP client.invalid:5070;branch=z9hG4bK-x;rport');
    req.headers.append('via', 'SIP/2.0/UDP second.example:5060;branch=z9hG4bK-y');
    stampReceived(req, { address: '192.0.2.7', port: 40123 });
    assert.deepEqual(req.headers.getAll('via'), [
      'SIP/2.0/UDP client.invalid:5070;branch=z9hG4bK-x;rport=40123;received=192.0.2.7',
      'SIP/2.0/UDP second.example:5060;branch=z9hG4bK-y',
    ]);
  });

  it('writes rport and received into the Via as the client wrote it, whatever its spacing and case', async () => {
    const { stampReceived } = await import('../../src/sip/transport/received.ts');
    const req = request();
    req.headers.set('via', 'SIP/2.0/UDP client.invalid:5070 ; RPORT ;Branch=z9hG4bK-x;x-keep=AbC');
    const via = stampReceived(req, { address: '192.0.2.7', port: 40123 });
    assert.equal(req.headers.get('via'), 'SIP/2.0/UDP client.invalid:5070 ;rport=40123;Branch=z9hG4bK-x;x-keep=AbC;received=192.0.2.7');
    assert.equal(via?.params.get('rport'), '40123');
    assert.equal(via?.params.get('received'), '192.0.2.7');
    assert.equal(via?.params.get('branch'), 'z9hG4bK-x');
  });

  /** The top Via as stampReceived leaves it, for a request whose top Via is `via`, from 192.0.2.7:40123. */
  async function stamped(via: string): Promise<string | undefined> {
    const { stampReceived } = await import('../../src/sip/transport/received.ts');
    const req = request();
    req.headers.set('via', via);
    stampReceived(req, { address: '192.0.2.7', port: 40123 });
    return req.headers.get('via');
  }

  it('fills only the rport parameter, not one whose name starts the same', async () => {
    assert.equal(await stamped('SIP/2.0/UDP 192.0.2.7:5070;rportx=1;branch=z9hG4bK-x;rport'), 'SIP/2.0/UDP 192.0.2.7:5070;rportx=1;branch=z9hG4bK-x;rport=40123');
  });

  it('writes the whole Via again when a received is there already or a value is quoted', async () => {
    assert.equal(await stamped('SIP/2.0/UDP client.invalid;received=198.51.100.1;branch=z9hG4bK-x;rport'), 'SIP/2.0/UDP client.invalid;received=192.0.2.7;branch=z9hG4bK-x;rport=40123');
    assert.equal(await stamped('SIP/2.0/UDP client.invalid;x="a;rport";branch=z9hG4bK-y;rport'), 'SIP/2.0/UDP client.invalid;x="a;rport";branch=z9hG4bK-y;rport=40123;received=192.0.2.7');
  });

  it('leaves a Via alone when it already names the source and asks for no rport', async () => {
    const { stampReceived } = await import('../../src/sip/transport/received.ts');
    const req = request();
    const before = req.headers.get('via');
    stampReceived(req, { address: '127.0.0.1', port: 40000 });
    assert.equal(req.headers.get('via'), before);
  });
});
