// Requests whose lookups all answer at once (a kept account, a registration in this process's
// memory) are handled without a promise: the answer, or the forwarded MESSAGE, is on the flow
// before the transaction layer's receive returns, and the drain tracks no handling for them. Only
// a relayed MESSAGE waits (for its recipient's answer): that handling is tracked until the answer.
// The real transaction layer, dispatcher, registrar, MESSAGE router and digest authenticator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Authenticator } from '../../src/auth/authenticator.ts';
import { createRegistrationEvents, DEFAULT_REGISTRAR_SETTINGS, MemoryLocationService, registerHandler } from '../../src/registrar/index.ts';
import type { SipContext } from '../../src/router/context.ts';
import { createDispatcher } from '../../src/router/dispatch.ts';
import { RequestDrain } from '../../src/router/drain.ts';
import { messageHandler } from '../../src/router/message.ts';
import { answerChallenge, computeHa1, NonceIssuer, pickChallenge } from '../../src/sip/digest.ts';
import { formatAuthField, parseAuthField, parseMessage } from '../../src/sip/index.ts';
import type { Flow, SipResponse } from '../../src/sip/index.ts';
import { TransactionLayer } from '../../src/sip/transaction/layer.ts';

const D = 'parley.test';
const PASSWORD = 'secret';
const account = (u: string) => ({ address: `${u}@${D}`, ha1: { MD5: computeHa1('MD5', u, D, PASSWORD), 'SHA-256': computeHa1('SHA-256', u, D, PASSWORD) } });
const users = new Map(['alice', 'bob'].map((u) => [`${u}@${D}`, { address: `${u}@${D}`, displayName: null }]));

function setup() {
  const drain = new RequestDrain(5);
  const ctx = {
    domain: D, product: 'Parley/test', allow: ['REGISTER', 'MESSAGE'], logger: pino({ level: 'silent' }), now: Date.now,
    // a kept account: answered at once, as cachedUserLookup answers a user it holds
    auth: new Authenticator({ realm: D, nonces: new NonceIssuer({ secret: Buffer.alloc(32, 3) }), algorithms: ['MD5'], findAccount: (u) => (u === 'alice' || u === 'bob' ? account(u) : undefined) }),
    location: new MemoryLocationService(), registrations: createRegistrationEvents(), registrar: DEFAULT_REGISTRAR_SETTINGS,
    isOwnHost: (host: string) => host === D || host === '127.0.0.1',
    resolveFlow: (ref: { remote: { port: number } }) => (ref.remote.port === 40001 ? bob : alice),
    user: (address: string) => users.get(address),
    messaging: { maxBody: 65_536, deviceTimeout: 30 },
    drain,
  } as unknown as SipContext;
  const layer = new TransactionLayer({ t1: 500, t2: 4000, t4: 5000 }, { onRequest: createDispatcher(ctx, [registerHandler, messageHandler]) });
  ctx.transactions = layer;
  const flowOf = (port: number): Flow & { sent: string[] } => {
    const sent: string[] = [];
    return {
      id: `udp:127.0.0.1:${port}`, protocol: 'udp', reliable: false, closed: false, sent,
      local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port },
      send: (data: Buffer) => (sent.push(data.toString('utf8')), true),
    };
  };
  const alice = flowOf(40000);
  const bob = flowOf(40001);
  /** `text` received over `flow`; what the flow got before receive returned */
  const receive = (text: string, flow: Flow & { sent: string[] }): string | undefined => {
    const before = flow.sent.length;
    layer.receive(parseMessage(Buffer.from(text)), flow);
    return flow.sent.length > before ? flow.sent.at(-1) : undefined;
  };
  return { layer, drain, alice, bob, receive };
}

