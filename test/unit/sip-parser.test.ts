import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_SIP_LIMITS,
  SIP_PARSE_ERRORS,
  SipParseError,
  StreamFramer,
  parseCSeq,
  parseMessage,
  parseNameAddr,
  parseUri,
  parseVia,
  serialize,
  sipLimits,
  warmSipPaths,
} from '../../src/sip/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { prng } from './prng.ts';

const E = SIP_PARSE_ERRORS;
const CRLF = '\r\n';

function wire(lines: string[], body = ''): Buffer {
  return Buffer.from(lines.join(CRLF) + CRLF + CRLF + body, 'utf8');
}

function request(extra: string[] = [], body = '', method = 'MESSAGE'): string[] {
  return [
    `${method} sip:bob@biloxi.example.com SIP/2.0`,
    'Via: SIP/2.0/TLS client.atlanta.example.com:5061;branch=z9hG4bK74bf9',
    'Max-Forwards: 70',
    'From: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl',
    'To: <sip:bob@biloxi.example.com>',
    'Call-ID: 3848276298220188511@atlanta.example.com',
    `CSeq: 1 ${method}`,
    ...extra,
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
}

function req(m: SipMessage): SipRequest {
  assert.equal(m.kind, 'request');
  return m as SipRequest;
}

function res(m: SipMessage): SipResponse {
  assert.equal(m.kind, 'response');
  return m as SipResponse;
}

function fails(data: Buffer | string, code: string, status = 400, limits = DEFAULT_SIP_LIMITS): SipParseError {
  try {
    parseMessage(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, limits);
  } catch (err) {
    assert.ok(err instanceof SipParseError, `expected SipParseError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('parseMessage: valid messages', () => {
  it('parses a plain MESSAGE request', () => {
    const body = 'Watson, come here.';
    const m = req(parseMessage(wire(request(['Content-Type: text/plain'], body), body)));
    assert.equal(m.method, 'MESSAGE');
    assert.equal(m.uri, 'sip:bob@biloxi.example.com');
    assert.equal(m.headers.get('call-id'), '3848276298220188511@atlanta.example.com');
    assert.equal(m.headers.get('Content-Type'), 'text/plain');
    assert.equal(m.body.toString(), body);
  });

  it('survives a tortuous INVITE: folding, odd whitespace, case, compact forms (RFC 4475 §3.1.1.1 spirit)', () => {
    const lines = [
      'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0',
      'TO :',
      ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
      'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
      '  ;',
      '  tag = 98asjd8',
      'MaX-fOrWaRdS: 0068',
      'Call-ID: wsinv.ndaksdj@192.0.2.1',
      'Content-Length   : 150',
      'cseq: 0009',
      '  INVITE',
      'Via  : SIP  /   2.0',
      ' /UDP',
      '    192.0.2.2;branch=390skdjuw',
      's :',
      'NewFangledHeader:   newfangled value',
      ' continued newfangled value',
      'UnknownHeaderWithUnusualValue: ;;,,;;,;',
      'Content-Type: application/sdp',
      'Route:',
      ' <sip:services.example.com;lr;unknownwith=value;unknown-no-value>',
      'v:  SIP  / 2.0  / TCP     spindle.example.com   ;',
      '  branch  =   z9hG4bK9ikj8  ,',
      ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=',
      ' z9hG4bK30239',
      'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
      '      newvalue ;',
      '  secondparam ; q = 0.33',
    ];
    const body = 'v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n';
    assert.equal(body.length, 150);
    const m = req(parseMessage(wire(lines, body)));
    assert.equal(m.uri, 'sip:vivekg@chair-dnrc.example.com;unknownparam');
    assert.equal(m.headers.get('to'), 'sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n');
    assert.equal(parseNameAddr(m.headers.get('to') ?? '').params.get('tag'), '1918181833n');
    const from = parseNameAddr(m.headers.get('from') ?? '');
    assert.equal(from.displayName, 'J Rosenberg \\"');
    assert.equal(from.params.get('tag'), '98asjd8');
    assert.equal(m.headers.get('max-forwards'), '0068');
    assert.deepEqual(parseCSeq(m.headers.get('cseq') ?? ''), { seq: 9, method: 'INVITE' });
    const vias = m.headers.getAll('via').map(parseVia);
    assert.deepEqual(vias.map((v) => [v.transport, v.host, v.params.get('branch')]), [
      ['UDP', '192.0.2.2', '390skdjuw'],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ]);
    assert.equal(m.headers.get('subject'), '');
    assert.equal(m.headers.get('newfangledheader'), 'newfangled value continued newfangled value');
    assert.equal(m.headers.get('unknownheaderwithunusualvalue'), ';;,,;;,;');
    assert.equal(m.headers.get('route'), '<sip:services.example.com;lr;unknownwith=value;unknown-no-value>');
    const contact = parseNameAddr(m.headers.get('contact') ?? '');
    assert.equal(contact.displayName, 'Quoted string ""');
    assert.deepEqual([...contact.params], [['newparam', 'newvalue'], ['secondparam', null], ['q', '0.33']]);
    assert.equal(m.body.toString(), body);
  });

  it('takes a wide range of valid characters in method, tokens and values (RFC 4475 §3.1.1.2 spirit)', () => {
    const method = "!interesting-Method0123456789_*+`.%indeed'~";
    const lines = [
      `${method} sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0`,
      'Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`\'~',
      'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>',
      'From: token1~` token2\'+_ token3*%!.- <sip:mundane@example.com>;fromParam\'\'~+*_!.-%=rsp%E2%80%A2ect;tag=_token~1\'+`*%!-.',
      'Call-ID: intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{',
      `CSeq: 139122385 ${method}`,
      'Max-Forwards: 255',
      'extensionHeader-!.%*+_`\'~: 大停電',
      'Content-Length: 0',
    ];
    // BEL, NUL and DEL escaped as quoted-pairs inside the quoted display name are valid (§25.1)
    const m = req(parseMessage(wire(lines)));
    assert.ok(m.headers.get('to')?.startsWith('"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:'));
    assert.equal(m.method, method);
    assert.equal(m.headers.get('call-id'), 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
    assert.equal(m.headers.get("extensionheader-!.%*+_`'~"), '大停電');
    assert.equal(parseNameAddr(m.headers.get('from') ?? '').displayName, "token1~` token2'+_ token3*%!.-");
  });

  it('keeps an escaped Request-URI as written; parseUri unescapes it', () => {
    const lines = request([], '', 'OPTIONS');
    lines[0] = 'OPTIONS sip:sips%3Auser%40example.com@example.net SIP/2.0';
    const m = req(parseMessage(wire(lines)));
    assert.equal(m.uri, 'sip:sips%3Auser%40example.com@example.net');
    assert.equal(parseUri(m.uri).user, 'sips:user@example.com');
  });

  it('accepts IPv6 references in the Request-URI, Via and Contact', () => {
    const lines = request(['Contact: <sip:alice@[2001:db8::10]:5070;transport=tcp>'], '', 'REGISTER');
    lines[0] = 'REGISTER sip:[2001:db8::10]:5070 SIP/2.0';
    lines[1] = 'Via: SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111;received=[2001:db8::9:255];rport';
    const m = req(parseMessage(wire(lines)));
    assert.equal(parseUri(m.uri).host, '2001:db8::10');
    const via = parseVia(m.headers.get('via') ?? '');
    assert.equal(via.host, '[2001:db8::9:1]');
    assert.equal(via.params.get('received'), '[2001:db8::9:255]');
    assert.equal(parseUri(parseNameAddr(m.headers.get('contact') ?? '').uri).port, 5070);
  });

  it('expands every compact form (§7.3.3, RFC 3515, 3841, 3892, 4028, 6665, 8224)', () => {
    const lines = [
      'SUBSCRIBE sip:bob@b SIP/2.0',
      'v: SIP/2.0/UDP h;branch=z9hG4bK1',
      'f: <sip:a@b>;tag=1',
      't: <sip:bob@b>',
      'i: compact@h',
      'CSeq: 2 SUBSCRIBE',
      'm: <sip:a@h>',
      'o: presence',
      'u: presence, dialog',
      'k: 100rel, path',
      's: hello',
      'c: text/plain',
      'e: gzip',
      'r: <sip:c@d>',
      'b: <sip:e@f>',
      'x: 1800',
      'y: abc',
      'a: *;audio',
      'j: *;video',
      'd: proxy',
      'l: 0',
    ];
    const m = parseMessage(wire(lines));
    const names = [...m.headers].map((f) => f.name);
    assert.deepEqual(names, [
      'via', 'from', 'to', 'call-id', 'cseq', 'contact', 'event', 'allow-events', 'allow-events', 'supported', 'supported', 'subject',
      'content-type', 'content-encoding', 'refer-to', 'referred-by', 'session-expires', 'identity', 'accept-contact', 'reject-contact',
      'request-disposition', 'content-length',
    ]);
  });

  it('splits list headers into one field each, in order, but not Contact: *, auth or unknown headers', () => {
    const m = parseMessage(wire(request([
      'Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bK2, SIP/2.0/UDP p3.example.com;branch=z9hG4bK3',
      'Contact: "Doe, John" <sip:j@d>;q=1, <sip:x@y;a=1,2>',
      'Contact: *',
      'Allow: INVITE,ACK , CANCEL',
      'Supported:',
      'Record-Route: <sip:p1;lr>, <sip:p2;lr>',
      'Authorization: Digest username="bob", realm="r, s", nonce="n"',
      'Date: Sat, 13 Nov 2010 23:29:00 GMT',
      'X-List: a, b',
      'Warning: 399 h "a, b", 307 i "c"',
    ])));
    assert.deepEqual(m.headers.getAll('via').map((v) => parseVia(v).host), ['client.atlanta.example.com', 'p2.example.com', 'p3.example.com']);
    assert.deepEqual(m.headers.getAll('contact'), ['"Doe, John" <sip:j@d>;q=1', '<sip:x@y;a=1,2>', '*']);
    assert.deepEqual(m.headers.getAll('allow'), ['INVITE', 'ACK', 'CANCEL']);
    assert.deepEqual(m.headers.getAll('supported'), ['']);
    assert.deepEqual(m.headers.getAll('record-route'), ['<sip:p1;lr>', '<sip:p2;lr>']);
    assert.equal(m.headers.get('authorization'), 'Digest username="bob", realm="r, s", nonce="n"');
    assert.equal(m.headers.get('date'), 'Sat, 13 Nov 2010 23:29:00 GMT');
    assert.equal(m.headers.get('x-list'), 'a, b');
    assert.deepEqual(m.headers.getAll('warning'), ['399 h "a, b"', '307 i "c"']);
  });

  it('parses responses, with UTF-8 reason phrases and empty ones', () => {
    const lines = ['SIP/2.0 200 Très bien ☃', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2', 'Call-ID: x', 'CSeq: 7 INVITE', 'Content-Length: 0'];
    const m = res(parseMessage(wire(lines)));
    assert.equal(m.status, 200);
    assert.equal(m.reason, 'Très bien ☃');
    lines[0] = 'SIP/2.0 180';
    assert.equal(res(parseMessage(wire(lines))).reason, '');
    lines[0] = 'sip/2.0 699 Whatever Else';
    assert.equal(res(parseMessage(wire(lines))).status, 699);
  });

  it('decodes UTF-8 header values, and ISO-8859-1 ones that are not valid UTF-8', () => {
    const m = parseMessage(wire(request(['P-Asserted-Identity: "Zoë Ünïcødé 日本" <sip:z@b>', 'Subject: ☃'])));
    assert.equal(parseNameAddr(m.headers.get('p-asserted-identity') ?? '').displayName, 'Zoë Ünïcødé 日本');
    assert.equal(m.headers.get('subject'), '☃');
    const latin = Buffer.from(wire(request(['Subject: caf\u00e9'])).toString('utf8').replace('café', 'caf\u00e9'), 'latin1');
    assert.equal(parseMessage(latin).headers.get('subject'), 'café');
  });

  it('keeps unknown headers, their order and their values', () => {
    const m = parseMessage(wire(request(['X-Custom-Thing: keep me', 'P-Asserted-Identity: <sip:alice@atlanta.example.com>', 'x-lower: Value With  Spaces'])));
    const names = [...m.headers].map((f) => f.name);
    assert.deepEqual(names.slice(6, 9), ['x-custom-thing', 'p-asserted-identity', 'x-lower']);
    assert.equal(m.headers.get('x-custom-thing'), 'keep me');
    assert.equal(m.headers.get('x-lower'), 'Value With  Spaces');
    fails(wire(request(['X-Ünïcode-Name: no'])), E.BAD_HEADER);
  });

  it('takes header names that are also Object.prototype properties as plain names', () => {
    const m = parseMessage(wire(request(['constructor: a', '__proto__: b', 'toString: c'])));
    assert.equal(m.headers.get('constructor'), 'a');
    assert.equal(m.headers.get('__proto__'), 'b');
    assert.equal(m.headers.get('tostring'), 'c');
    assert.equal(m.headers.get('Constructor'), 'a');
  });

  it('reads a header name the same however it was spelt before (learnt spellings, HCOLON whitespace)', () => {
    // the parser learns the spellings it sees; each spelling is read twice so the second is a hit
    const spellings = ['Subject', 'SUBJECT', 'subject', 'Subject \t', 's', 'S ', 'X-Subject', 'Subjecu'];
    for (const spelling of [...spellings, ...spellings]) {
      const m = parseMessage(wire(request([`${spelling}: v`])));
      const expected = spelling.trim().toLowerCase();
      const name = expected === 's' ? 'subject' : expected;
      assert.deepEqual([...m.headers].slice(6, 7), [{ name, value: 'v' }], spelling);
    }
    fails(wire(request(['Subject\r\n : folded name'])), E.BAD_HEADER);
  });

  it('skips CRLFs before the start line (§7.5) and accepts bare-LF line ends', () => {
    const body = 'hi';
    const data = Buffer.concat([Buffer.from('\r\n\r\n\n'), wire(request([], body), body)]);
    assert.equal(parseMessage(data).body.toString(), body);
    const lf = Buffer.from(wire(request([], body), body).toString().replace(/\r\n/g, '\n'));
    const m = parseMessage(lf);
    assert.equal(m.headers.get('cseq'), '1 MESSAGE');
    assert.equal(m.body.toString(), body);
    // an LF-only empty line ends the header section even when the body has CRLF CRLF
    const mixed = Buffer.from(request([], 'a\r\n\r\nb').join('\n') + '\n\na\r\n\r\nb');
    assert.equal(parseMessage(mixed).body.toString(), 'a\r\n\r\nb');
  });

  it('applies the datagram rules for the body (§18.3)', () => {
    const body = 'exactly this';
    const lines = request([], body);
    assert.equal(parseMessage(wire(lines, body + 'and extra bytes')).body.toString(), body);
    const noLength = lines.filter((l) => !l.startsWith('Content-Length'));
    assert.equal(parseMessage(wire(noLength, 'to the end\r\n')).body.toString(), 'to the end\r\n');
    assert.equal(parseMessage(wire(noLength)).body.length, 0);
    assert.equal(parseMessage(wire([...lines, `Content-Length: ${body.length}`], body)).body.toString(), body);
    assert.equal(parseMessage(wire(lines.map((l) => (l.startsWith('Content-Length') ? 'Content-Length: 0012' : l)), body)).body.toString(), body);
  });

  it('keeps binary bodies intact (NUL and any byte)', () => {
    const body = Buffer.from([0, 1, 2, 0xff, 0xfe, 13, 10, 13, 10, 0]);
    const data = Buffer.concat([wire(request([`Content-Type: application/octet-stream`], 'x'.repeat(body.length))), body]);
    assert.deepEqual(parseMessage(data).body, body);
  });

  it('tolerates a missing Max-Forwards and takes the Request-URI of any scheme', () => {
    const lines = request().filter((l) => !l.startsWith('Max-Forwards'));
    lines[0] = 'MESSAGE tel:+1-201-555-0123 SIP/2.0';
    assert.equal(req(parseMessage(wire(lines))).uri, 'tel:+1-201-555-0123');
  });

  it('round-trips parse → serialize → parse', () => {
    const body = 'Grüße ☃\r\n\r\nzweite Zeile';
    const first = parseMessage(wire(request(['Contact: <sip:a@h>, <sip:b@h>', 'Subject: ünïcode', 'Allow: INVITE, MESSAGE'], body), body));
    const again = parseMessage(serialize(first));
    assert.deepEqual([...again.headers], [...first.headers]);
    assert.deepEqual(again.body, first.body);
    assert.equal(req(again).uri, req(first).uri);
  });
});

describe('parseMessage: malformed and adversarial input', () => {
  it('rejects empty input and lone line ends as SIP_EMPTY_MESSAGE', () => {
    for (const s of ['', '\r\n', '\r\n\r\n', '\n\n\n']) fails(s, E.EMPTY_MESSAGE);
  });

  it('says which mandatory headers are missing, with the headers it read', () => {
    for (const [name, prefix] of [['From', 'From:'], ['To', 'To:'], ['Call-ID', 'Call-ID:'], ['CSeq', 'CSeq:'], ['Via', 'Via:']] as const) {
      const err = fails(wire(request().filter((l) => !l.startsWith(prefix))), E.MISSING_HEADER);
      assert.match(err.message, new RegExp(`lacks the mandatory header ${name}`));
      assert.equal(err.isRequest, true);
      assert.ok(err.headers !== undefined && err.headers.size >= 5);
    }
    const err = fails(wire(['SIP/2.0 200 OK', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'Content-Length: 0']), E.MISSING_HEADER);
    assert.match(err.message, /response lacks the mandatory headers From, To, Call-ID, CSeq/);
    assert.equal(err.isRequest, false);
  });

  it('rejects bad CSeq headers', () => {
    const withCSeq = (v: string) => wire(request().map((l) => (l.startsWith('CSeq') ? `CSeq: ${v}` : l)));
    for (const v of ['abc MESSAGE', '1', 'MESSAGE 1', '4294967296 MESSAGE', '-1 MESSAGE', '1 MES SAGE', '']) fails(withCSeq(v), E.BAD_CSEQ);
    const err = fails(withCSeq('1 INVITE'), E.BAD_CSEQ);
    assert.match(err.message, /CSeq method "INVITE" does not match the request method "MESSAGE"/);
  });

  it('rejects duplicate single-valued headers', () => {
    fails(wire(request(['From: <sip:mallory@evil>;tag=2'])), E.DUPLICATE_HEADER);
    fails(wire(request(['i: second-call-id'])), E.DUPLICATE_HEADER);
    fails(wire(request(['CSeq: 1 MESSAGE'])), E.DUPLICATE_HEADER);
  });

  it('rejects bad Content-Length values', () => {
    const withLength = (v: string, body = '') => wire(request([], body).map((l) => (l.startsWith('Content-Length') ? `Content-Length: ${v}` : l)), body);
    for (const v of ['-1', 'abc', '1.5', '0x10', '1 2', '', '99999999999999999999', '+5']) fails(withLength(v), E.BAD_CONTENT_LENGTH);
    fails(wire([...request([], 'abc'), 'l: 4'], 'abcd'), E.BAD_CONTENT_LENGTH);
    const err = fails(withLength('50', 'short'), E.BAD_CONTENT_LENGTH);
    assert.match(err.message, /says 50 bytes but only 5 follow/);
    assert.equal(err.headers?.get('call-id'), '3848276298220188511@atlanta.example.com');
  });

  it('rejects NUL, bare CR and other control characters in the header section', () => {
    for (const bad of ['\0', '\r', '\x01', '\x1b[31m', '\x7f', '\x0b']) {
      const err = fails(wire(request([`Subject: a${bad}b`])), E.BAD_CHARACTER);
      assert.match(err.message, /line 8/);
    }
    fails(wire(request()).toString('latin1').replace('MESSAGE sip', 'MESS\0AGE sip'), E.BAD_CHARACTER);
    fails(wire(request()).toString('latin1').replace('Call-ID:', 'Call\0ID:'), E.BAD_CHARACTER);
  });

  it('takes a control character escaped as a quoted-pair inside a quoted string, and only there', () => {
    for (const c of ['\0', '\x07', '\x7f', '\x01', '\x0b']) {
      const m = parseMessage(wire(request([`Subject: "a\\${c}b" and "c\\\\"`])));
      assert.equal(m.headers.get('subject'), `"a\\${c}b" and "c\\\\"`);
    }
    // not escaped, escaped outside quotes, or after an escaped backslash: still a bad character
    for (const v of ['"a\0b"', 'a\\\0b', '"a\\\\\0b"', '"a" \\\0']) {
      assert.match(fails(wire(request([`Subject: ${v}`])), E.BAD_CHARACTER).message, /line 8/);
    }
    // a line of many of them is read in one pass (and is still a header like any other)
    const many = `"${'\\\x01'.repeat(3000)}"`;
    assert.equal(parseMessage(wire(request([`Subject: ${many}`]))).headers.get('subject'), many);
    // CR and LF can never be quoted (a bare CR would let parsers disagree on where a line ends)
    fails(wire(request(['Subject: "a\\\rb"'])), E.BAD_CHARACTER);
    // the first fault is the one reported, past an accepted quoted-pair
    assert.match(fails(wire(request(['Subject: "a\\\0b" \x01'])), E.BAD_CHARACTER).message, /code 1\b/);
  });

  it('rejects malformed start lines', () => {
    const withStart = (s: string) => wire([s, ...request().slice(1)]);
    for (const s of ['MESSAGE', 'MESSAGE sip:bob@b', 'MESSAGE sip:bob@b SIP/2.0 extra', 'MESSAGE sip:bob @b SIP/2.0', ' MESSAGE sip:bob@b SIP/2.0', 'MESSAGE sip:bob@b HTTP/1.1', 'MESS<AGE sip:bob@b SIP/2.0', 'MESSAGE sip:bob@b SIP/2', 'SIP/2.0']) {
      const err = fails(withStart(s), E.BAD_START_LINE);
      assert.ok(err.headers !== undefined && err.headers.size > 0, 'headers are read even when the start line is bad');
    }
    fails(withStart('MESSAGE bob@biloxi SIP/2.0'), E.BAD_URI);
    fails(withStart('MESSAGE sip:bøb@b SIP/2.0'), E.BAD_URI);
    // one SP between the elements and nothing after the version (RFC 4475 §3.1.2.9, §3.1.2.10),
    // each said precisely, the headers still read to answer it
    for (const s of ['MESSAGE  sip:bob@b SIP/2.0', 'MESSAGE sip:bob@b\tSIP/2.0', 'MESSAGE  sip:bob@b \t SIP/2.0 ']) {
      assert.match(fails(withStart(s), E.BAD_START_LINE).message, /exactly one SP/);
    }
    for (const s of ['MESSAGE sip:bob@b SIP/2.0 ', 'MESSAGE sip:bob@b SIP/2.0\t']) {
      const err = fails(withStart(s), E.BAD_START_LINE);
      assert.match(err.message, /whitespace after the SIP version/);
      assert.equal(err.isRequest, true);
      assert.equal(err.headers?.get('cseq'), '1 MESSAGE');
    }
  });

  it('answers other SIP versions with 505 and keeps the headers to build it', () => {
    const lines = request();
    lines[0] = 'MESSAGE sip:bob@b SIP/7.0';
    const err = fails(wire(lines), E.BAD_VERSION, 505);
    assert.equal(err.isRequest, true);
    assert.equal(err.headers?.get('cseq'), '1 MESSAGE');
    fails(wire(['SIP/3.0 200 OK', ...request().slice(1)]), E.BAD_VERSION, 505);
  });

  it('rejects responses with a bad status code', () => {
    for (const s of ['SIP/2.0 99 Low', 'SIP/2.0 700 High', 'SIP/2.0 abc OK', 'SIP/2.0 2000 OK', 'SIP/2.0 20 OK', 'SIP/2.0 -200 OK', 'SIP/2.0']) {
      const err = fails(wire([s, ...request().slice(1)]), s === 'SIP/2.0' ? E.BAD_START_LINE : E.BAD_STATUS);
      assert.equal(err.isRequest, false);
    }
  });

  it('rejects header lines that are not name: value', () => {
    fails(wire(request(['This is not a header'])), E.BAD_HEADER);
    fails(wire(request([': no name'])), E.BAD_HEADER);
    fails(wire(request(['Bad Name: x'])), E.BAD_HEADER);
    fails(wire(request(['Bad<Name>: x'])), E.BAD_HEADER);
    const lines = request();
    lines.splice(1, 0, ' continuation of nothing');
    fails(wire(lines), E.BAD_HEADER);
    fails(wire(request(['Max-Forwards: many'])), E.DUPLICATE_HEADER);
    fails(wire(request().map((l) => (l.startsWith('Max-Forwards') ? 'Max-Forwards: many' : l))), E.BAD_MAX_FORWARDS);
    fails(wire(request(['Contact: "unterminated <sip:a@b>, <sip:c@d>'])), E.BAD_LIST);
  });

  it('rejects truncated messages with the headers read so far', () => {
    const full = wire(request()).toString();
    const err = fails(full.slice(0, full.indexOf('To:') + 10), E.TRUNCATED);
    assert.equal(err.isRequest, true);
    assert.equal(err.headers?.get('max-forwards'), '70');
    fails('INVITE sip:x SIP/2.0', E.TRUNCATED);
    fails('INVITE sip:x SIP/2.0\r\n', E.TRUNCATED);
  });

  it('rejects garbage and binary junk', () => {
    for (const s of ['hello world', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', '{"json": true}\r\n\r\n', '\xff\xfe\xfd\r\n\r\n']) {
      assert.throws(() => parseMessage(Buffer.from(s, 'latin1')), SipParseError);
    }
  });
});

describe('parseMessage: limits', () => {
  const small = sipLimits({ maxStartLine: 200, maxHeaderCount: 20, maxHeaderLine: 300, maxHeaderBytes: 2000, maxBody: 100 });

  it('answers an over-long Request-URI with 414, keeping the headers', () => {
    const lines = request();
    lines[0] = `MESSAGE sip:${'a'.repeat(300)}@b SIP/2.0`;
    const err = fails(wire(lines), E.START_LINE_TOO_LONG, 414, small);
    assert.equal(err.isRequest, true);
    assert.equal(err.headers?.get('call-id'), '3848276298220188511@atlanta.example.com');
    fails(wire([`SIP/2.0 200 ${'o'.repeat(300)}`, ...request().slice(1)]), E.START_LINE_TOO_LONG, 513, small);
  });

  it('answers too many, too long or too large headers with 513', () => {
    fails(wire(request(Array.from({ length: 20 }, (_, i) => `X-H${i}: v`))), E.TOO_MANY_HEADERS, 513, small);
    fails(wire(request([`Subject: ${'s'.repeat(400)}`])), E.HEADER_TOO_LONG, 513, small);
    fails(wire(request(['Subject: a', ...Array.from({ length: 3 }, () => ` ${'s'.repeat(120)}`)])), E.HEADER_TOO_LONG, 513, small);
    fails(wire(request(Array.from({ length: 10 }, (_, i) => `X-H${i}: ${'v'.repeat(250)}`))), E.HEADERS_TOO_LARGE, 513, small);
    const endless = Buffer.from(wire(request()).toString().slice(0, -4) + '\r\n' + 'X-Pad: p\r\n'.repeat(300));
    fails(endless, E.HEADERS_TOO_LARGE, 513, sipLimits({ maxHeaderBytes: 2000, maxHeaderCount: 1000 }));
    const ok = wire(request(Array.from({ length: 12 }, (_, i) => `X-H${i}: v`)));
    assert.equal(parseMessage(ok, small).headers.size, 19);
  });

  it('answers bodies over the limit with 413, with or without Content-Length', () => {
    const body = 'b'.repeat(101);
    const err = fails(wire(request([], body), body), E.BODY_TOO_LARGE, 413, small);
    assert.equal(err.headers?.get('cseq'), '1 MESSAGE');
    fails(wire(request().filter((l) => !l.startsWith('Content-Length')), body), E.BODY_TOO_LARGE, 413, small);
    fails(wire(request().map((l) => (l.startsWith('Content-Length') ? 'Content-Length: 999999999' : l))), E.BODY_TOO_LARGE, 413, small);
    assert.equal(parseMessage(wire(request([], body.slice(1)), body.slice(1)), small).body.length, 100);
  });

  it('checks the limits it is given at start-up', () => {
    assert.throws(() => sipLimits({ maxBody: 0 }), RangeError);
    assert.throws(() => sipLimits({ maxHeaderCount: 1.5 }), RangeError);
    assert.ok(Object.isFrozen(DEFAULT_SIP_LIMITS));
  });
});

describe('error codes', () => {
  it('are unique, stable SIP_ strings', () => {
    const codes = Object.values(SIP_PARSE_ERRORS);
    assert.equal(new Set(codes).size, codes.length);
    for (const [key, code] of Object.entries(SIP_PARSE_ERRORS)) assert.equal(code, `SIP_${key}`);
  });
});

const SPECIAL = [0, 9, 10, 13, 32, 34, 37, 44, 58, 59, 60, 62, 64, 91, 92, 93, 0x80, 0xc3, 0xe2, 0xff].map((b) => Buffer.from([b]));
const SNIPPETS = ['\r\n', '\r\n\r\n', '\r\n ', 'Content-Length: 99\r\n', 'l: 3\r\n', ',', '"', '<', '>', ';', '%', '%4', '[::1]', 'SIP/2.0', '\u00e9', '☃'].map((s) => Buffer.from(s));

function mutate(data: Buffer, rand: () => number): Buffer {
  let out = data;
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (out.length + 1));
    const kind = Math.floor(rand() * 7);
    if (kind === 0 && out.length > 0) {
      out = Buffer.from(out);
      out[Math.min(at, out.length - 1)] = Math.floor(rand() * 256);
    } else if (kind === 1) {
      out = Buffer.concat([out.subarray(0, at), SPECIAL[Math.floor(rand() * SPECIAL.length)] ?? Buffer.alloc(0), out.subarray(at)]);
    } else if (kind === 2) {
      out = Buffer.concat([out.subarray(0, at), SNIPPETS[Math.floor(rand() * SNIPPETS.length)] ?? Buffer.alloc(0), out.subarray(at)]);
    } else if (kind === 3) {
      out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + Math.floor(rand() * 20)))]);
    } else if (kind === 4) {
      const len = Math.floor(rand() * 40);
      out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + len), out.subarray(at)]);
    } else if (kind === 5) {
      out = out.subarray(0, at);
    } else {
      out = Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * 256))), out.subarray(at)]);
    }
  }
  return out;
}

