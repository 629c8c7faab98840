// SIP parsing micro-benchmark: `node bench/parse.ts [--ms 3000]` (time spent per message kind).
//
// For each of three messages modelled on the sipp scenarios (bench/sipp/register.xml and
// message-uac.xml: an authenticated REGISTER, an authenticated MESSAGE with a short body, and the
// 200 OK relayed back), it measures what the server does with one received datagram: parseMessage,
// then headers.get('via') and parseVia of the top Via twice (stampReceived, the transaction key),
// for a request checkRequest (From, To, Contact, other Vias, Request-URI: src/sip/validate.ts),
// get('call-id'), get('cseq') + parseCSeq, get('to') + parseNameAddr + parseUri, get('from'),
// getAll('authorization').
//
// It prints, per message kind, the time per message in ns (the best of 100 ms rounds, the round
// least disturbed by other processes) and the bytes allocated on the V8 heap per message. Those
// are read from the heap's used size over batches short enough to fit in the young generation: a
// batch during which a GC ran (the used size went down) is left out, and the median of the others
// is reported. Numbers only, no assertions.

import { checkRequest, parseCSeq, parseMessage, parseNameAddr, parseUri, parseVia } from '../src/sip/index.ts';
import type { SipMessage } from '../src/sip/index.ts';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';

const { values } = parseArgs({ options: { ms: { type: 'string', default: '3000' } } });
const rounds = Math.max(1, Math.round(Number(values.ms) / 100));

const wire = (lines: string[], body = ''): Buffer =>
  Buffer.from(lines.join('\r\n') + `\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n` + body, 'latin1');

// What sipp writes for [authentication] after a 401 / 407 (qop=auth challenge).
const digest = (user: string, uri: string): string =>
  `Digest username="${user}",realm="example.test",cnonce="6b8b4567",nc=00000001,qop=auth,` +
  `uri="${uri}",nonce="c3e2a1f0b5d94e7a8f6c2b1d0e9f8a7b1746008400",response="0cc175b9c0f1b6a831c399e269772661",algorithm=MD5`;

const MESSAGES: Record<string, Buffer> = {
  register: wire([
    'REGISTER sip:example.test SIP/2.0',
    'Via: SIP/2.0/UDP 10.0.0.17:5061;branch=z9hG4bK-31337-1042-7;rport',
    'From: <sip:user0042@example.test>;tag=31337reg1042',
    'To: <sip:user0042@example.test>',
    'Call-ID: 1042-31337@10.0.0.17',
    'CSeq: 2 REGISTER',
    'Contact: <sip:user0042@10.0.0.17:5061;transport=UDP>',
    'Authorization: ' + digest('user0042', 'sip:example.test'),
    'Expires: 600',
    'Max-Forwards: 70',
  ]),
  message: wire(
    [
      'MESSAGE sip:bob@example.test SIP/2.0',
      'Via: SIP/2.0/UDP 10.0.0.17:5061;branch=z9hG4bK-31337-2042-7;rport',
      'From: <sip:user0042@example.test>;tag=31337msg2042',
      'To: <sip:bob@example.test>',
      'Call-ID: 2042-31337@10.0.0.17',
      'CSeq: 2 MESSAGE',
      'Proxy-Authorization: ' + digest('user0042', 'sip:bob@example.test'),
      'Max-Forwards: 70',
      'Content-Type: text/plain;charset=UTF-8',
    ],
    'Hello from sipp bench 2042\n',
  ),
  // the receiver's answer as the server sees it: its own Via on top, the sender's below
  ok: wire([
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK.Pq3Xk0aVbC1d;rport=5060',
    'Via: SIP/2.0/UDP 10.0.0.17:5061;branch=z9hG4bK-31337-2042-7;rport=5061;received=10.0.0.17',
    'From: <sip:user0042@example.test>;tag=31337msg2042',
    'To: <sip:bob@example.test>;tag=2042SIPpTag01',
    'Call-ID: 2042-31337@10.0.0.17',
    'CSeq: 2 MESSAGE',
  ]),
};

/** One received message, as the server handles it; returns something so that nothing is optimised away. */
function handle(data: Buffer): number {
  const msg: SipMessage = parseMessage(data);
  const h = msg.headers;
  const top = h.get('via') ?? '';
  const via1 = parseVia(top);
  if (msg.kind === 'request') checkRequest(msg, via1); // the request syntax checked at the edge
  const via2 = parseVia(top);
  const callId = h.get('call-id') ?? '';
  const cseq = parseCSeq(h.get('cseq') ?? '');
  const to = parseNameAddr(h.get('to') ?? '');
  const toUri = parseUri(to.uri);
  const from = h.get('from') ?? '';
  const auth = h.getAll('authorization');
  return via1.params.size + via2.host.length + callId.length + cseq.seq + toUri.host.length + from.length + auth.length;
}

let sink = 0;

function timeNs(data: Buffer): number {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    const until = Date.now() + 100;
    while (Date.now() < until) {
      for (let i = 0; i < 1000; i++) sink += handle(data);
      n += 1000;
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

function bytesPerMessage(data: Buffer): number {
  const batch = 100;
  const samples: number[] = [];
  for (let i = 0; i < 400; i++) {
    const before = v8.getHeapStatistics().used_heap_size;
    for (let j = 0; j < batch; j++) sink += handle(data);
    const grown = v8.getHeapStatistics().used_heap_size - before;
    if (grown > 0) samples.push(grown / batch);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] ?? NaN;
}

for (const data of Object.values(MESSAGES)) for (let i = 0; i < 20_000; i++) sink += handle(data); // warm up

console.log('message    bytes  ns/msg  alloc B/msg');
let totalNs = 0;
let totalBytes = 0;
for (const [name, data] of Object.entries(MESSAGES)) {
  const ns = timeNs(data);
  const bytes = bytesPerMessage(data);
  totalNs += ns;
  totalBytes += bytes;
  console.log(`${name.padEnd(9)} ${String(data.length).padStart(6)} ${ns.toFixed(0).padStart(7)} ${bytes.toFixed(0).padStart(12)}`);
}
const k = Object.keys(MESSAGES).length;
console.log(`${'mean'.padEnd(16)} ${(totalNs / k).toFixed(0).padStart(7)} ${(totalBytes / k).toFixed(0).padStart(12)}`);
if (sink === 0.5) console.log(sink); // keeps `sink` alive