let branches = 0;
function request(method: 'REGISTER' | 'MESSAGE', user: string, port: number, cseq: number, credentials?: string): string {
  return [
    `${method} sip:${method === 'REGISTER' ? D : `bob@${D}`} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-at-once-${++branches};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@${D}>;tag=${user}-${cseq}`,
    `To: <sip:${method === 'REGISTER' ? user : 'bob'}@${D}>`,
    `Call-ID: ${method}-${user}`,
    `CSeq: ${cseq} ${method}`,
    ...(method === 'REGISTER' ? [`Contact: <sip:${user}@127.0.0.1:${port}>`, 'Expires: 600'] : ['Content-Type: text/plain']),
    ...(credentials === undefined ? [] : [`${method === 'REGISTER' ? 'Authorization' : 'Proxy-Authorization'}: ${credentials}`]),
    '',
    method === 'MESSAGE' ? 'hello' : '',
  ].join('\r\n');
}

function answer(text: string | undefined, user: string, method: string, uri: string): string {
  assert.ok(text !== undefined, 'an answer before receive returned');
  const challenge = parseMessage(Buffer.from(text)) as SipResponse;
  const picked = pickChallenge(challenge.headers.getAll(challenge.status === 401 ? 'www-authenticate' : 'proxy-authenticate').map((v) => parseAuthField(v)));
  assert.ok(picked);
  return formatAuthField(answerChallenge(picked, { username: user, password: PASSWORD, method, uri, nc: 1 }));
}

describe('requests whose lookups answer at once are handled at once', () => {
  it('answers a REGISTER with 401, then with 200, before receive returns, tracking no handling', () => {
    const t = setup();
    const challenge = t.receive(request('REGISTER', 'bob', 40001, 1), t.bob);
    assert.match(challenge ?? '', /^SIP\/2\.0 401 /);
    assert.equal(t.drain.inFlight, 0);
    const ok = t.receive(request('REGISTER', 'bob', 40001, 2, answer(challenge, 'bob', 'REGISTER', `sip:${D}`)), t.bob);
    assert.match(ok ?? '', /^SIP\/2\.0 200 /);
    assert.equal(t.drain.inFlight, 0);
    t.layer.close();
  });

  it('challenges a MESSAGE and forwards the authenticated one before receive returns; only the relay waits, for the answer', async () => {
    const t = setup();
    const challenge = t.receive(request('REGISTER', 'bob', 40001, 1), t.bob);
    t.receive(request('REGISTER', 'bob', 40001, 2, answer(challenge, 'bob', 'REGISTER', `sip:${D}`)), t.bob);

    const proxyChallenge = t.receive(request('MESSAGE', 'alice', 40000, 1), t.alice);
    assert.match(proxyChallenge ?? '', /^SIP\/2\.0 407 /);
    assert.equal(t.drain.inFlight, 0, 'a challenge is no handling to wait for');

    const before = t.bob.sent.length;
    assert.equal(t.receive(request('MESSAGE', 'alice', 40000, 2, answer(proxyChallenge, 'alice', 'MESSAGE', `sip:bob@${D}`)), t.alice), undefined, 'alice gets nothing yet');
    const forwarded = t.bob.sent[before];
    assert.match(forwarded ?? '', /^MESSAGE sip:bob@127\.0\.0\.1:40001 SIP\/2\.0/, 'forwarded before receive returned');
    assert.equal(t.drain.inFlight, 1, 'the relay waits for bob');

    const lines = (forwarded ?? '').split('\r\n');
    const header = (name: string) => lines.filter((l) => l.toLowerCase().startsWith(`${name}:`));
    t.receive([`SIP/2.0 200 OK`, ...header('via'), ...header('from'), `${header('to')[0]};tag=b`, ...header('call-id'), ...header('cseq'), 'Content-Length: 0', '', ''].join('\r\n'), t.bob);
    await new Promise((r) => setImmediate(r));
    assert.match(t.alice.sent.at(-1) ?? '', /^SIP\/2\.0 200 /, "bob's 200 relayed to alice");
    assert.equal(t.drain.inFlight, 0);
    t.layer.close();
  });
});
