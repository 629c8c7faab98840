// Network-asserted identity (RFC 3325): what Parley removes from a client's request before
// forwarding it, what it asserts instead, and which P-Preferred-Identity it refuses. Pure.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertedIdentityValue, assertIdentity, cpimSenderRefusal, preferredIdentityRefusal } from '../../src/router/asserted-identity.ts';
import { parseMessage } from '../../src/sip/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';

const ALICE = 'alice@parley.test';

function request(...extra: string[]): SipRequest {
  const text = [
    'MESSAGE sip:bob@parley.test SIP/2.0',
    'Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKx',
    'Max-Forwards: 70',
    'From: "The CEO" <sip:alice@parley.test>;tag=a',
    'To: <sip:bob@parley.test>',
    'Call-ID: c1',
    'CSeq: 1 MESSAGE',
    ...extra,
    'Content-Type: text/plain',
    'Content-Length: 2',
    '',
    'hi',
  ].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

describe('assertIdentity', () => {
  it("replaces every identity header the client wrote (long and compact forms) with Parley's assertion", () => {
    const r = request(
      'P-Asserted-Identity: "The CEO" <sip:ceo@parley.test>',
      'p-asserted-identity: <tel:+15550100>',
      'P-Preferred-Identity: <sip:ceo@parley.test>',
      'Identity: eyJhbGciOiJFUzI1NiJ9.e30.c2ln;info=<https://cert.example/ceo.pem>',
      'y: second.compact.form',
      'Identity-Info: <https://cert.example/ceo.cer>;alg=rsa-sha1',
      'Privacy: id',
    );
    assertIdentity(r.headers, { address: ALICE, displayName: 'Alice Liddell' });
    assert.deepEqual(r.headers.getAll('p-asserted-identity'), ['"Alice Liddell" <sip:alice@parley.test>']);
    for (const name of ['p-preferred-identity', 'identity', 'identity-info']) assert.equal(r.headers.has(name), false, name);
    // what is not an identity claim is left as it was: the sender's own From, and their Privacy request
    assert.equal(r.headers.get('from'), '"The CEO" <sip:alice@parley.test>;tag=a');
    assert.equal(r.headers.get('privacy'), 'id');
    assert.equal(r.headers.get('content-type'), 'text/plain');
  });

  it('asserts the user even when the client sent no identity header', () => {
    const r = request();
    const before = [...r.headers].length;
    assertIdentity(r.headers, { address: ALICE, displayName: null });
    assert.equal([...r.headers].length, before + 1);
    assert.equal(r.headers.get('p-asserted-identity'), '<sip:alice@parley.test>');
  });
});

describe('assertedIdentityValue', () => {
  it('quotes the directory display name, escaping quotes and backslashes (RFC 3261 §25.1)', () => {
    assert.equal(assertedIdentityValue({ address: ALICE, displayName: 'Alice "Al" \\ Liddell' }), '"Alice \\"Al\\" \\\\ Liddell" <sip:alice@parley.test>');
    assert.equal(assertedIdentityValue({ address: ALICE, displayName: '' }), '<sip:alice@parley.test>');
  });

  it('drops a display name that could break the header instead of writing it', () => {
    assert.equal(assertedIdentityValue({ address: ALICE, displayName: 'Alice\r\nP-Asserted-Identity: <sip:ceo@parley.test>' }), '<sip:alice@parley.test>');
  });
});

describe('preferredIdentityRefusal', () => {
  it("accepts no preference, or a preference for the user's own address", () => {
    assert.equal(preferredIdentityRefusal(request().headers, ALICE), undefined);
    assert.equal(preferredIdentityRefusal(request('P-Preferred-Identity: "Me" <sip:alice@parley.test>').headers, ALICE), undefined);
    assert.equal(preferredIdentityRefusal(request('P-Preferred-Identity: <sips:alice@parley.test>, sip:alice@parley.test').headers, ALICE), undefined);
  });

  it('refuses another user, another domain, a telephone number and an unreadable value, naming it', () => {
    const cases: Array<[string, RegExp]> = [
      ['"The CEO" <sip:ceo@parley.test>', /ceo@parley\.test is not an identity of alice@parley\.test/],
      ['<sip:alice@parley.test>, <sip:ceo@parley.test>', /ceo@parley\.test/],
      ['<sip:alice@evil.example>', /alice@evil\.example is not an identity/],
      ['<tel:+15550100>', /tel:\+15550100.*not an identity of alice@parley\.test/],
      ['"unterminated <sip:ceo@parley.test>', /P-Preferred-Identity/],
    ];
    for (const [value, why] of cases) assert.match(preferredIdentityRefusal(request(`P-Preferred-Identity: ${value}`).headers, ALICE) ?? '(accepted)', why, value);
  });
});

describe('cpimSenderRefusal', () => {
  const cpim = (from: string | undefined) =>
    Buffer.from(`${from === undefined ? '' : `From: ${from}\r\n`}To: <im:bob@parley.test>\r\n\r\nContent-Type: text/plain\r\n\r\nhello`);
  const alice = 'alice@parley.test';

  it("accepts the sender's own address in any of CPIM's URI schemes, with any display name, or no From", () => {
    for (const from of ['<im:alice@parley.test>', '"Alice" <sip:alice@PARLEY.test;transport=tcp>', 'The CEO <sips:alice@parley.test>', '<pres:alice@parley.test>', '<sip:%61lice@parley.test>', undefined]) {
      assert.equal(cpimSenderRefusal(cpim(from), alice), undefined, String(from));
    }
  });

  it('refuses another sender, an unreadable From, and a body that is not CPIM', () => {
    for (const from of ['<im:ceo@parley.test>', '"Alice" <im:alice@evil.example>', '<tel:+15551234>', 'alice', '<sip:alice@parley.test@evil>']) {
      assert.match(cpimSenderRefusal(cpim(from), alice) ?? '', /is not alice@parley\.test/, from);
    }
    assert.match(cpimSenderRefusal(Buffer.from('hello, not cpim'), alice) ?? '', /not RFC 3862 CPIM/);
  });
});
