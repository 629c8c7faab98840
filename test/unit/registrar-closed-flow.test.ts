// A REGISTER whose connection closes while it is being handled (a phone losing its network right
// after sending it): the connection's close drops the flow's bindings before the REGISTER's are
// stored, so the registrar drops them again once stored. Otherwise they would outlive the
// connection until they expire, and every MESSAGE would be tried on a connection that is gone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createRegistrationEvents, DEFAULT_REGISTRAR_SETTINGS, MemoryLocationService, registerHandler } from '../../src/registrar/index.ts';
import type { Incoming, SipContext } from '../../src/router/context.ts';
import { parseMessage } from '../../src/sip/index.ts';
import type { Flow, SipRequest } from '../../src/sip/index.ts';

const D = 'parley.test';
const NOW = 1_700_000_000_000;

function setup(closeDuringAuthentication: boolean) {
  const location = new MemoryLocationService();
  const changed: string[] = [];
  const registrations = createRegistrationEvents();
  registrations.on('changed', (aor) => changed.push(aor));
  const sent: string[] = [];
  const flow: Flow = {
    id: 'tcp#1', protocol: 'tcp', reliable: true, closed: false,
    local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 },
    send(data: Buffer) {
      sent.push(data.toString());
      return true;
    },
  };
  const ctx = {
    domain: D, product: 'Parley/test', allow: ['REGISTER'], logger: pino({ level: 'silent' }), now: () => NOW,
    location, registrations, registrar: DEFAULT_REGISTRAR_SETTINGS,
    // digest is tested elsewhere; here the connection closes while the account is looked up, and
    // its close drops the flow's bindings at once, as the server's sink does
    auth: {
      async authenticate() {
        if (closeDuringAuthentication) {
          (flow as { closed: boolean }).closed = true;
          await location.removeFlow(flow.id);
        }
        return { ok: true, address: `alice@${D}` };
      },
    },
  } as unknown as SipContext;
  const request = parseMessage(Buffer.from([
    `REGISTER sip:${D} SIP/2.0`, 'Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK-1', 'Max-Forwards: 70',
    `From: <sip:alice@${D}>;tag=a`, `To: <sip:alice@${D}>`, 'Call-ID: reg-1', 'CSeq: 1 REGISTER',
    'Contact: <sip:alice@127.0.0.1:40000;transport=tcp>', 'Expires: 600', 'Content-Length: 0', '', '',
  ].join('\r\n'))) as SipRequest;
  const incoming: Incoming = { request, flow, tx: null, log: pino({ level: 'silent' }) };
  return { ctx, incoming, location, changed, sent };
}

describe('REGISTER over a connection that closes meanwhile', () => {
  it('leaves no binding over the closed connection', async () => {
    const t = setup(true);
    await registerHandler.handle(t.ctx, t.incoming);
    assert.deepEqual(await t.location.lookup(`alice@${D}`, NOW), []);
  });

  it('keeps the binding when the connection stays open', async () => {
    const t = setup(false);
    await registerHandler.handle(t.ctx, t.incoming);
    assert.equal((await t.location.lookup(`alice@${D}`, NOW)).length, 1);
    assert.deepEqual(t.changed, [`alice@${D}`]);
    assert.match(t.sent.at(-1) ?? '', /^SIP\/2\.0 200 /);
  });
});