describe('random mutations (seeded)', () => {
  const seeds = [
    wire(request(['Contact: "A, B" <sip:a@[2001:db8::1]:5070;transport=tcp>;q=0.5, <sip:b@h>', 'Content-Type: text/plain;charset="utf-8"', 'Subject: Grüße'], 'Hello ☃'), 'Hello ☃'),
    wire(['SIP/2.0 401 Unauthorized', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1;rport=5060;received=192.0.2.1', 'From: <sip:a@b>;tag=1', 'To: <sip:a@b>;tag=2', 'Call-ID: c', 'CSeq: 1 REGISTER', 'WWW-Authenticate: Digest realm="b", nonce="n\\"x", qop="auth,auth-int", algorithm=SHA-256', 'Content-Length: 0']),
    wire(['OPTIONS sip:%61@h;lr?x=y SIP/2.0', 'v: SIP / 2.0 / TCP h', ' ;branch=z9hG4bK2', 'f: x <sip:a@b>;tag=1', 't: sip:c@d', 'i: i', 'CSeq: 3 OPTIONS', 'Accept: application/sdp, text/plain', 'l: 0']),
  ];

  it('never throws anything but SipParseError from parseMessage, and what parses re-serializes', () => {
    const rand = prng(0x5eed);
    let parsed = 0;
    for (let i = 0; i < 3000; i++) {
      const data = mutate(seeds[i % seeds.length] ?? Buffer.alloc(0), rand);
      let m: SipMessage;
      try {
        m = parseMessage(data, sipLimits({ maxBody: 4096 }));
      } catch (err) {
        if (!(err instanceof SipParseError)) assert.fail(`mutation ${i} threw ${String(err)} for ${JSON.stringify(data.toString('latin1'))}`);
        continue;
      }
      parsed++;
      const again = parseMessage(serialize(m));
      assert.deepEqual([...again.headers].filter((f) => f.name !== 'content-length'), [...m.headers].filter((f) => f.name !== 'content-length'), `mutation ${i}`);
      assert.deepEqual(again.body, m.body);
    }
    assert.ok(parsed > 100, `only ${parsed} mutations parsed: the mutations are too destructive to test much`);
  });

  it('never throws from StreamFramer, whatever the bytes and however they are split', () => {
    const rand = prng(0xf4a3e);
    for (let i = 0; i < 2000; i++) {
      const framer = new StreamFramer(sipLimits({ maxBody: 4096, maxHeaderBytes: 4096 }));
      const stream = Buffer.concat(Array.from({ length: 3 }, (_, k) => mutate(seeds[(i + k) % seeds.length] ?? Buffer.alloc(0), rand)));
      let at = 0;
      while (at < stream.length) {
        const n = 1 + Math.floor(rand() * 64);
        const events = framer.push(stream.subarray(at, at + n));
        for (const ev of events) if (ev.type === 'error') assert.ok(ev.error instanceof SipParseError);
        at += n;
      }
    }
  });
});

describe('warmSipPaths (run at start, before the sockets open)', () => {
  it('runs through with the default limits, and stops without failing when the limits are tighter than its requests', () => {
    assert.equal(warmSipPaths(DEFAULT_SIP_LIMITS, 3), true);
    assert.equal(warmSipPaths(sipLimits({ maxHeaderLine: 100 }), 3), false);
  });

  it('leaves the parser reading real messages as before', () => {
    warmSipPaths(DEFAULT_SIP_LIMITS, 3);
    const m = parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n', 'latin1'));
    assert.equal(m.kind, 'request');
    assert.equal(m.headers.get('cseq'), '1 OPTIONS');
  });
});
