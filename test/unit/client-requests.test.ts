// Building requests and responses, and matching responses to requests (src/client/requests.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRequest, buildResponse, contactUriFor, nameAddr, reissue, transactionKey, viaFor } from '../../src/client/requests.ts';
import type { LocalEndpoint } from '../../src/client/requests.ts';
import { newBranch, newCallId, newTag, randomToken } from '../../src/client/ids.ts';
import { createRequest, createResponseMessage, Headers } from '../../src/sip/message.ts';
import { parseMessage, parseVia, serialize } from '../../src/sip/index.ts';

const tcp: LocalEndpoint = { viaTransport: 'TCP', contactTransport: 'tcp', localHost: '192.0.2.7', localPort: 50123 };
const ws: LocalEndpoint = { viaTransport: 'WS', contactTransport: 'ws', localHost: 'k3jd93hslq0x.invalid', localPort: null };

function message(overrides: Partial<Parameters<typeof buildRequest>[0]> = {}) {
  return buildRequest(
    {
      method: 'MESSAGE',
      uri: 'sip:bob@parley.local',
      from: nameAddr('sip:alice@parley.local', 'Alice Liddell', { tag: 'abc123' }),
      to: nameAddr('sip:bob@parley.local'),
      callId: 'call-1',
      cseq: 7,
      body: Buffer.from('hello'),
      contentType: 'text/plain;charset=utf-8',
      userAgent: 'Parley-Test',
      ...overrides,
    },
    tcp,
  );
}

describe('client ids', () => {
  it('draws tokens from [A-Za-z0-9] with the requested length', () => {
    assert.match(randomToken(40), /^[A-Za-z0-9]{40}$/);
    assert.notEqual(newCallId(), newCallId());
    assert.match(newTag(), /^[A-Za-z0-9]{12}$/);
  });

  it('starts branches with the RFC 3261 magic cookie', () => {
    assert.match(newBranch(), /^z9hG4bK[A-Za-z0-9]{22}$/);
    assert.notEqual(newBranch(), newBranch());
  });
});

describe('buildRequest', () => {
  it('writes the mandatory header fields of RFC 3261 §8.1.1', () => {
    const req = message();
    assert.equal(req.method, 'MESSAGE');
    assert.equal(req.uri, 'sip:bob@parley.local');
    assert.equal(req.headers.get('max-forwards'), '70');
    assert.equal(req.headers.get('call-id'), 'call-1');
    assert.equal(req.headers.get('cseq'), '7 MESSAGE');
    assert.match(req.headers.get('from') ?? '', /^"Alice Liddell" <sip:alice@parley\.local>;tag=abc123$/);
    assert.equal(req.headers.get('to'), '<sip:bob@parley.local>');
    assert.equal(req.headers.get('content-type'), 'text/plain;charset=utf-8');
    assert.equal(req.headers.get('user-agent'), 'Parley-Test');
    assert.equal(req.headers.has('contact'), false);
  });

  it('puts a TCP Via with a fresh branch and an empty rport (RFC 3581)', () => {
    const via = parseVia(message().headers.get('via') ?? '');
    assert.equal(via.transport, 'TCP');
    assert.equal(via.host, '192.0.2.7');
    assert.equal(via.port, 50123);
    assert.match(via.params.get('branch') ?? '', /^z9hG4bK/);
    assert.equal(via.params.get('rport'), null);
    assert.equal(via.params.has('rport'), true);
  });

  it('uses SIP/2.0/WS and a .invalid host over WebSocket (RFC 7118 §5.2)', () => {
    const via = parseVia(viaFor(ws, 'z9hG4bKabc'));
    assert.equal(via.transport, 'WS');
    assert.equal(via.host, 'k3jd93hslq0x.invalid');
    assert.equal(via.port, null);
    assert.equal(contactUriFor('alice', ws), 'sip:alice@k3jd93hslq0x.invalid;transport=ws');
    assert.equal(contactUriFor('alice', tcp), 'sip:alice@192.0.2.7:50123;transport=tcp');
  });

  it('brackets an IPv6 host', () => {
    const v6: LocalEndpoint = { ...tcp, localHost: '::1' };
    assert.match(viaFor(v6), /^SIP\/2\.0\/TCP \[::1\]:50123;/);
    assert.equal(contactUriFor('alice', v6), 'sip:alice@[::1]:50123;transport=tcp');
  });

  it('lets extra headers replace the defaults', () => {
    const req = message({ headers: { 'Max-Forwards': '5', Subject: 'hi' } });
    assert.equal(req.headers.get('max-forwards'), '5');
    assert.equal(req.headers.count('max-forwards'), 1);
    assert.equal(req.headers.get('subject'), 'hi');
  });

  it('round-trips through the serializer and parser', () => {
    const parsed = parseMessage(serialize(message()));
    assert.equal(parsed.kind, 'request');
    assert.equal(parsed.body.toString(), 'hello');
    assert.equal(parsed.headers.get('content-length'), '5');
  });

  it('reissue keeps Call-ID, tags and body but takes a new branch and CSeq', () => {
    const first = message();
    const second = reissue(first, 8, tcp);
    assert.equal(second.headers.get('call-id'), 'call-1');
    assert.equal(second.headers.get('from'), first.headers.get('from'));
    assert.equal(second.headers.get('cseq'), '8 MESSAGE');
    assert.equal(second.headers.count('via'), 1);
    assert.notEqual(transactionKey(second), transactionKey(first));
  });
});

