// NOTIFY routing (RFC 3261 §12.2.1.1): the Request-URI and Route of a NOTIFY from the dialog's
// remote target and route set (the SUBSCRIBE's Record-Route), how the notifier names itself
// towards a partner, and a local subscription's NOTIFY unchanged to the byte. Pure.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildNotify, fillNotify, notifyKey, notifyTemplate, requestTarget } from '../../src/events/notifier.ts';
import { clientTransactionKey } from '../../src/sip/transaction/keys.ts';
import { Subscription } from '../../src/events/index.ts';
import type { Flow } from '../../src/sip/index.ts';
import { parseMessage, serialize } from '../../src/sip/index.ts';

const FLOW = { id: 'tcp#1', protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 }, reliable: true, closed: false, send: () => true } as Flow;

function subscription(routeSet: string[], remoteTarget = 'sip:alice@127.0.0.1:40000;transport=tcp'): Subscription {
  return new Subscription({
    watcher: 'alice@parley.test', package: 'presence', resource: 'bob@parley.test', event: 'presence',
    flow: FLOW, expiresAt: 1_000_000 + 600_000,
    dialog: {
      callId: 'c1', localTag: 'srv', remoteTag: 'cli',
      localHeader: '<sip:bob@parley.test>;tag=srv', remoteHeader: '<sip:alice@parley.test>;tag=cli',
      remoteTarget, routeSet, remoteCSeq: 1,
    },
  });
}

const DOC = { contentType: 'text/plain', body: 'hello' };

describe('NOTIFY routing', () => {
  it('leaves a local subscription\'s NOTIFY as it was, byte for byte', () => {
    const request = buildNotify(subscription([]), FLOW, DOC, 1_000_000, 'Parley/test');
    const text = serialize(request).toString().replace(/branch=[^\r;]+/, 'branch=B');
    assert.equal(text, [
      'NOTIFY sip:alice@127.0.0.1:40000;transport=tcp SIP/2.0',
      'Via: SIP/2.0/TCP 127.0.0.1:5060;branch=B',
      'Max-Forwards: 70',
      'From: <sip:bob@parley.test>;tag=srv',
      'To: <sip:alice@parley.test>;tag=cli',
      'Call-ID: c1',
      'CSeq: 1 NOTIFY',
      'Contact: <sip:127.0.0.1:5060;transport=tcp>',
      'Event: presence',
      'Subscription-State: active;expires=600',
      'User-Agent: Parley/test',
      'Content-Type: text/plain',
      'Content-Length: 5',
      '',
      'hello',
    ].join('\r\n'));
  });

  it('a template filled in is the NOTIFY buildNotify makes, and its key is the one the response will find (§17.1.3)', () => {
    const sub = subscription(['<sip:edge.org-b.test;lr>']);
    const template = notifyTemplate(sub, FLOW, 'Parley/test');
    const text = fillNotify(template, 'z9hG4bK-fan1', 7, 'active;expires=60', { ...DOC, headers: [['Require', 'eventlist']] });
    const parsed = parseMessage(Buffer.from(text, 'utf8'));
    assert.equal(clientTransactionKey(parsed), notifyKey('z9hG4bK-fan1'));
    assert.equal(parsed.headers.get('cseq'), '7 NOTIFY');
    assert.equal(parsed.headers.get('require'), 'eventlist');
    assert.deepEqual(parsed.headers.getAll('route'), ['<sip:edge.org-b.test;lr>']);
    assert.equal(parsed.body.toString(), 'hello');
    // the same dialog, any NOTIFY: only branch, CSeq and Subscription-State differ
    const other = fillNotify(template, 'z9hG4bK-fan2', 8, 'active;expires=59', DOC);
    assert.equal(other.replace('fan2', 'fan1').replace('8 NOTIFY', '7 NOTIFY').replace('expires=59', 'expires=60'), text.replace('Require: eventlist\r\n', ''));
    assert.throws(() => notifyTemplate(subscription([], 'sip:alice@host\r\nX: y'), FLOW, 'Parley/test'), /cannot be sent/);
    const injected = subscription([]);
    injected.dialog.remoteHeader = '<sip:alice@parley.test>;tag=cli\r\nX: y';
    assert.throws(() => notifyTemplate(injected, FLOW, 'Parley/test'), /CR, LF or NUL/);
  });

  it('sends to the remote target along the route set (loose routers), naming itself as partners know it', () => {
    const routes = ['<sip:sip.org-b.test:5061;transport=tls;lr>', '<sip:edge.org-b.test;lr>'];
    const request = buildNotify(subscription(routes, 'sip:dave@192.0.2.7:5062;transport=tls'), FLOW, DOC, 1_000_000, 'Parley/test', { sentBy: 'sip.org-a.test:5061', protocol: 'tls' });
    assert.equal(request.uri, 'sip:dave@192.0.2.7:5062;transport=tls');
    assert.deepEqual(request.headers.getAll('route'), routes);
    assert.match(request.headers.get('via') ?? '', /^SIP\/2\.0\/TLS sip\.org-a\.test:5061;branch=z9hG4bK/);
    assert.equal(request.headers.get('contact'), '<sip:sip.org-a.test:5061;transport=tls>');
  });

  it('puts a strict router first in the Request-URI and the remote target last in the Route (RFC 3261 §12.2.1.1)', () => {
    assert.deepEqual(requestTarget('sip:dave@192.0.2.7', ['<sip:old.org-b.test;transport=tls;method=NOTIFY?x=y>', '<sip:next.org-b.test;lr>']), {
      uri: 'sip:old.org-b.test;transport=tls',
      routes: ['<sip:next.org-b.test;lr>', '<sip:dave@192.0.2.7>'],
    });
    assert.deepEqual(requestTarget('sip:dave@192.0.2.7', []), { uri: 'sip:dave@192.0.2.7', routes: [] });
    assert.deepEqual(requestTarget('sip:dave@192.0.2.7', ['<sip:a.test;lr>']), { uri: 'sip:dave@192.0.2.7', routes: ['<sip:a.test;lr>'] });
    assert.deepEqual(requestTarget('sip:dave@192.0.2.7', ['not a uri']), { uri: 'sip:dave@192.0.2.7', routes: ['not a uri'] }, 'what does not parse is left as it is');
  });
});
