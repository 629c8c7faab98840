// REGISTER over UDP answered without Timer J (issue 20): the real transaction layer, dispatcher,
// registrar and digest authenticator in-process, a fake UDP flow in place of the socket. A
// retransmission — the same bytes, same branch, same nonce count — that arrives after the 200 is
// handled anew and must get the same answer and leave the same bindings (RFC 3261 §8.2.7, §17.2.2).
// The transaction layer remembers for 64·T1 only that the request was answered; T1 is 10 ms here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Authenticator } from '../../src/auth/authenticator.ts';
import { createRegistrationEvents, DEFAULT_REGISTRAR_SETTINGS, MemoryLocationService, registerHandler } from '../../src/registrar/index.ts';
import type { SipContext } from '../../src/router/context.ts';
import { createDispatcher } from '../../src/router/dispatch.ts';
import { answerChallenge, computeHa1, NonceIssuer, pickChallenge } from '../../src/sip/digest.ts';
import { formatAuthField, parseAuthField, parseMessage } from '../../src/sip/index.ts';
import type { Flow, SipResponse } from '../../src/sip/index.ts';
import { TransactionLayer } from '../../src/sip/transaction/layer.ts';

const D = 'parley.test';
const FAST = { t1: 10, t2: 40, t4: 50 };
const PASSWORD = 'secret';

function setup() {
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const nonces = new NonceIssuer({ secret: Buffer.alloc(32, 3), now });
  const auth = new Authenticator({
    realm: D,
    nonces,
    algorithms: ['SHA-256', 'MD5'],
    findAccount: async (username) =>
      username === 'alice' ? { address: `alice@${D}`, ha1: { MD5: computeHa1('MD5', 'alice', D, PASSWORD), 'SHA-256': computeHa1('SHA-256', 'alice', D, PASSWORD) } } : undefined,
  });
  const location = new MemoryLocationService();
  const changed: string[] = [];
  const registrations = createRegistrationEvents();
  registrations.on('changed', (aor) => changed.push(aor));
  const ctx = {
    domain: D, product: 'Parley/test', allow: ['REGISTER'], logger: pino({ level: 'silent' }), now,
    auth, location, registrations, registrar: DEFAULT_REGISTRAR_SETTINGS,
  } as unknown as SipContext;
  const dispatch = createDispatcher(ctx, [registerHandler]);
  const layer = new TransactionLayer(FAST, { onRequest: dispatch });
  const answers: string[] = [];
  const flow: Flow = {
    id: 'udp:127.0.0.1:40000', protocol: 'udp', reliable: false, closed: false,
    local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 },
    send(data: Buffer) {
      answers.push(data.toString());
      return true;
    },
  };

  /** Sends `text` as a datagram and returns the answer it got (after the handler's awaits). */
  async function send(text: string): Promise<SipResponse | undefined> {
    const before = answers.length;
    layer.receive(parseMessage(Buffer.from(text)), flow);
    await new Promise((r) => setImmediate(r));
    return answers.length > before ? (parseMessage(Buffer.from(answers.at(-1)!)) as SipResponse) : undefined;
  }

  let branch = 0;
  /** a REGISTER's text; `authorization` from `credentials` */
  function register(opts: { cseq: number; contact?: string; expires?: number; authorization?: string; branch?: string }): string {
    return [
      `REGISTER sip:${D} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:40000;branch=${opts.branch ?? `z9hG4bK-r${++branch}`}`,
      'Max-Forwards: 70',
      `From: <sip:alice@${D}>;tag=a`,
      `To: <sip:alice@${D}>`,
      'Call-ID: reg-1',
      `CSeq: ${opts.cseq} REGISTER`,
      `Contact: ${opts.contact ?? '<sip:alice@127.0.0.1:40000>'}`,
      `Expires: ${opts.expires ?? 600}`,
      ...(opts.authorization ? [`Authorization: ${opts.authorization}`] : []),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  }

  /** the Authorization value answering `challenge` for a REGISTER, with nonce count `nc` */
  function credentials(challenge: SipResponse, nc = 1): string {
    const picked = pickChallenge(challenge.headers.getAll('www-authenticate').map((v) => parseAuthField(v)));
    assert.ok(picked, 'a challenge to answer');
    return formatAuthField(answerChallenge(picked, { username: 'alice', password: PASSWORD, method: 'REGISTER', uri: `sip:${D}`, nc }));
  }

  /** REGISTER, 401, REGISTER with credentials: the authenticated request's text and its answer */
  async function registerWithDigest(opts: { cseq: number; contact?: string; expires?: number }) {
    const challenge = await send(register({ ...opts, cseq: opts.cseq - 1 }));
    assert.equal(challenge?.status, 401);
    const text = register({ ...opts, authorization: credentials(challenge) });
    return { text, answer: await send(text), challenge };
  }

  return {
    layer, location, changed, send, register, credentials, registerWithDigest,
    now,
    advance: (ms: number) => (clock += ms),
  };
}

const contacts = (r: SipResponse | undefined) => r?.headers.getAll('contact') ?? [];

