// What a hop between nodes adds to one relayed MESSAGE, finer than sipp can say: sipp counts whole
// milliseconds (on this machine its clock moves in 4-ms ticks), while a hop on loopback costs a
// fraction of one. One sender, one MESSAGE at a time (no queue in front of it), each answered with
// digest (407, then the MESSAGE with Proxy-Authorization), timed with performance.now() from sending
// the authenticated MESSAGE to its 200 from the receiver. Run against one node and against a cluster
// whose receiver is registered on the other node, it gives the hop's cost with nothing else in the way
// (other work on the machine aside: the samples' spread says how much of that there was).

import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { answerChallenge, formatAuthField, parseAuthField, parseMessage, pickChallenge } from '../src/sip/index.ts';
import type { SipResponse } from '../src/sip/index.ts';

export interface ProbeResult {
  /** authenticated MESSAGE → 200, microseconds, sorted */
  samplesUs: number[];
  failed: number;
  firstError?: string;
}

const rand = (n: number) => randomBytes(n).toString('hex');

export async function probeRelayLatency(o: { host: string; port: number; domain: string; from: string; password: string; to: string; count: number; gapMs: number }): Promise<ProbeResult> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const local = socket.address();
  const waiting = new Map<string, (r: SipResponse) => void>();
  socket.on('message', (data) => {
    try {
      const msg = parseMessage(data);
      if (msg.kind !== 'response' || msg.status < 200) return;
      waiting.get(msg.headers.get('call-id') ?? '')?.(msg);
    } catch {
      // not for us
    }
  });
  const exchange = (text: string, callId: string): Promise<SipResponse | undefined> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(callId);
        resolve(undefined);
      }, 2_000);
      waiting.set(callId, (r) => {
        clearTimeout(timer);
        waiting.delete(callId);
        resolve(r);
      });
      socket.send(text, o.port, o.host);
    });
  const uri = `sip:${o.to}@${o.domain}`;
  const request = (callId: string, tag: string, cseq: number, auth?: string) =>
    [
      `MESSAGE ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${local.port};branch=z9hG4bK${rand(8)};rport`,
      'Max-Forwards: 70',
      `From: <sip:${o.from}@${o.domain}>;tag=${tag}`,
      `To: <${uri}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} MESSAGE`,
      ...(auth === undefined ? [] : [`Proxy-Authorization: ${auth}`]),
      'Content-Type: text/plain;charset=UTF-8',
      'Content-Length: 5',
      '',
      'probe',
    ].join('\r\n');
  const samplesUs: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const fail = (why: string) => {
    failed++;
    firstError ??= why;
  };
  try {
    for (let i = 0; i < o.count; i++) {
      const callId = rand(10);
      const tag = rand(4);
      const challenged = await exchange(request(callId, tag, 1), callId);
      const challenge = challenged?.status === 407 ? pickChallenge(challenged.headers.getAll('Proxy-Authenticate').map((v) => parseAuthField(v))) : undefined;
      if (challenge === undefined) {
        fail(challenged === undefined ? 'no answer to the first MESSAGE within 2 s' : `first MESSAGE answered ${challenged.status}`);
        continue;
      }
      const answer = formatAuthField(answerChallenge(challenge, { username: o.from, password: o.password, method: 'MESSAGE', uri }), 'credentials');
      const t0 = performance.now();
      const done = await exchange(request(callId, tag, 2, answer), callId);
      const us = (performance.now() - t0) * 1000;
      if (done?.status === 200) samplesUs.push(us);
      else fail(done === undefined ? 'no answer to the authenticated MESSAGE within 2 s' : `authenticated MESSAGE answered ${done.status}`);
      await new Promise((r) => setTimeout(r, o.gapMs));
    }
  } finally {
    socket.close();
  }
  samplesUs.sort((a, b) => a - b);
  return { samplesUs, failed, ...(firstError === undefined ? {} : { firstError }) };
}
