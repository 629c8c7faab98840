import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Headers,
  SIP_PARSE_ERRORS,
  SipParseError,
  createRequest,
  createResponseMessage,
  parseMessage,
  serialize,
  serializeToString,
} from '../../src/sip/index.ts';

const E = SIP_PARSE_ERRORS;

function headers(fields: Array<[string, string]>): Headers {
  return new Headers(fields.map(([name, value]) => ({ name, value })));
}

function refuses(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SipParseError);
    assert.equal(err.code, E.CANNOT_SERIALIZE);
    assert.equal(err.status, 500);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('serialize', () => {
  it('writes a request: start line, one line per field with display names, Content-Length, body', () => {
    const h = headers([
      ['v', 'SIP/2.0/UDP h;branch=z9hG4bK1'],
      ['via', 'SIP/2.0/UDP p;branch=z9hG4bK2'],
      ['max-forwards', '70'],
      ['f', '<sip:a@b>;tag=1'],
      ['to', '<sip:c@d>'],
      ['i', 'abc'],
      ['cseq', '1 MESSAGE'],
      ['www-authenticate', 'Digest realm="r"'],
      ['x-custom-header', 'kept'],
      ['allow', 'MESSAGE'],
      ['allow', 'OPTIONS'],
      ['c', 'text/plain'],
    ]);
    const text = serializeToString(createRequest('MESSAGE', 'sip:c@d', h, Buffer.from('hi ☃')));
    assert.equal(
      text,
      [
        'MESSAGE sip:c@d SIP/2.0',
        'Via: SIP/2.0/UDP h;branch=z9hG4bK1',
        'Via: SIP/2.0/UDP p;branch=z9hG4bK2',
        'Max-Forwards: 70',
        'From: <sip:a@b>;tag=1',
        'To: <sip:c@d>',
        'Call-ID: abc',
        'CSeq: 1 MESSAGE',
        'WWW-Authenticate: Digest realm="r"',
        'X-Custom-Header: kept',
        'Allow: MESSAGE',
        'Allow: OPTIONS',
        'Content-Type: text/plain',
        'Content-Length: 6',
        '',
        'hi ☃',
      ].join('\r\n'),
    );
  });

  it('writes a response with a UTF-8 reason phrase', () => {
    const out = serialize(createResponseMessage(486, 'Besetzt – später', headers([['call-id', 'x']])));
    assert.equal(out.toString('utf8'), 'SIP/2.0 486 Besetzt – später\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n');
  });

  it('always writes the right Content-Length, replacing any given', () => {
    const h = headers([['content-length', '999'], ['call-id', 'x'], ['l', '5']]);
    const body = Buffer.from([0, 1, 2, 0xff]);
    const out = serialize(createRequest('INFO', 'sip:x@y', h, body));
    const text = out.toString('latin1');
    assert.equal(text.match(/Content-Length/g)?.length, 1);
    assert.match(text, /Content-Length: 4\r\n\r\n/);
    assert.deepEqual(out.subarray(out.length - 4), body);
  });

  it('writes UTF-8 header values as UTF-8 bytes', () => {
    const out = serialize(createRequest('MESSAGE', 'sip:x@y', headers([['subject', 'Grüße ☃']])));
    assert.ok(out.includes(Buffer.from('Subject: Grüße ☃\r\n', 'utf8')));
  });

  it('writes a NUL escaped as a quoted-pair, as a response copies it from a request (RFC 4475 §3.1.1.2)', () => {
    const to = '"NUL:\\\0" <sip:x@y>';
    const out = serialize(createRequest('MESSAGE', 'sip:x@y', headers([['to', to]])));
    assert.ok(out.includes(Buffer.from(`To: ${to}\r\n`, 'latin1')));
  });

  it('refuses what would mis-frame on the wire', () => {
    refuses(() => serialize(createRequest('MESSAGE', 'sip:x@y', headers([['subject', 'a\r\nInjected: yes']]))), /header subject value/);
    refuses(() => serialize(createRequest('MESSAGE', 'sip:x@y', headers([['subject', 'nul\0']]))), /CR, LF or NUL/);
    refuses(() => serialize(createRequest('MESSAGE', 'sip:x@y', headers([['subject', '"a\\\r"']]))), /CR, LF or NUL/);
    refuses(() => serialize(createRequest('MESSAGE', 'sip:x@y', headers([['bad name', 'v']]))), /header name "bad name" is not a token/);
    refuses(() => serialize(createRequest('MES SAGE', 'sip:x@y')), /method/);
    refuses(() => serialize(createRequest('MESSAGE', 'sip:x y@z')), /Request-URI/);
    refuses(() => serialize(createRequest('MESSAGE', '')), /Request-URI/);
    refuses(() => serialize(createResponseMessage(99, 'Low')), /status 99/);
    refuses(() => serialize(createResponseMessage(200.5, 'OK')), /status/);
    refuses(() => serialize(createResponseMessage(200, 'OK\r\nX: y')), /reason phrase/);
  });

  it('round-trips through the parser', () => {
    const body = Buffer.from('line one\r\n\r\nline two ☃');
    const h = headers([
      ['via', 'SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKx;rport'],
      ['from', '"Zoë, \\"the\\" best" <sip:z@b>;tag=1'],
      ['to', 'sip:c@d'],
      ['call-id', 'c@h'],
      ['cseq', '4294967295 MESSAGE'],
      ['contact', '<sip:z@[2001:db8::1]:5060;transport=tcp>;+sip.instance="<urn:uuid:1>"'],
      ['content-type', 'text/plain;charset=utf-8'],
    ]);
    const first = createRequest('MESSAGE', 'sip:%61lice@[2001:db8::2];transport=tcp', h, body);
    const parsed = parseMessage(serialize(first));
    assert.equal(parsed.kind, 'request');
    assert.equal(parsed.kind === 'request' && parsed.uri, first.uri);
    assert.deepEqual([...parsed.headers].filter((f) => f.name !== 'content-length'), [...h]);
    assert.deepEqual(parsed.body, body);
    assert.deepEqual(serialize(parsed), serialize(first));
  });
});
