// The MESSAGE handler in-process (no sockets): what a relayed request and its relayed answer say
// about who sent them. A fake context stands in for the registrar, the directory and the
// transaction layer; the sender is whoever the digest says, here always alice.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { Binding } from '../../src/registrar/location.ts';
import type { Incoming, SipContext } from '../../src/router/context.ts';
import { messageHandler } from '../../src/router/message.ts';
import { createResponseMessage, parseMessage } from '../../src/sip/index.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';

const logger = pino({ level: 'silent' });
const D = 'parley.test';
const FLOW_REF = { id: 'tcp#bob', protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40001 } };
const NAMES = new Map([[`alice@${D}`, 'Alice Liddell'], [`bob@${D}`, 'Bob Builder']]);

function setup(answer: (forwarded: SipRequest) => SipResponse) {
  const forwarded: SipRequest[] = [];
  const answers: SipResponse[] = [];
  const flow = (to: SipResponse[]): Flow => ({
    ...FLOW_REF, protocol: 'tcp', reliable: true, closed: false,
    send(data: Buffer) {
      to.push(parseMessage(data) as SipResponse);
      return true;
    },
  });
  const ctx = {
    domain: D, product: 'Parley/test', logger, now: Date.now, isOwnHost: (host: string) => host === '127.0.0.1',
    messaging: { maxBody: 65536, deviceTimeout: 10 },
    auth: { authenticate: () => ({ ok: true, address: `alice@${D}` }) },
    userExists: async (a: string) => NAMES.has(a),
    user: async (a: string) => (NAMES.has(a) ? { displayName: NAMES.get(a) ?? null } : undefined),
    location: { lookup: async (aor: string) => [{ aor, contact: `sip:bob@127.0.0.1:40001;transport=tcp`, flow: FLOW_REF } as unknown as Binding] },
    resolveFlow: () => flow([]),
    transactions: {
      sendRequest(request: SipRequest, _flow: Flow, user: ClientTransactionUser) {
        forwarded.push(request);
        queueMicrotask(() => user.onFinal(answer(request)));
        return undefined as never;
      },
    },
  } as unknown as SipContext;

  async function send(...extra: string[]): Promise<SipResponse> {
    const text = [
      `MESSAGE sip:bob@${D} SIP/2.0`,
      'Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKalice1',
      'Max-Forwards: 70',
      `From: "The CEO" <sip:alice@${D}>;tag=a`,
      `To: <sip:bob@${D}>`,
      'Call-ID: m1',
      'CSeq: 1 MESSAGE',
      ...extra,
      'Content-Type: text/plain',
      'Content-Length: 2',
      '',
      'hi',
    ].join('\r\n');
    const incoming: Incoming = { request: parseMessage(Buffer.from(text)) as SipRequest, flow: flow(answers), tx: null, log: logger };
    await messageHandler.handle(ctx, incoming);
    return answers.at(-1)!;
  }
  return { send, forwarded };
}

/** bob's device answers 200, adding identity headers of its own choosing. */
function forgingAnswer(request: SipRequest): SipResponse {
  const response = createResponseMessage(200, 'OK');
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) for (const v of request.headers.getAll(name)) response.headers.append(name, v);
  response.headers.append('P-Asserted-Identity', `"The CEO" <sip:ceo@${D}>`);
  response.headers.append('Identity', 'forged.answer.sig');
  return response;
}

describe('MESSAGE relay and asserted identity (RFC 3325)', () => {
  it("forwards Parley's assertion of the sender instead of the client's identity headers", async () => {
    const t = setup(forgingAnswer);
    const res = await t.send(`P-Asserted-Identity: "The CEO" <sip:ceo@${D}>`, `P-Preferred-Identity: <sip:alice@${D}>`, 'Identity: forged.request.sig', 'Identity-Info: <https://x.example/c.cer>');
    assert.equal(res.status, 200);
    const [out] = t.forwarded;
    assert.deepEqual(out?.headers.getAll('p-asserted-identity'), [`"Alice Liddell" <sip:alice@${D}>`]);
    for (const name of ['p-preferred-identity', 'identity', 'identity-info']) assert.equal(out?.headers.has(name), false, name);
    assert.equal(out?.headers.get('from'), `"The CEO" <sip:alice@${D}>;tag=a`, 'the From display name is the sender\'s');
  });

  it("relays the recipient's answer with Parley's assertion of the recipient, not what their device wrote", async () => {
    const t = setup(forgingAnswer);
    const res = await t.send();
    assert.equal(res.status, 200);
    assert.deepEqual(res.headers.getAll('p-asserted-identity'), [`"Bob Builder" <sip:bob@${D}>`]);
    assert.equal(res.headers.has('identity'), false);
  });

  it('forwards nothing when a P-Preferred-Identity names someone else: 403 with a Warning', async () => {
    const t = setup(forgingAnswer);
    const res = await t.send(`P-Preferred-Identity: <sip:ceo@${D}>`);
    assert.equal(res.status, 403);
    assert.match(res.headers.get('warning') ?? '', /P-Preferred-Identity ceo@parley\.test is not an identity of alice@parley\.test/);
    assert.equal(t.forwarded.length, 0);
  });
});
