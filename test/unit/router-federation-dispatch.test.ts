// What a partner organisation's connection may ask (issue 15), through the dispatcher in-process:
// REGISTER and PUBLISH are refused 403 with a Warning (a partner's users register and publish at
// their own server), OPTIONS is answered by Parley without credentials, and nothing on a partner
// flow is ever digest-challenged.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { registerHandler } from '../../src/registrar/handler.ts';
import type { MethodHandler } from '../../src/router/context.ts';
import { createDispatcher } from '../../src/router/dispatch.ts';
import { authenticateSender } from '../../src/router/identity.ts';
import { messageHandler } from '../../src/router/message.ts';
import { optionsHandler } from '../../src/router/options.ts';
import { DAVE, flowOf, logger, request, setup } from './router-federation-harness.ts';

const published: string[] = [];
const publishHandler: MethodHandler = { method: 'PUBLISH', handle: (_ctx, incoming) => void published.push(incoming.request.method) };

function dispatcher() {
  const t = setup(() => 'never');
  return { t, dispatch: createDispatcher(t.ctx, [registerHandler, messageHandler, optionsHandler, publishHandler]) };
}

const orgB = () => flowOf('tls#from-org-b', { names: ['sip.org-b.test'] });

function partnerRequest(method: string, uri = 'sip:parley.test', extra: string[] = []) {
  return request(`${method} ${uri} SIP/2.0`, [
    'Via: SIP/2.0/TLS sip.org-b.test:5061;branch=z9hG4bKorgb9',
    'Max-Forwards: 70',
    `From: <sip:${DAVE}>;tag=d`,
    `To: <sip:${DAVE}>`,
    'Call-ID: d-1',
    `CSeq: 1 ${method}`,
    ...extra,
  ]);
}

describe("a partner organisation's connection", () => {
  it('may not REGISTER nor PUBLISH: 403 with a Warning, before any handler or challenge', () => {
    const { t, dispatch } = dispatcher();
    for (const method of ['REGISTER', 'PUBLISH']) {
      const flow = orgB();
      dispatch(partnerRequest(method, 'sip:parley.test', ['Contact: <sip:dave@10.0.0.9>', 'Event: presence']), flow, null);
      const res = flow.sent.at(-1);
      assert.equal(res?.status, 403, method);
      assert.match(res?.headers.get('warning') ?? '', new RegExp(`a partner organisation may not ${method} here: over the federation link parley\\.test takes MESSAGE, SUBSCRIBE, NOTIFY, OPTIONS`));
    }
    assert.equal(t.authCalls, 0);
    assert.deepEqual(published, []);
  });

  it("gets OPTIONS answered by Parley, without credentials, with what a partner may send", () => {
    const { t, dispatch } = dispatcher();
    const flow = orgB();
    dispatch(partnerRequest('OPTIONS', 'sip:alice@parley.test'), flow, null);
    const res = flow.sent.at(-1);
    assert.equal(res?.status, 200);
    assert.equal(res?.headers.getAll('allow').join(', '), 'MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY');
    assert.match(res?.headers.get('accept') ?? '', /text\/plain/);
    assert.equal(t.authCalls, 0);
  });

  it('a local client is unchanged: REGISTER reaches the registrar (challenged), OPTIONS lists every method', async () => {
    const { dispatch } = dispatcher();
    const flow = flowOf('tcp#alice');
    dispatch(request('REGISTER sip:parley.test SIP/2.0', ['Via: SIP/2.0/TCP 127.0.0.2:40000;branch=z9hG4bKr1', 'Max-Forwards: 70', 'From: <sip:alice@parley.test>;tag=a', 'To: <sip:alice@parley.test>', 'Call-ID: r-1', 'CSeq: 1 REGISTER', 'Contact: <sip:alice@127.0.0.2:40000>']), flow, null);
    await new Promise(setImmediate); // the authentication is asynchronous (the directory lookup)
    assert.equal(flow.sent.at(-1)?.status, 407, "the harness's authenticator challenges what carries no credentials");
    dispatch(request('OPTIONS sip:parley.test SIP/2.0', ['Via: SIP/2.0/TCP 127.0.0.2:40000;branch=z9hG4bKo1', 'Max-Forwards: 70', 'From: <sip:alice@parley.test>;tag=a', 'To: <sip:parley.test>', 'Call-ID: o-1', 'CSeq: 1 OPTIONS']), flow, null);
    assert.equal(flow.sent.at(-1)?.headers.getAll('allow').join(', '), 'REGISTER, MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY, PUBLISH');
  });

  it('is never challenged by the digest check of local senders: 403 instead', async () => {
    const { t } = dispatcher();
    const flow = orgB();
    const sender = await authenticateSender(t.ctx, { request: partnerRequest('SUBSCRIBE', 'sip:alice@parley.test', ['Event: presence']), flow, tx: null, log: logger });
    assert.equal(sender, undefined);
    assert.equal(flow.sent.at(-1)?.status, 403);
    assert.match(flow.sent.at(-1)?.headers.get('warning') ?? '', /a partner organisation may not send SUBSCRIBE as a user of parley\.test/);
    assert.equal(t.authCalls, 0);
  });
});
