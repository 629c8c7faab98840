// Scenario 4: idle SIP-over-WebSocket registrations (RFC 7118). Opens `count` WebSocket
// connections to Parley, each sending one REGISTER, answering the 401 digest challenge, and then
// staying open and silent. The caller measures the server's memory before and after.
//
// Each connection registers a Contact under a user picked round-robin from `users`; Parley keeps
// at most 16 bindings per address (src/registrar/plan.ts), so callers pass >= count / 16 users.
// Source addresses rotate over 127.0.0.1-127.0.0.8 so the ephemeral ports of one source IP are
// not the limit.

import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { answerChallenge, formatAuthField, parseAuthField, parseMessage, pickChallenge } from '../src/sip/index.ts';

export interface WsLoadOptions {
  url: string;
  domain: string;
  users: readonly string[];
  password: string;
  count: number;
  /** index of the first connection (user and contact follow from it), so a second batch does not repeat the first; default 0 */
  first?: number;
  /** connections being set up at once */
  parallel?: number;
}

export interface WsLoadResult {
  registered: number;
  failed: number;
  firstError?: string;
  close(): Promise<void>;
}

const rand = (n: number) => randomBytes(n).toString('hex');

function register(user: string, domain: string, host: string, callId: string, tag: string, cseq: number, auth?: string): string {
  return [
    `REGISTER sip:${domain} SIP/2.0`,
    `Via: SIP/2.0/WS ${host}.invalid;branch=z9hG4bK${rand(8)}`,
    'Max-Forwards: 70',
    `From: <sip:${user}@${domain}>;tag=${tag}`,
    `To: <sip:${user}@${domain}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: <sip:${user}@${host}.invalid;transport=ws>`,
    'Expires: 3600',
    ...(auth !== undefined ? [`Authorization: ${auth}`] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function connectOne(opts: WsLoadOptions, i: number): Promise<WebSocket> {
  const user = opts.users[i % opts.users.length]!;
  const host = rand(6);
  const callId = rand(10);
  const tag = rand(4);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(opts.url, 'sip', { localAddress: `127.0.0.${1 + (i % 8)}`, perMessageDeflate: false });
    const timer = setTimeout(() => fail(new Error('no 200 within 20 s')), 20_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.once('error', fail);
    ws.once('open', () => ws.send(register(user, opts.domain, host, callId, tag, 1)));
    ws.on('message', (data: Buffer) => {
      try {
        const msg = parseMessage(Buffer.from(data));
        if (msg.kind !== 'response' || msg.status < 200) return;
        if (msg.status === 401) {
          const challenge = pickChallenge(msg.headers.getAll('WWW-Authenticate').map((v) => parseAuthField(v)));
          if (!challenge) return fail(new Error('401 without a usable challenge'));
          const answer = answerChallenge(challenge, { username: user, password: opts.password, method: 'REGISTER', uri: `sip:${opts.domain}` });
          ws.send(register(user, opts.domain, host, callId, tag, 2, formatAuthField(answer, 'credentials')));
        } else if (msg.status === 200) {
          clearTimeout(timer);
          ws.removeAllListeners('message');
          ws.removeListener('error', fail);
          ws.on('error', () => {});
          resolve(ws);
        } else {
          fail(new Error(`REGISTER answered ${msg.status} ${msg.reason}`));
        }
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

export async function openIdleRegistrations(opts: WsLoadOptions): Promise<WsLoadResult> {
  const sockets: WebSocket[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const first = opts.first ?? 0;
  let next = first;
  const worker = async () => {
    while (next < first + opts.count) {
      const i = next++;
      try {
        sockets.push(await connectOne(opts, i));
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.parallel ?? 100 }, worker));
  return {
    registered: sockets.length,
    failed,
    firstError,
    async close() {
      for (const ws of sockets) ws.terminate();
      await new Promise((r) => setTimeout(r, 200));
    },
  };
}
