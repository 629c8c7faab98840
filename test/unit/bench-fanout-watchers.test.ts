// The fan-out bench's cheap watcher side (bench/fanout-watchers.ts): its framing must hold over
// TCP's arbitrary read boundaries, and its 200 must carry the request's §8.2.6.2 lines unchanged.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answer, framer } from '../../bench/fanout-watchers.ts';
import { parseMessage } from '../../src/sip/index.ts';

const notify = (n: number, body: string) =>
  [
    'NOTIFY sip:w00001@127.0.0.1:5070;transport=tcp SIP/2.0',
    `Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKn${n}`,
    'Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKinner',
    'Max-Forwards: 70',
    'From: <sip:boss@bench.parley>;tag=srv',
    'To: <sip:w00001@bench.parley>;tag=cli',
    'Call-ID: abc@x',
    `CSeq: ${n} NOTIFY`,
    'Event: presence',
    'Subscription-State: active;expires=3600',
    'Content-Type: application/pidf+xml',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');

function frames(chunks: readonly Buffer[]): string[] {
  const out: string[] = [];
  const push = framer((data, start, _head, body, end) => out.push(`${data.toString('latin1', start, body).split('\r\n')[0]}|${data.toString('utf8', body, end)}`));
  for (const c of chunks) push(c);
  return out;
}

test('framer: several messages in one read, keep-alive CRLFs between them', () => {
  const bytes = Buffer.from(`${notify(1, '<note>a</note>')}\r\n\r\n${notify(2, '')}${notify(3, 'é')}`);
  assert.deepEqual(frames([bytes]), [
    'NOTIFY sip:w00001@127.0.0.1:5070;transport=tcp SIP/2.0|<note>a</note>',
    'NOTIFY sip:w00001@127.0.0.1:5070;transport=tcp SIP/2.0|',
    'NOTIFY sip:w00001@127.0.0.1:5070;transport=tcp SIP/2.0|é',
  ]);
});

test('framer: a message split at every byte boundary comes out whole, once', () => {
  const bytes = Buffer.from(notify(7, '<note>round 1 Busy</note>') + notify(8, 'x'));
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(frames([bytes.subarray(0, cut), bytes.subarray(cut)]).map((f) => f.split('|')[1]), ['<note>round 1 Busy</note>', 'x'], `cut at ${cut}`);
  }
  assert.equal(frames([...bytes].map((b) => Buffer.from([b]))).length, 2);
});

test('framer: a message without Content-Length is an error, not a guess', () => {
  assert.throws(() => frames([Buffer.from('NOTIFY sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n')]), /Content-Length/);
});

test('answer: a 200 with the Vias, From, To, Call-ID and CSeq of the NOTIFY, and an empty body', () => {
  const request = notify(4, '<note>n</note>');
  const head = request.slice(0, request.indexOf('\r\n\r\n') + 2);
  const res = parseMessage(Buffer.from(answer(head, '200 OK')));
  assert.equal(res.kind, 'response');
  if (res.kind !== 'response') return;
  assert.equal(res.status, 200);
  assert.deepEqual(res.headers.getAll('via'), ['SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKn4', 'SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKinner']);
  assert.equal(res.headers.get('from'), '<sip:boss@bench.parley>;tag=srv');
  assert.equal(res.headers.get('to'), '<sip:w00001@bench.parley>;tag=cli');
  assert.equal(res.headers.get('call-id'), 'abc@x');
  assert.equal(res.headers.get('cseq'), '4 NOTIFY');
  assert.equal(res.headers.get('event'), undefined);
  assert.equal(res.body.length, 0);
});