describe('REGISTER answered without Timer J (RFC 3261 §17.2.2, §10.3)', () => {
  it('keeps no transaction after the 200, and answers a retransmission the same, bindings unchanged', async () => {
    const t = setup();
    const { text, answer } = await t.registerWithDigest({ cseq: 2 });
    assert.equal(answer?.status, 200);
    assert.deepEqual(contacts(answer), ['<sip:alice@127.0.0.1:40000>;expires=600']);
    assert.deepEqual(t.layer.size, { server: 0, client: 0 }, 'no transaction kept for Timer J');
    assert.equal(t.layer.answeredSize, 1, 'only the 200 is remembered, not the 401');
    const [binding] = await t.location.lookup(`alice@${D}`, t.now());
    assert.equal(t.changed.length, 1);

    t.advance(2000); // the registrar's clock: Timer E has doubled a few times
    const again = await t.send(text);
    assert.equal(again?.status, 200, 'the retransmission, same nonce count, is not refused as a replay');
    assert.deepEqual(contacts(again), ['<sip:alice@127.0.0.1:40000>;expires=598'], 'the same binding, 2 s older');
    assert.deepEqual(await t.location.lookup(`alice@${D}`, t.now()), [binding], 'the binding is not rewritten');
    assert.equal(t.changed.length, 1, 'nothing changed, nothing told');
    assert.deepEqual(t.layer.size, { server: 0, client: 0 });
    t.layer.close();
  });

  it('refuses a replay of the credentials in another transaction: 401 stale, nothing bound', async () => {
    const t = setup();
    const { text } = await t.registerWithDigest({ cseq: 2 });
    const forged = text.replace('<sip:alice@127.0.0.1:40000>', '<sip:mallory@192.0.2.66:5060>').replace(/branch=[^\r]+/, 'branch=z9hG4bK-forged');
    const answer = await t.send(forged);
    assert.equal(answer?.status, 401);
    assert.match(answer?.headers.get('www-authenticate') ?? '', /stale=true/);
    assert.deepEqual((await t.location.lookup(`alice@${D}`, t.now())).map((b) => b.contact), ['sip:alice@127.0.0.1:40000']);
    t.layer.close();
  });

  it('changes nothing for a copy of the retransmission with another Contact: the answer lists the bindings as they are', async () => {
    const t = setup();
    const { text } = await t.registerWithDigest({ cseq: 2 });
    const forged = text.replace('<sip:alice@127.0.0.1:40000>', '<sip:mallory@192.0.2.66:5060>');
    const answer = await t.send(forged);
    assert.equal(answer?.status, 200);
    assert.deepEqual(contacts(answer), ['<sip:alice@127.0.0.1:40000>;expires=600']);
    assert.deepEqual((await t.location.lookup(`alice@${D}`, t.now())).map((b) => b.contact), ['sip:alice@127.0.0.1:40000']);
    t.layer.close();
  });

  it('refuses the same request once a client could no longer retransmit it (after 64·T1)', async () => {
    const t = setup();
    const { text } = await t.registerWithDigest({ cseq: 2 });
    // remembered for one to two windows of 64·T1 (640 ms here)
    await new Promise((r) => setTimeout(r, 2 * 64 * FAST.t1 + 100));
    const answer = await t.send(text);
    assert.equal(answer?.status, 401, 'a replay, not a retransmission');
    t.layer.close();
  });

  it('answers the retransmission of a REGISTER a later one replaced with the bindings as they are now', async () => {
    const t = setup();
    const first = await t.registerWithDigest({ cseq: 2 });
    const refresh = await t.send(t.register({ cseq: 3, expires: 900, authorization: t.credentials(first.challenge!, 2) }));
    assert.equal(refresh?.status, 200);
    const late = await t.send(first.text);
    assert.equal(late?.status, 200, 'the answer a kept transaction would have given');
    assert.deepEqual(contacts(late), ['<sip:alice@127.0.0.1:40000>;expires=900']);
    assert.equal((await t.location.lookup(`alice@${D}`, t.now()))[0]?.cseq, 3, 'the later REGISTER stands');
    t.layer.close();
  });

  it('still refuses a new request (new nonce count) that reuses a CSeq: 400 (§10.3 step 7)', async () => {
    const t = setup();
    const first = await t.registerWithDigest({ cseq: 2 });
    const reused = await t.send(t.register({ cseq: 2, authorization: t.credentials(first.challenge!, 2) }));
    assert.equal(reused?.status, 400);
  });

  it('keeps the transaction of a removal (nothing left to recognise it by), and answers its retransmission from it', async () => {
    const t = setup();
    const first = await t.registerWithDigest({ cseq: 2 });
    const removal = t.register({ cseq: 3, expires: 0, branch: 'z9hG4bK-remove', authorization: t.credentials(first.challenge!, 2) });
    const answer = await t.send(removal);
    assert.equal(answer?.status, 200);
    assert.deepEqual(contacts(answer), []);
    assert.equal(t.layer.size.server, 1, 'kept for Timer J');
    const again = await t.send(removal);
    assert.equal(again?.status, 200, 'the kept answer, not a 401 for the used nonce count');
    assert.deepEqual(await t.location.lookup(`alice@${D}`, t.now()), []);
    t.layer.close();
  });

  it('keeps the transaction of a failure the nonce count made unrepeatable (423)', async () => {
    const t = setup();
    const { answer } = await t.registerWithDigest({ cseq: 2, expires: 10 });
    assert.equal(answer?.status, 423);
    assert.equal(t.layer.size.server, 1);
    t.layer.close();
  });
});
