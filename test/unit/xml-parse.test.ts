import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_XML_LIMITS, XmlError, XmlReader, childElement, childElements, childText, escapeXmlAttr, escapeXmlText, parseXml } from '../../src/xml/index.ts';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof XmlError, `expected an XmlError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
};

describe('parseXml', () => {
  it('resolves namespaces whatever the prefixes', () => {
    const a = parseXml('<s:Envelope xmlns:s="urn:soap"><s:Body><m:Op xmlns:m="urn:m" xmlns:t="urn:t" Id="1" t:Key="k"><t:X>x</t:X></m:Op></s:Body></s:Envelope>');
    const b = parseXml('<Envelope xmlns="urn:soap"><Body><Op xmlns="urn:m" Id="1" xmlns:q="urn:t" q:Key="k"><q:X>x</q:X></Op></Body></Envelope>');
    for (const root of [a, b]) {
      assert.equal(root.name, 'Envelope');
      assert.equal(root.ns, 'urn:soap');
      const op = childElement(childElement(root, 'urn:soap', 'Body')!, 'urn:m', 'Op')!;
      assert.equal(op.attrs.get('Id'), '1');
      assert.equal(op.attrs.get('{urn:t}Key'), 'k');
      assert.equal(op.attrs.size, 2, 'xmlns declarations are not attributes');
      assert.equal(childText(op, 'urn:t', 'X'), 'x');
      assert.equal(childText(op, 'urn:m', 'X'), undefined);
    }
    assert.equal(a.prefix, 's');
    assert.equal(b.prefix, '');
  });

  it('reads CDATA, character references and the predefined entities as text', () => {
    const root = parseXml('<a>1 &lt; 2 &amp;&#x41;&#66;<![CDATA[<b>&amp;</b>]]><c/>tail</a>');
    assert.equal(root.text, '1 < 2 &AB<b>&amp;</b>tail');
    assert.equal(childElements(root, '', 'c').length, 1);
  });

  it('refuses malformed documents', () => {
    for (const bad of ['', 'text', '<a>', '<a></b>', '<a/><b/>', '<p:a/>', '<a x="1" x="2"/>', '<a>&#0;</a>', '<a>\u0001</a>', '<a>&nbsp;</a>']) {
      assert.equal(codeOf(() => parseXml(bad)), 'XML_MALFORMED', bad);
    }
    assert.equal(codeOf(() => parseXml(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e]))), 'XML_MALFORMED', 'invalid UTF-8');
    assert.equal(codeOf(() => parseXml('<?xml version="1.0" encoding="ISO-8859-1"?><a/>')), 'XML_MALFORMED');
  });

  it('refuses any DOCTYPE: internal entities, billion laughs, external entities', () => {
    const laughs = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>';
    const xxe = '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>';
    const external = '<!DOCTYPE foo SYSTEM "http://127.0.0.1:1/evil.dtd"><foo/>';
    for (const doc of [laughs, xxe, external, '<!DOCTYPE a><a/>']) assert.equal(codeOf(() => parseXml(doc)), 'XML_DTD_FORBIDDEN');
  });

  it('enforces the limits while parsing', () => {
    const limits = { maxBytes: 1000, maxDepth: 5, maxElements: 10 };
    assert.equal(codeOf(() => parseXml(`<a>${'x'.repeat(1000)}</a>`, limits)), 'XML_TOO_LARGE');
    assert.equal(codeOf(() => parseXml('<a><a><a><a><a><a/></a></a></a></a></a>', limits)), 'XML_TOO_DEEP');
    assert.doesNotThrow(() => parseXml('<a><a><a><a><a/></a></a></a></a>', limits));
    assert.equal(codeOf(() => parseXml(`<a>${'<b/>'.repeat(10)}</a>`, limits)), 'XML_TOO_MANY_ELEMENTS');
    // a deep document fails at the limit, not after building the whole tree (nor by stack overflow)
    const deep = '<a>'.repeat(200_000);
    assert.equal(codeOf(() => parseXml(deep, { ...DEFAULT_XML_LIMITS, maxBytes: 10_000_000 })), 'XML_TOO_DEEP');
    assert.equal(codeOf(() => parseXml(`<a>${'x'.repeat(DEFAULT_XML_LIMITS.maxBytes)}</a>`)), 'XML_TOO_LARGE');
  });

  it('reads in chunks, counting bytes as they arrive, with multi-byte characters split across chunks', () => {
    const bytes = Buffer.from('<a>h\u00e9llo \u{1F600}</a>');
    const reader = new XmlReader();
    for (const b of bytes) reader.write(Uint8Array.of(b));
    assert.equal(reader.end().text, 'h\u00e9llo \u{1F600}');
    const small = new XmlReader({ maxBytes: 8, maxDepth: 5, maxElements: 5 });
    small.write('<a>');
    assert.equal(codeOf(() => small.write('123456')), 'XML_TOO_LARGE');
    assert.equal(codeOf(() => small.end()), 'XML_TOO_LARGE', 'a failed reader stays failed');
  });
});

describe('escaping', () => {
  it('round-trips hostile strings through text and attributes', () => {
    const hostile = 'a<b>&c;"d\'e]]>\r\n\tf \u{1F600}';
    const root = parseXml(`<r a="${escapeXmlAttr(hostile)}" b='${escapeXmlAttr(hostile)}'>${escapeXmlText(hostile)}</r>`);
    assert.equal(root.text, hostile);
    assert.equal(root.attrs.get('a'), hostile);
    assert.equal(root.attrs.get('b'), hostile);
  });

  it('removes characters XML 1.0 does not allow', () => {
    assert.equal(escapeXmlText('a\u0000b\u0008c\uFFFEd\uD800e'), 'abcde');
    assert.equal(escapeXmlAttr('\u001Fx\uDC00'), 'x');
    assert.equal(parseXml(`<r>${escapeXmlText('ok\u0001')}</r>`).text, 'ok');
  });
});