describe('transactionKey', () => {
  it('matches a response to its request by top Via branch and CSeq method', () => {
    const req = message();
    const res = buildResponse(req, 200);
    assert.ok(transactionKey(req) !== null);
    assert.equal(transactionKey(res), transactionKey(req));
  });

  it('tells apart a response to another method with the same branch', () => {
    const req = message();
    const res = buildResponse(req, 200);
    res.headers.set('cseq', '7 OPTIONS');
    assert.notEqual(transactionKey(res), transactionKey(req));
  });

  it('gives null without a magic-cookie branch', () => {
    const headers = new Headers([
      { name: 'via', value: 'SIP/2.0/TCP host;branch=1234' },
      { name: 'cseq', value: '1 MESSAGE' },
    ]);
    assert.equal(transactionKey(createResponseMessage(200, 'OK', headers)), null);
    assert.equal(transactionKey(createResponseMessage(200, 'OK', new Headers())), null);
  });
});

describe('buildResponse (RFC 3261 §8.2.6)', () => {
  const incoming = () =>
    createRequest(
      'MESSAGE',
      'sip:alice@192.0.2.7:50123;transport=tcp',
      new Headers([
        { name: 'via', value: 'SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKproxy' },
        { name: 'via', value: 'SIP/2.0/TCP 10.0.0.9:40000;branch=z9hG4bKorig;rport=40000' },
        { name: 'from', value: '<sip:bob@parley.local>;tag=bobtag' },
        { name: 'to', value: '<sip:alice@parley.local>' },
        { name: 'call-id', value: 'xyz' },
        { name: 'cseq', value: '3 MESSAGE' },
        { name: 'content-type', value: 'text/plain' },
      ]),
      Buffer.from('hi'),
    );

  it('copies every Via in order, From, Call-ID and CSeq, and tags To', () => {
    const res = buildResponse(incoming(), 200, undefined, {}, 'mytag');
    assert.equal(res.status, 200);
    assert.equal(res.reason, 'OK');
    assert.deepEqual(res.headers.getAll('via'), ['SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKproxy', 'SIP/2.0/TCP 10.0.0.9:40000;branch=z9hG4bKorig;rport=40000']);
    assert.equal(res.headers.get('from'), '<sip:bob@parley.local>;tag=bobtag');
    assert.equal(res.headers.get('to'), '<sip:alice@parley.local>;tag=mytag');
    assert.equal(res.headers.get('call-id'), 'xyz');
    assert.equal(res.headers.get('cseq'), '3 MESSAGE');
    assert.equal(res.body.length, 0);
    assert.equal(res.headers.has('content-type'), false);
  });

  it('keeps an existing To tag', () => {
    const req = incoming();
    req.headers.set('to', '<sip:alice@parley.local>;tag=already');
    assert.equal(buildResponse(req, 200).headers.get('to'), '<sip:alice@parley.local>;tag=already');
  });

  it('does not take a URI parameter named tag for a header tag', () => {
    const req = incoming();
    req.headers.set('to', '<sip:alice@parley.local;tag=uriparam>');
    assert.match(buildResponse(req, 200, undefined, {}, 't1').headers.get('to') ?? '', /;tag=t1$/);
  });

  it('adds extra headers and default reason phrases', () => {
    const res = buildResponse(incoming(), 405, undefined, { Allow: 'MESSAGE, OPTIONS' });
    assert.equal(res.reason, 'Method Not Allowed');
    assert.equal(res.headers.get('allow'), 'MESSAGE, OPTIONS');
    assert.equal(buildResponse(incoming(), 488, 'Not Here').reason, 'Not Here');
  });
});
