// The request syntax checked at the edge before the method decides (src/sip/validate.ts), with the
// faults of RFC 4475 §3.1.2 and the valid oddities of §3.1.1 that must pass.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkRequest, nameAddrFault, parseMessage, parseVia, SIP_PARSE_ERRORS as E, SipParseError } from '../../src/sip/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';

function request(start: string, lines: string[]): SipRequest {
  const base = ['Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1', 'From: <sip:a@example.com>;tag=1', 'To: <sip:b@example.com>', 'Call-ID: c1', `CSeq: 1 ${start.split(' ')[0]}`, 'Max-Forwards: 70'];
  const names = new Set(lines.map((l) => l.slice(0, l.indexOf(':')).toLowerCase()));
  const all = [...base.filter((l) => !names.has(l.slice(0, l.indexOf(':')).toLowerCase())), ...lines];
  const m = parseMessage(Buffer.from([start, ...all, 'Content-Length: 0', '', ''].join('\r\n'), 'latin1'));
  assert.equal(m.kind, 'request');
  return m as SipRequest;
}

function check(req: SipRequest): void {
  checkRequest(req, parseVia(req.headers.get('via') ?? ''));
}

function faultOf(req: SipRequest): SipParseError {
  try {
    check(req);
  } catch (err) {
    assert.ok(err instanceof SipParseError);
    assert.equal(err.status, 400);
    return err;
  }
  assert.fail('expected a fault');
}

describe('nameAddrFault', () => {
  it('takes what RFC 3261 allows, the oddities of RFC 4475 §3.1.1 among them', () => {
    for (const v of [
      '<sip:b@example.com>',
      'sip:b@example.com;tag=1',
      'sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
      '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com> ; tag = 98asjd8',
      '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33',
      "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"x\";tag=_token~1'+`*%!-.",
      'caller<sip:caller@example.com>;tag=323',
      '"BEL:\\\x07 NUL:\\\x00" <sip:x@example.com>',
      '"Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423',
      'Alice Adams <sip:alice@parley.test>',
      '<sip:alice@127.0.0.1:5060;transport=ws>;+sip.instance="<urn:uuid:1>";expires=600',
      'sip:alice@example.com;+sip.instance="<urn:uuid:1>"',
      '<sip:user@example.com?Route=%3Csip:sip.example.com%3E>',
      'isbn:2983792873',
    ]) {
      assert.equal(nameAddrFault(v), null, v);
    }
  });

  it('names the fault of each malformed address', () => {
    const cases: [string, RegExp][] = [
      ['"Mr. J. User <sip:j.user@example.com>', /no closing quote/], // quotbal
      ['"Watson, Thomas" < sip:t.watson@example.org >', /whitespace inside/], // badaspec
      ['Bell, Alexander <sip:a.g.bell@example.com>;tag=43', /",".*not a token character/], // baddn
      ['sip:user@example.com?Route=%3Csip:sip.example.com%3E', /"\?" must be enclosed/], // regbadct
      ['"Joe" sip:joe@example.org', /followed by <URI>/],
      ['<sip:joe@example.org', /without ">"/],
      ['<>', /nothing between/],
      ['sip:a b@example.org', /must be quoted or the URI enclosed/],
      ['', /no URI/],
      ['sip:x@y>', /">" in the URI/],
      ['>sip:x@y', /">" without "<"/],
    ];
    for (const [v, why] of cases) assert.match(nameAddrFault(v) ?? 'null', why, v);
  });
});

describe('checkRequest', () => {
  it('passes a plain request, one with several good Vias, and the RFC 4475 §3.1.1 Request-URIs', () => {
    check(request('MESSAGE sip:b@example.com SIP/2.0', []));
    check(request('OPTIONS sip:user@example.com SIP/2.0', ['Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw, SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf', 'Contact: *', 'Date: Sat, 13 Nov 2010 23:29:00 GMT']));
    check(request("OPTIONS sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0", []));
    check(request('OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0', []));
    check(request('OPTIONS nobodyKnowsThisScheme:totallyopaquecontent?x SIP/2.0', [])); // 416 later, not 400
  });

  it('refuses a SIP Request-URI with headers (escruri, RFC 4475 §3.1.2.11)', () => {
    const err = faultOf(request('INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0', []));
    assert.equal(err.code, E.BAD_URI);
    assert.match(err.message, /cannot carry headers/);
    assert.equal(faultOf(request('OPTIONS SIPS:example.com?x=y SIP/2.0', [])).code, E.BAD_URI);
  });

  it('refuses a branch that is the magic cookie alone (badbranch, §3.2.1)', () => {
    const err = faultOf(request('OPTIONS sip:user@example.com SIP/2.0', ['Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK']));
    assert.equal(err.code, E.BAD_VIA);
    assert.match(err.message, /magic cookie/);
  });

  it('reads every Via, not only the top one (badinv01, §3.1.2.1)', () => {
    const err = faultOf(request('INVITE sip:user@example.com SIP/2.0', ['Via: SIP/2.0/UDP 192.0.2.15;;,;,,']));
    assert.equal(err.code, E.BAD_VIA);
  });

  it('refuses malformed From, To and Contact, saying which', () => {
    assert.match(faultOf(request('OPTIONS sip:u@example.org SIP/2.0', ['To: "Watson, Thomas" < sip:t.watson@example.org >'])).message, /^To .*whitespace inside/);
    assert.match(faultOf(request('OPTIONS sip:u@example.org SIP/2.0', ['From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43'])).message, /^From /);
    const err = faultOf(request('REGISTER sip:example.com SIP/2.0', ['Contact: <sip:a@h1.example.com>, sip:user@example.com?Route=%3Csip:sip.example.com%3E']));
    assert.equal(err.code, E.BAD_NAME_ADDR);
    assert.match(err.message, /^Contact /);
  });

  it('refuses a Date that is not GMT (baddate, §3.1.2.12)', () => {
    const err = faultOf(request('INVITE sip:user@example.com SIP/2.0', ['Date: Fri, 01 Jan 2010 16:00:00 EST']));
    assert.equal(err.code, E.BAD_DATE);
    assert.match(err.message, /RFC 1123 date in GMT/);
  });
});
