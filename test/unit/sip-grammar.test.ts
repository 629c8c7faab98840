import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SIP_PARSE_ERRORS,
  SipParseError,
  formatAuthField,
  formatNameAddr,
  formatParams,
  formatUri,
  formatVia,
  parseAuthField,
  parseCSeq,
  parseContentType,
  parseNameAddr,
  parseParams,
  parseUri,
  parseVia,
  quoteString,
  splitHeaderList,
  unquoteString,
} from '../../src/sip/index.ts';

const E = SIP_PARSE_ERRORS;

function throwsCode(fn: () => unknown, code: string, status = 400): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SipParseError, `expected SipParseError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    return true;
  });
}

describe('parseUri', () => {
  it('reads every part of a full SIP URI', () => {
    const u = parseUri('sips:alice:secret@Atlanta.Example.COM:5061;Transport=TLS;lr;maddr=239.255.255.1?subject=project%20x&priority=urgent');
    assert.equal(u.scheme, 'sips');
    assert.equal(u.user, 'alice');
    assert.equal(u.password, 'secret');
    assert.equal(u.host, 'atlanta.example.com');
    assert.equal(u.port, 5061);
    assert.deepEqual([...u.params], [['transport', 'TLS'], ['lr', null], ['maddr', '239.255.255.1']]);
    assert.deepEqual([...u.headers], [['subject', 'project x'], ['priority', 'urgent']]);
  });

  it('unescapes user, password and parameters, once (RFC 4475 §3.1.1.3 spirit)', () => {
    const u = parseUri('sip:sips%3Auser%40example.com@example.net');
    assert.equal(u.user, 'sips:user@example.com');
    assert.equal(u.host, 'example.net');
    const v = parseUri('sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31');
    assert.equal(v.user, 'caller');
    assert.deepEqual([...v.params], [['lr', null], ['name', 'value%41']]);
    assert.equal(parseUri('sip:%E2%98%83@h').user, '☃');
    assert.equal(parseUri('sip:user;phone-context=+1;x=y@h').user, 'user;phone-context=+1;x=y');
  });

  it('reads IPv6 references, keeps the address without brackets, checks it', () => {
    const u = parseUri('sip:[2001:DB8::10]:5070;transport=tcp');
    assert.equal(u.host, '2001:db8::10');
    assert.equal(u.port, 5070);
    assert.equal(formatUri(u), 'sip:[2001:db8::10]:5070;transport=tcp');
    assert.equal(parseUri('sip:bob@[::ffff:192.0.2.1]').host, '::ffff:192.0.2.1');
    throwsCode(() => parseUri('sip:[2001:db8::10:5070'), E.BAD_URI);
    throwsCode(() => parseUri('sip:[2001:db8:::zz]'), E.BAD_URI);
  });

  it('checks the port range', () => {
    assert.equal(parseUri('sip:h:65535').port, 65535);
    throwsCode(() => parseUri('sip:h:65536'), E.BAD_URI);
    throwsCode(() => parseUri('sip:h:0'), E.BAD_URI);
    throwsCode(() => parseUri('sip:h:'), E.BAD_URI);
    throwsCode(() => parseUri('sip:h:12a'), E.BAD_URI);
  });

  it('rejects other schemes with 416 and broken URIs with 400', () => {
    throwsCode(() => parseUri('tel:+1-201-555-0123'), E.UNSUPPORTED_URI_SCHEME, 416);
    throwsCode(() => parseUri('http://example.com/'), E.UNSUPPORTED_URI_SCHEME, 416);
    throwsCode(() => parseUri('example.com'), E.BAD_URI);
    throwsCode(() => parseUri('sip:'), E.BAD_URI);
    throwsCode(() => parseUri('sip:@example.com'), E.BAD_URI);
    throwsCode(() => parseUri('sip:user@'), E.BAD_URI);
    throwsCode(() => parseUri('sip:us er@h'), E.BAD_URI);
    throwsCode(() => parseUri('sip:user@h<x>'), E.BAD_URI);
    throwsCode(() => parseUri('sip:user@h;=x'), E.BAD_URI);
    throwsCode(() => parseUri('sip:user@h?x'), E.BAD_URI);
    throwsCode(() => parseUri('sip:%zzuser@h'), E.BAD_URI);
    throwsCode(() => parseUri('sip:user%4@h'), E.BAD_URI);
    throwsCode(() => parseUri('sip:a@b..c'), E.BAD_URI);
  });

  it('says what is wrong and where', () => {
    assert.throws(() => parseUri('sip:us er@h'), /user part/);
    assert.throws(() => parseUri('sip:h:99999'), /port 99999 is outside 1-65535/);
  });

  it('formats with escaping and round-trips', () => {
    const u = parseUri('sip:a@h');
    u.user = 'j smith@x';
    u.password = 'p:w';
    u.params.set('x', 'a b;c');
    u.headers.set('Subject', 'hi & bye');
    const text = formatUri(u);
    assert.equal(text, 'sip:j%20smith%40x:p%3Aw@h;x=a%20b%3Bc?Subject=hi%20%26%20bye');
    assert.deepEqual(parseUri(text), u);
    throwsCode(() => formatUri({ ...u, host: 'evil.com>;x' }), E.BAD_URI);
    throwsCode(() => formatUri({ ...u, host: '' }), E.BAD_URI);
    throwsCode(() => formatUri({ ...u, port: 70000 }), E.BAD_URI);
    assert.equal(formatUri({ ...u, host: '::1', params: new Map(), headers: new Map() }), 'sip:j%20smith%40x:p%3Aw@[::1]');
    for (const s of ['sip:alice@atlanta.com', 'sips:[::1]:5061;transport=tls', 'sip:+1555;phone-context=x@h;user=phone', 'sip:h;lr?a=b&c=d']) {
      assert.equal(formatUri(parseUri(s)), s);
    }
  });
});

describe('parseNameAddr', () => {
  it('reads a quoted display name with escapes and header parameters', () => {
    const na = parseNameAddr('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com> ; tag = 98asjd8');
    assert.equal(na.displayName, 'J Rosenberg \\"');
    assert.equal(na.uri, 'sip:jdrosen@example.com');
    assert.deepEqual([...na.params], [['tag', '98asjd8']]);
  });

  it('reads token display names, UTF-8 names and no display name', () => {
    assert.equal(parseNameAddr('Bob Smith <sip:bob@b>').displayName, 'Bob Smith');
    assert.equal(parseNameAddr('"Zoë 日本" <sip:z@b>').displayName, 'Zoë 日本');
    assert.equal(parseNameAddr('<sip:bob@b>').displayName, null);
    assert.equal(parseNameAddr('"" <sip:bob@b>').displayName, '');
  });

  it('gives the ;params of a bare addr-spec to the header, not the URI (§20.10)', () => {
    const na = parseNameAddr('sip:bob@biloxi.com;tag=a6c85cf;expires=60');
    assert.equal(na.uri, 'sip:bob@biloxi.com');
    assert.deepEqual([...na.params], [['tag', 'a6c85cf'], ['expires', '60']]);
    const inside = parseNameAddr('<sip:bob@biloxi.com;transport=tcp>;tag=x');
    assert.equal(inside.uri, 'sip:bob@biloxi.com;transport=tcp');
    assert.deepEqual([...inside.params], [['tag', 'x']]);
  });

  it('reads a bare addr-spec whose quoted parameter holds "<"', () => {
    const na = parseNameAddr('sip:a@h;+sip.instance="<urn:uuid:1>";reg-id=1');
    assert.equal(na.uri, 'sip:a@h');
    assert.equal(na.params.get('+sip.instance'), '"<urn:uuid:1>"');
    assert.equal(na.params.get('reg-id'), '1');
  });

  it('keeps non-SIP URIs and quoted parameter values as written', () => {
    const na = parseNameAddr('<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>;+sip.instance="<urn:uuid:00000000>";q=0.5');
    assert.equal(na.uri, 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6');
    assert.equal(na.params.get('+sip.instance'), '"<urn:uuid:00000000>"');
    assert.equal(unquoteString(na.params.get('+sip.instance') ?? ''), '<urn:uuid:00000000>');
  });

  it('rejects malformed addresses', () => {
    throwsCode(() => parseNameAddr('"unterminated <sip:a@b>'), E.BAD_QUOTED_STRING);
    throwsCode(() => parseNameAddr('"name" sip:a@b'), E.BAD_NAME_ADDR);
    throwsCode(() => parseNameAddr('<sip:a@b'), E.BAD_NAME_ADDR);
    throwsCode(() => parseNameAddr('<sip:a@b> junk'), E.BAD_NAME_ADDR);
    throwsCode(() => parseNameAddr('<>'), E.BAD_NAME_ADDR);
    throwsCode(() => parseNameAddr('sip:a@b c'), E.BAD_NAME_ADDR);
    throwsCode(() => parseNameAddr('*'), E.BAD_NAME_ADDR);
    throwsCode(() => parseNameAddr('Bob "x" <sip:a@b>'), E.BAD_NAME_ADDR);
    throwsCode(() => parseNameAddr('<sip:a@b>;=x'), E.BAD_NAME_ADDR);
  });

  it('formats with a quoted display name and round-trips', () => {
    const na = { displayName: 'A "B" \\ C', uri: 'sip:a@b', params: new Map([['tag', '1'], ['lr', null]]) };
    const text = formatNameAddr(na);
    assert.equal(text, '"A \\"B\\" \\\\ C" <sip:a@b>;tag=1;lr');
    assert.deepEqual(parseNameAddr(text), na);
    assert.equal(formatNameAddr({ displayName: null, uri: 'sip:x@y;lr', params: new Map() }), '<sip:x@y;lr>');
    throwsCode(() => formatNameAddr({ displayName: null, uri: 'sip:x@y> <sip:evil', params: new Map() }), E.BAD_NAME_ADDR);
  });
});

describe('parseVia', () => {
  it('reads protocol, transport, sent-by and parameters, with LWS around slashes', () => {
    const v = parseVia('SIP  /   2.0 /udp  192.0.2.2:5062 ;branch=z9hG4bK390skdjuw;rport;received=192.0.2.9');
    assert.equal(v.protocol, 'SIP/2.0');
    assert.equal(v.transport, 'UDP');
    assert.equal(v.host, '192.0.2.2');
    assert.equal(v.port, 5062);
    assert.deepEqual([...v.params], [['branch', 'z9hG4bK390skdjuw'], ['rport', null], ['received', '192.0.2.9']]);
  });

  it('keeps an IPv6 sent-by in brackets and reads rport values (RFC 3581)', () => {
    const v = parseVia('SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKx;rport=5071;received=[2001:db8::1]');
    assert.equal(v.host, '[2001:db8::9]');
    assert.equal(v.params.get('rport'), '5071');
    assert.equal(v.params.get('received'), '[2001:db8::1]');
    assert.equal(formatVia(v), 'SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKx;rport=5071;received=[2001:db8::1]');
  });

  it('formats a via-parm that parses back the same', () => {
    const v = { protocol: 'SIP/2.0', transport: 'WSS', host: 'df7jal23ls0d.invalid', port: null, params: new Map<string, string | null>([['branch', 'z9hG4bK1'], ['rport', null]]) };
    assert.equal(formatVia(v), 'SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK1;rport');
    assert.deepEqual(parseVia(formatVia(v)), v);
    throwsCode(() => formatVia({ ...v, host: 'h;branch=evil' }), E.BAD_VIA);
    throwsCode(() => formatVia({ ...v, transport: 'U DP' }), E.BAD_VIA);
  });

  it('rejects malformed Vias', () => {
    for (const bad of ['', 'SIP/2.0 host', 'SIP/2.0/UDP', 'SIP/2.0/UDPhost', 'SIP/2.0/UDP host:0', 'SIP/2.0/UDP host:99999', 'SIP/2.0/UDP [::1', 'SIP/2.0/UDP host junk', 'SIP/2.0/UDP host;rport=x', 'SIP/2.0/UDP host;branch="open']) {
      assert.throws(() => parseVia(bad), (err: unknown) => err instanceof SipParseError && err.code === E.BAD_VIA, bad);
    }
  });
});

describe('parseCSeq', () => {
  it('reads the number and method, with any LWS', () => {
    assert.deepEqual(parseCSeq('4711 INVITE'), { seq: 4711, method: 'INVITE' });
    assert.deepEqual(parseCSeq('  0009 \t MESSAGE  '), { seq: 9, method: 'MESSAGE' });
    assert.deepEqual(parseCSeq('4294967295 ACK'), { seq: 4294967295, method: 'ACK' });
  });

  it('rejects numbers outside 32 bits and bad methods', () => {
    for (const bad of ['4294967296 INVITE', '-1 INVITE', 'INVITE', '1', '1INVITE', '1 INV ITE', '1 INV<ITE', '', '99999999999999999999 A', '1.5 INVITE']) {
      throwsCode(() => parseCSeq(bad), E.BAD_CSEQ);
    }
  });
});

describe('auth fields', () => {
  it('parses a Digest challenge with quoted values unquoted', () => {
    const f = parseAuthField('Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5');
    assert.equal(f.scheme, 'Digest');
    assert.equal(f.params.get('realm'), 'atlanta.com');
    assert.equal(f.params.get('qop'), 'auth,auth-int');
    assert.equal(f.params.get('opaque'), '');
    assert.equal(f.params.get('stale'), 'FALSE');
    assert.equal(f.params.get('algorithm'), 'MD5');
  });

  it('parses credentials with odd spacing, escapes and a comma inside quotes', () => {
    const f = parseAuthField('Digest  username = "bob \\"the\\" builder",realm="a, b" ,nonce="n",uri="sip:x@y",response="0123",NC=00000001,qop=auth,cnonce="c"');
    assert.equal(f.params.get('username'), 'bob "the" builder');
    assert.equal(f.params.get('realm'), 'a, b');
    assert.equal(f.params.get('nc'), '00000001');
    assert.equal(f.params.get('qop'), 'auth');
  });

  it('quotes what RFC 2617/7616 quote and leaves tokens bare', () => {
    const creds = { scheme: 'Digest', params: new Map([['username', 'bob'], ['realm', 'r'], ['nonce', 'n'], ['uri', 'sip:r'], ['response', 'abc'], ['algorithm', 'SHA-256'], ['cnonce', 'c'], ['nc', '00000001'], ['qop', 'auth'], ['opaque', 'o']]) };
    assert.equal(formatAuthField(creds), 'Digest username="bob", realm="r", nonce="n", uri="sip:r", response="abc", algorithm=SHA-256, cnonce="c", nc=00000001, qop=auth, opaque="o"');
    const challenge = { scheme: 'Digest', params: new Map([['realm', 'r "x"'], ['nonce', 'n'], ['qop', 'auth'], ['stale', 'true'], ['algorithm', 'MD5']]) };
    const text = formatAuthField(challenge);
    assert.equal(text, 'Digest realm="r \\"x\\"", nonce="n", qop="auth", stale=true, algorithm=MD5');
    assert.deepEqual(parseAuthField(text), challenge);
    assert.equal(formatAuthField(challenge, 'credentials').includes('qop=auth'), true);
  });

  it('rejects malformed auth fields', () => {
    for (const bad of ['', '"Digest"', 'Digest realm', 'Digest realm=', 'Digest realm="open', 'Digest realm="a" nonce="b"', 'Digest realm="a", realm="b"', 'Digest,realm="a"', 'Bearer abc.def==']) {
      throwsCode(() => parseAuthField(bad), E.BAD_AUTH);
    }
    throwsCode(() => formatAuthField({ scheme: 'Digest', params: new Map([['realm', 'a\r\nX: y']]) }), E.BAD_AUTH);
  });
});

describe('params, quoted strings and lists', () => {
  it('parses header parameters with SEMI/EQUAL whitespace, flags and quoted values', () => {
    const p = parseParams(' ; Tag = abc ;lr; q=0.7 ;x="a;b,c" ;received=[2001:db8::1];;');
    assert.deepEqual([...p], [['tag', 'abc'], ['lr', null], ['q', '0.7'], ['x', '"a;b,c"'], ['received', '[2001:db8::1]']]);
    assert.deepEqual([...parseParams('tag=1')], [['tag', '1']]);
    assert.deepEqual([...parseParams(';a=1;A=2')], [['a', '1']]);
    assert.equal(parseParams('').size, 0);
  });

  it('rejects broken parameters', () => {
    for (const bad of [';=x', ';a b', ';a="x', ';a=x y', ';a=<x>', 'a;;=']) throwsCode(() => parseParams(bad), bad.includes('"') ? E.BAD_QUOTED_STRING : E.BAD_PARAMS);
  });

  it('formats parameters, quoting values that need it', () => {
    const p = new Map<string, string | null>([['tag', 'x'], ['lr', null], ['text', 'two words'], ['q', '"already"']]);
    assert.equal(formatParams(p), ';tag=x;lr;text="two words";q="already"');
    throwsCode(() => formatParams(new Map([['bad name', 'x']])), E.BAD_PARAMS);
  });

  it('quotes and unquotes', () => {
    assert.equal(quoteString('say "hi" \\o/'), '"say \\"hi\\" \\\\o/"');
    assert.equal(unquoteString('"say \\"hi\\" \\\\o/"'), 'say "hi" \\o/');
    assert.equal(unquoteString('  token  '), 'token');
    assert.equal(unquoteString('"\\a\\b"'), 'ab');
    throwsCode(() => quoteString('a\r\nb'), E.BAD_QUOTED_STRING);
    throwsCode(() => unquoteString('"open'), E.BAD_QUOTED_STRING);
    throwsCode(() => unquoteString('"a" b'), E.BAD_QUOTED_STRING);
    throwsCode(() => unquoteString('"a\\"'), E.BAD_QUOTED_STRING);
  });

  it('splits lists outside quotes and angle brackets', () => {
    assert.deepEqual(splitHeaderList('INVITE, ACK ,BYE,,'), ['INVITE', 'ACK', 'BYE']);
    assert.deepEqual(splitHeaderList('"Doe, John" <sip:j@d;a=1,2>;q=1, <sip:x@y>'), ['"Doe, John" <sip:j@d;a=1,2>;q=1', '<sip:x@y>']);
    assert.deepEqual(splitHeaderList('"a \\", b" <sip:a@b>, c'), ['"a \\", b" <sip:a@b>', 'c']);
    assert.deepEqual(splitHeaderList('307 isi.edu "Session parameter \'foo\' not understood", 399 x "y, z"'), ['307 isi.edu "Session parameter \'foo\' not understood"', '399 x "y, z"']);
    assert.deepEqual(splitHeaderList('  '), []);
    throwsCode(() => splitHeaderList('"a, b'), E.BAD_LIST);
    throwsCode(() => splitHeaderList('<sip:a, b'), E.BAD_LIST);
  });
});

describe('parseContentType', () => {
  it('lower-cases type and subtype and unquotes parameters', () => {
    const ct = parseContentType('Text/Plain ; charset="UTF-8";Format=flowed');
    assert.equal(ct.type, 'text');
    assert.equal(ct.subtype, 'plain');
    assert.deepEqual([...ct.params], [['charset', 'UTF-8'], ['format', 'flowed']]);
    assert.equal(parseContentType('multipart/mixed;boundary="a b;c"').params.get('boundary'), 'a b;c');
    assert.equal(parseContentType('application / pidf+xml').subtype, 'pidf+xml');
  });

  it('rejects malformed media types', () => {
    for (const bad of ['', 'text', 'text/', '/plain', 'text/plain junk', 'text/plain;charset="x']) throwsCode(() => parseContentType(bad), E.BAD_CONTENT_TYPE);
  });
});

describe('random mutations of header values (seeded)', () => {
  // mulberry32: the same mutations on every run
  let state = 0x9e3779b9;
  const rand = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const alphabet = ' \t"\\<>;,=:@[]%?&/.-_~*\'()+$!`aZ09é☃\u0000';
  const plain = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (x instanceof Map ? [...x] : x));
  const cases: Array<[string, (s: string) => unknown, ((v: never) => string) | null]> = [
    ['sips:us%20er:pw@[2001:db8::1]:5061;transport=tls;lr?subject=a%20b&x=y', parseUri, formatUri],
    ['"Zoë \\"x\\"" <sip:a@b;lr>;tag=1;+sip.instance="<urn:x>"', parseNameAddr, formatNameAddr],
    ['SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;rport=1;received=1.2.3.4', parseVia, formatVia],
    ['Digest username="a\\"b", realm="r", nonce="n", uri="sip:x", response="0", nc=00000001, qop=auth', parseAuthField, (f: never) => formatAuthField(f)],
    [';a=1;b;c="x;y"', parseParams, formatParams],
    ['1 INVITE', parseCSeq, null],
    ['text/plain;charset="utf-8"', parseContentType, null],
    ['"a, b" <sip:x>, c', splitHeaderList, null],
    ['"a\\"b"', unquoteString, null],
  ];

  it('throw only SipParseError, and what parses formats to text that parses the same', () => {
    for (let i = 0; i < 20000; i++) {
      const [seed, parse, format] = cases[i % cases.length] ?? cases[0]!;
      let s = seed;
      for (let e = 0; e < 1 + Math.floor(rand() * 3); e++) {
        const at = Math.floor(rand() * (s.length + 1));
        const c = alphabet[Math.floor(rand() * alphabet.length)] ?? '';
        const k = rand();
        s = k < 0.4 ? s.slice(0, at) + c + s.slice(at) : k < 0.7 ? s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 4)) : s.slice(0, at) + c + s.slice(at + 1);
      }
      let value: unknown;
      try {
        value = parse(s);
      } catch (err) {
        assert.ok(err instanceof SipParseError, `${parse.name}(${JSON.stringify(s)}) threw ${String(err)}`);
        continue;
      }
      if (format === null) continue;
      let text: string;
      try {
        text = format(value as never);
      } catch (err) {
        assert.ok(err instanceof SipParseError, `formatting ${JSON.stringify(s)} threw ${String(err)}`);
        continue;
      }
      assert.equal(plain(parse(text)), plain(value), `${parse.name}: ${JSON.stringify(s)} → ${JSON.stringify(text)}`);
    }
  });
});
