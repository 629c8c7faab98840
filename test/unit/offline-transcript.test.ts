import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpimDateTime, parseCpim, parseRfc3339 } from '../../src/sip/cpim.ts';
import { decodeEntities, htmlToText, sanitizeHtml } from '../../src/offline/html.ts';
import { messageText, renderTranscript } from '../../src/offline/transcript.ts';
import type { TranscriptMessage } from '../../src/offline/transcript.ts';
import { prng } from './prng.ts';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const ALICE = { name: 'Alice Example', address: 'sip:alice@example.com' };
const BOB = { name: 'Bob Example', address: 'sip:bob@example.com' };
const T0 = new Date('2026-11-25T10:02:03Z');

function msg(contentType: string, body: string | Uint8Array, receivedAt = T0): TranscriptMessage {
  return { receivedAt, contentType, body: typeof body === 'string' ? utf8(body) : body };
}

function render(messages: TranscriptMessage[], timeZone?: string) {
  return renderTranscript(timeZone === undefined ? { sender: ALICE, recipient: BOB, messages } : { sender: ALICE, recipient: BOB, messages, timeZone });
}

/** The text cells (third <td>) of the transcript rows, in order. */
function cells(html: string): string[] {
  return [...html.matchAll(/<tr><td[^>]*>[^<]*<\/td><td[^>]*>[^<]*<\/td><td[^>]*>(.*?)<\/td><\/tr>/gs)].map((m) => m[1] ?? '');
}

/** The time cells (first <td>) of the transcript rows, in order. */
function stamps(html: string): string[] {
  return [...html.matchAll(/<tr><td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1] ?? '');
}

const ALLOWED = 'b|i|u|em|strong|br|p|div|span|ul|ol|li|code|pre|blockquote';
/** every tag of a sanitised fragment is a bare allowed tag, without attributes */
const FOREIGN_TAG_IN_FRAGMENT = new RegExp(`<(?!/?(?:${ALLOWED})>)`);
/** a "<" in the whole document that starts a tag neither allowed nor ours */
const FOREIGN_TAG_IN_DOCUMENT = new RegExp(`<(?!/?(?:${ALLOWED}|html|head|meta|body|table|tr|td)\\b)`);
const VOID = new Set(['br', 'meta']);

function assertBalanced(html: string): void {
  const stack: string[] = [];
  for (const m of html.matchAll(/<(\/?)([a-z0-9]+)[^>]*>/g)) {
    const [, close, name = ''] = m;
    if (VOID.has(name)) continue;
    if (close === '') stack.push(name);
    else assert.equal(stack.pop(), name, `</${name}> closes something else in ${html}`);
  }
  assert.deepEqual(stack, [], `left open in ${html}`);
}

function assertNoActiveContent(html: string): void {
  for (const [tag] of html.matchAll(/<[^>]*>/g)) {
    assert.doesNotMatch(tag, /\son\w+\s*=/i, `event handler in ${tag}`);
    assert.doesNotMatch(tag, /javascript:/i, `javascript: in ${tag}`);
  }
}

describe('offline transcript: text/plain', () => {
  it('shows markup in plain text literally, escaped in the HTML', () => {
    const t = render([msg('text/plain', '<script>alert(1)</script>')]);
    assert.deepEqual(cells(t.html), ['&lt;script&gt;alert(1)&lt;/script&gt;']);
    assert.doesNotMatch(t.html, /<script/i);
    assert.match(t.text, /Alice Example: <script>alert\(1\)<\/script>\n/);
  });

  it('escapes & < > " \' ', () => {
    assert.deepEqual(cells(render([msg('text/plain', `a & b < c > d " e ' f`)]).html), ['a &amp; b &lt; c &gt; d &quot; e &#39; f']);
  });

  it('keeps line breaks (<br>) and indents continuation lines in the plain text', () => {
    const t = render([msg('text/plain', 'one\r\ntwo\rthree\n\nfive\n')]);
    assert.deepEqual(cells(t.html), ['one<br>\ntwo<br>\nthree<br>\n<br>\nfive']);
    assert.match(t.text, /: one\n {4}two\n {4}three\n\n {4}five\n$/);
  });

  it('keeps runs of spaces and indentation visible', () => {
    assert.deepEqual(cells(render([msg('text/plain', '  a   b')]).html), ['&nbsp;&nbsp;a &nbsp; b']);
  });

  it('removes control characters but keeps tabs', () => {
    assert.equal(messageText(msg('text/plain', 'a\u0000b\u0007c\u001bd\u009be\tf')), 'abcde\tf');
  });

  it('reads a missing Content-Type as text/plain and an unknown text subtype as text', () => {
    assert.equal(messageText(msg('', 'plain')), 'plain');
    assert.equal(messageText(msg('text/x-markdown', '*hi* <b>')), '*hi* <b>');
  });
});

describe('offline transcript: charsets', () => {
  const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

  it('reads UTF-8 by default and by name (any case, quoted), dropping a BOM', () => {
    assert.equal(messageText(msg('text/plain', utf8('héllo ✓ 😀'))), 'héllo ✓ 😀');
    assert.equal(messageText(msg('text/plain; charset="UTF-8"', bytes(0xef, 0xbb, 0xbf, 0x68, 0xc3, 0xa9))), 'hé');
    assert.equal(messageText(msg('text/plain;charset=utf8', utf8('é'))), 'é');
  });

  it('reads us-ascii, iso-8859-1 and latin1', () => {
    assert.equal(messageText(msg('text/plain; charset=us-ascii', bytes(0x68, 0x69))), 'hi');
    assert.equal(messageText(msg('text/plain; charset=ISO-8859-1', bytes(0x63, 0x61, 0x66, 0xe9))), 'café');
    assert.equal(messageText(msg('text/plain; charset=latin1', bytes(0xe0, 0x20, 0xff))), 'à ÿ');
  });

  it('reads utf-16le, utf-16be, and utf-16 by its BOM (big-endian without one)', () => {
    assert.equal(messageText(msg('text/plain; charset=utf-16le', bytes(0x68, 0x00, 0xe9, 0x00))), 'hé');
    assert.equal(messageText(msg('text/plain; charset=UTF-16BE', bytes(0x00, 0x68, 0x00, 0xe9))), 'hé');
    assert.equal(messageText(msg('text/plain; charset=utf-16', bytes(0xff, 0xfe, 0x68, 0x00))), 'h');
    assert.equal(messageText(msg('text/plain; charset=utf-16', bytes(0xfe, 0xff, 0x00, 0x68))), 'h');
    assert.equal(messageText(msg('text/plain; charset=utf-16', bytes(0x00, 0x68))), 'h');
  });

  it('reads an unknown charset as UTF-8, bad bytes as U+FFFD', () => {
    assert.equal(messageText(msg('text/plain; charset=x-klingon', utf8('qapla’'))), 'qapla’');
    assert.equal(messageText(msg('text/plain; charset=x-klingon', bytes(0x61, 0xff, 0x62))), 'a\uFFFDb');
    assert.equal(messageText(msg('text/plain', bytes(0x61, 0xc3))), 'a\uFFFD');
  });

  it('decodes text/html in its charset too', () => {
    assert.equal(messageText(msg('text/html; charset=iso-8859-1', bytes(0x3c, 0x62, 0x3e, 0xe9, 0x3c, 0x2f, 0x62, 0x3e))), 'é');
  });

  it('keeps the message when the parameters are malformed', () => {
    assert.equal(messageText(msg('text/plain; charset="utf-8', 'still here')), 'still here');
  });
});

describe('offline transcript: HTML sanitiser', () => {
  it('keeps allowed tags and drops all their attributes', () => {
    assert.equal(sanitizeHtml('<b class="x" onclick="alert(1)" style="x:expression(1)">bold</b> <I>it</I>'), '<b>bold</b> <i>it</i>');
    assert.equal(sanitizeHtml('<p>p</p><div>d</div><ul><li>l</li></ul><ol><li>o</li></ol><pre>x</pre><blockquote>q</blockquote>'), '<p>p</p><div>d</div><ul><li>l</li></ul><ol><li>o</li></ol><pre>x</pre><blockquote>q</blockquote>');
    assert.equal(sanitizeHtml('<em>e</em><strong>s</strong><u>u</u><span>s</span><code>c</code>a<br/>b<BR>c</br>d'), '<em>e</em><strong>s</strong><u>u</u><span>s</span><code>c</code>a<br>b<br>c<br>d');
  });

  it('drops script, style, iframe, object, template, title and head with their content', () => {
    assert.equal(sanitizeHtml('a<script>alert(1)</script>b'), 'ab');
    assert.equal(sanitizeHtml('a<SCRIPT type="text/javascript">if (a < b) alert("</b>")</SCRIPT >b'), 'ab');
    assert.equal(sanitizeHtml('a<style>body{background:url(javascript:alert(1))}</style>b'), 'ab');
    assert.equal(sanitizeHtml('a<iframe src="javascript:alert(1)"><b>x</b></iframe>b'), 'ab');
    assert.equal(sanitizeHtml('a<object data="x.swf"><param name=a value=b><b>fallback</b></object>b'), 'ab');
    assert.equal(sanitizeHtml('a<template><b>t</b><script>x</script></template>b'), 'ab');
    assert.equal(sanitizeHtml('<html><head><title>T</title><meta http-equiv="refresh" content="0;url=javascript:x"></head><body>hi</body></html>'), 'hi');
    assert.equal(sanitizeHtml('<head><title>T</title><body>hi'), 'hi');
    assert.equal(sanitizeHtml('a<script>never closed <b>x</b>'), 'a');
  });

  it('is not fooled by <scr<script>ipt>', () => {
    const out = sanitizeHtml('<scr<script>ipt>alert(1)</script>');
    assert.doesNotMatch(out, FOREIGN_TAG_IN_FRAGMENT);
    assert.equal(out, 'ipt&gt;alert(1)');
  });

  it('drops links, images, svg and event handlers', () => {
    assert.equal(sanitizeHtml('<a href="javascript:alert(1)">click</a>'), 'click');
    assert.equal(sanitizeHtml('<img src=x onerror=alert(1)>after'), 'after');
    assert.equal(sanitizeHtml('<svg onload=alert(1)><text>t</text></svg>after'), 'after');
    assert.equal(sanitizeHtml('<svg/onload=alert(1)>inside'), '');
    assert.equal(sanitizeHtml('<svg/>after'), 'after');
    assert.equal(sanitizeHtml('<math><mi xlink:href="javascript:alert(1)">x</mi></math>after'), 'after');
    assert.equal(sanitizeHtml('<body onload=alert(1)>b</body>'), 'b');
    assert.equal(sanitizeHtml('<b onmouseover=alert(1)>x</b>'), '<b>x</b>');
  });

  it('finds the end of a tag whose quoted attributes hold ">"', () => {
    assert.equal(sanitizeHtml('<b title="a>b" data-x=\'c>d\' onclick=alert(1)>bold</b>'), '<b>bold</b>');
    assert.equal(sanitizeHtml('<a title="><script>alert(1)</script>">x</a>'), 'x');
  });

  it('survives "</", unterminated tags and stray closers', () => {
    assert.equal(sanitizeHtml('</'), '&lt;/');
    assert.equal(sanitizeHtml('a < b </ c> d'), 'a &lt; b  d');
    assert.equal(sanitizeHtml('x</>y'), 'xy');
    assert.equal(sanitizeHtml('ok<b onclick="alert(1)'), 'ok');
    assert.equal(sanitizeHtml('ok<img src=x onerror=alert(1)'), 'ok');
    assert.equal(sanitizeHtml('</div></b></td></table>x'), 'x');
    assert.equal(sanitizeHtml('1 <3 you'), '1 &lt;3 you');
  });

  it('closes unclosed and mis-nested tags so a message cannot change what follows', () => {
    assert.equal(sanitizeHtml('<b>bold <i>both'), '<b>bold <i>both</i></b>');
    assert.equal(sanitizeHtml('<b><i>x</b>y</i>'), '<b><i>x</i></b>y');
    assert.equal(sanitizeHtml('<ul><li>one<li>two</ul>after'), '<ul><li>one</li><li>two</li></ul>after');
    assert.equal(sanitizeHtml('<p>a<div>b</div>'), '<p>a</p><div>b</div>');
    assert.equal(sanitizeHtml('<blockquote><pre><code>x'), '<blockquote><pre><code>x</code></pre></blockquote>');
    const deep = sanitizeHtml('<b>'.repeat(100) + 'x');
    assertBalanced(deep);
    assert.ok((deep.match(/<b>/g) ?? []).length <= 32);
  });

  it('keeps escaped markup as text: entities are decoded, then escaped again', () => {
    assert.equal(sanitizeHtml('&lt;script&gt;alert(1)&lt;/script&gt;'), '&lt;script&gt;alert(1)&lt;/script&gt;');
    assert.equal(sanitizeHtml('&#x3C;img src=x onerror=alert(1)&#x3E;'), '&lt;img src=x onerror=alert(1)&gt;');
    assert.equal(sanitizeHtml('&#60;b&#62;not bold&#60;/b&#62;'), '&lt;b&gt;not bold&lt;/b&gt;');
    assert.equal(sanitizeHtml('&amp;lt;'), '&amp;lt;');
    assert.equal(sanitizeHtml('&#0000060;x'), '&lt;x');
    assert.equal(sanitizeHtml('&quot;&apos;&nbsp;&eacute;&hellip;'), '&quot;&#39;\u00a0é…');
  });

  it('drops comments, CDATA, processing instructions and doctypes', () => {
    assert.equal(sanitizeHtml('<!DOCTYPE html>a<!-- <script>alert(1)</script> -->b<![CDATA[<script>x</script>]]>c<?xml version="1.0"?>d'), 'abcd');
    assert.equal(sanitizeHtml('a<!-->b<!--->c'), 'abc');
    assert.equal(sanitizeHtml('a<!-- never closed <b>x</b>'), 'a');
    assert.equal(sanitizeHtml('a<!--x--!>b'), 'ab');
  });

  it('shows textarea and xmp content as text, never as markup', () => {
    assert.equal(sanitizeHtml('<textarea><b>x</b>&amp;</textarea>'), '&lt;b&gt;x&lt;/b&gt;&amp;');
    assert.equal(sanitizeHtml('<xmp><script>alert(1)</script></xmp>'), '&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('separates the lines of dropped block elements', () => {
    assert.equal(sanitizeHtml('<h1>Title</h1>text'), 'Title<br>text');
    assert.equal(sanitizeHtml('<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>'), 'a b<br>c');
  });

  // Quadratic work would make this test run for minutes: the runner's timeout catches it (no timed assertion).
  it('copes with huge hostile input', { timeout: 60_000 }, () => {
    for (const unit of ['<svg>', '</x>', '<b>', '<!--', '<a x="', '&#x', '<script>', '</', '<'.repeat(3) + 'a ']) {
      const out = sanitizeHtml(unit.repeat(50_000));
      assert.doesNotMatch(out, /<(svg|script|a)\b/i);
    }
    assert.doesNotMatch(sanitizeHtml('<svg>'.repeat(20_000) + '</x>'.repeat(20_000) + '<body>'.repeat(20_000)), /<(svg|body)\b/i);
  });
});

describe('offline transcript: HTML as plain text', () => {
  it('removes tags, turns blocks into lines, decodes entities', () => {
    assert.equal(htmlToText('<p>one</p><p>two <b>bold</b></p>three<br>four<div>five</div>'), 'one\ntwo bold\nthree\nfour\nfive');
    assert.equal(htmlToText('Tom &amp; Jerry &lt;3 &#x1F600;'), 'Tom & Jerry <3 😀');
    assert.equal(htmlToText('<ul><li>a</li><li>b</li></ul><ol><li>c</ol>'), '- a\n- b\n- c');
  });

  it('collapses whitespace as a browser does, except in <pre>', () => {
    assert.equal(htmlToText('  a \n\t b  '), 'a b');
    assert.equal(htmlToText('<pre>\n  x\n y</pre>z'), '  x\n y\nz');
  });

  it('leaves out what the HTML writer drops', () => {
    assert.equal(htmlToText('<style>p{}</style><script>x</script><h2>T</h2><table><tr><td>a</td><td>b</td></tr></table>'), 'T\na b');
  });

  it('is what messageText gives for text/html', () => {
    assert.equal(messageText(msg('text/html', '<p>Hi <b>Bob</b>,</p><p>call me</p>')), 'Hi Bob,\ncall me');
  });
});

describe('offline transcript: character references', () => {
  it('decodes numeric ones, with HTML\'s fixes', () => {
    assert.equal(decodeEntities('&#65;&#x42;&#X43;&#68'), 'ABCD');
    assert.equal(decodeEntities('&#0;&#xD800;&#x110000;&#99999999999;'), '\uFFFD'.repeat(4));
    assert.equal(decodeEntities('&#150;&#x80;'), '–€');
  });

  it('decodes named ones, legacy ones without ";" and leaves unknown ones', () => {
    assert.equal(decodeEntities('&copy; &copy2026 &amp &notin; &bogus; & ;'), '© ©2026 & &notin; &bogus; & ;');
  });
});

const CRLF = '\r\n';
function cpim(headers: string[], mime: string[], body: string | Uint8Array, eol = CRLF): Uint8Array {
  const head = utf8(headers.map((h) => h + eol).join('') + eol + mime.map((h) => h + eol).join('') + eol);
  const tail = typeof body === 'string' ? utf8(body) : body;
  return Uint8Array.from([...head, ...tail]);
}

describe('offline transcript: message/cpim', () => {
  const head = ['From: Alice <im:alice@example.com>', 'To: Bob <im:bob@example.com>'];

  it('unwraps text/plain, in its own charset', () => {
    assert.equal(messageText(msg('message/cpim', cpim(head, ['Content-Type: text/plain; charset=iso-8859-1'], Uint8Array.of(0x63, 0x61, 0x66, 0xe9)))), 'café');
  });

  it('unwraps text/html and sanitises it', () => {
    const t = render([msg('Message/CPIM', cpim(head, ['Content-Type: text/html', 'Content-ID: <1@x>'], '<b onclick=x>hi</b><script>alert(1)</script>'))]);
    assert.deepEqual(cells(t.html), ['<b>hi</b>']);
    assert.match(t.text, /Alice Example: hi\n$/);
  });

  it('shows the CPIM DateTime instead of the time of receipt', () => {
    const body = cpim([...head, 'DateTime: 2026-11-25T09:00:00-05:00'], ['Content-Type: text/plain'], 'sent earlier');
    const t = render([msg('message/cpim', body, new Date('2026-11-25T16:30:00Z'))]);
    assert.match(t.text, /^\[2026-11-25 14:00:00\] Alice Example: sent earlier$/m);
  });

  it('keeps the time of receipt when the DateTime is not a valid RFC 3339 time', () => {
    for (const bad of ['2026-02-30T10:00:00Z', '2026-11-25 25:00:00Z', 'yesterday', '2026-11-25T10:00:00']) {
      const t = render([msg('message/cpim', cpim([...head, `DateTime: ${bad}`], ['Content-Type: text/plain'], 'x'))]);
      assert.match(t.text, /^\[2026-11-25 10:02:03\]/m, bad);
    }
  });

  it('accepts bare LF line ends and folded MIME headers', () => {
    assert.equal(messageText(msg('message/cpim', cpim(head, ['Content-Type: text/plain;', ' charset=utf-16le'], Uint8Array.of(0x68, 0x00), '\n'))), 'h');
  });

  it('undoes base64 and quoted-printable', () => {
    assert.equal(messageText(msg('message/cpim', cpim(head, ['Content-Type: text/plain', 'Content-Transfer-Encoding: base64'], Buffer.from('héllo').toString('base64')))), 'héllo');
    assert.equal(messageText(msg('message/cpim', cpim(head, ['Content-Type: text/plain', 'Content-Transfer-Encoding: quoted-printable'], 'caf=C3=A9 =\r\nok'))), 'café ok');
  });

  it('unwraps CPIM inside CPIM', () => {
    const inner = cpim(head, ['Content-Type: text/html'], '<i>deep</i>');
    assert.equal(messageText(msg('message/cpim', cpim(head, ['Content-Type: message/cpim'], inner))), 'deep');
  });

  it('shows malformed CPIM as its raw text, escaped', () => {
    const noBlankLine = 'From: <im:a@x>\r\nContent-Type: text/html\r\n<script>alert(1)</script>';
    const t = render([msg('message/cpim', noBlankLine)]);
    assert.equal(cells(t.html)[0], 'From: &lt;im:a@x&gt;<br>\nContent-Type: text/html<br>\n&lt;script&gt;alert(1)&lt;/script&gt;');
    assert.equal(messageText(msg('message/cpim', 'just some text')), 'just some text');
    assert.equal(messageText(msg('message/cpim', cpim(head, ['X-No-Type: 1'], 'body'))).split('\n').at(-1), 'body');
    assert.equal(messageText(msg('message/cpim', cpim(['not a header line'], ['Content-Type: text/plain'], 'b'))).split('\n')[0], 'not a header line');
    assert.equal(parseCpim(cpim(head, ['Content-Type: text/plain', 'Content-Transfer-Encoding: x-uuencode'], 'b')), undefined);
  });

  it('says when the wrapped type cannot be shown', () => {
    assert.equal(messageText(msg('message/cpim', cpim(head, ['Content-Type: image/png'], 'PNG'))), '[a message of type image/png that cannot be shown]');
  });

  it('parses the parts', () => {
    const parsed = parseCpim(cpim([...head, 'Subject:;lang=fr beau temps', 'MyFeatures.Option: x', 'DateTime: 2000-12-13T13:40:00-08:00'], ['Content-type: text/plain'], 'Here'));
    assert.ok(parsed !== undefined);
    assert.deepEqual(parsed.headers.map((h) => h.name), ['From', 'To', 'Subject', 'MyFeatures.Option', 'DateTime']);
    assert.equal(parsed.headers[2]?.value, ';lang=fr beau temps');
    assert.equal(parsed.contentType, 'text/plain');
    assert.equal(new TextDecoder().decode(parsed.body), 'Here');
    assert.equal(cpimDateTime(parsed)?.toISOString(), '2000-12-13T21:40:00.000Z');
  });
});

describe('offline transcript: RFC 3339', () => {
  it('reads date-times with Z or an offset, in any case, with fractions', () => {
    assert.equal(parseRfc3339('1985-04-12T23:20:50.52Z')?.toISOString(), '1985-04-12T23:20:50.520Z');
    assert.equal(parseRfc3339('1996-12-19t16:39:57-08:00')?.toISOString(), '1996-12-20T00:39:57.000Z');
    assert.equal(parseRfc3339('1990-12-31T15:59:60-08:00')?.toISOString(), '1990-12-31T23:59:59.999Z');
    assert.equal(parseRfc3339('2028-02-29T00:00:00z')?.toISOString(), '2028-02-29T00:00:00.000Z');
  });

  it('refuses what is not one', () => {
    for (const bad of ['2026-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-11-25T24:00:00Z', '2026-11-25T10:60:00Z', '2026-11-25T10:00:00+25:00', '2026-11-25', '26-11-25T10:00:00Z', '2026-11-25T10:00:00+0100', '']) {
      assert.equal(parseRfc3339(bad), undefined, bad);
    }
  });
});

describe('offline transcript: the transcript', () => {
  it('writes exactly this plain text for a simple conversation', () => {
    const t = render([msg('text/plain', 'hello'), msg('text/plain;charset=UTF-8', 'are you there?\nping me', new Date('2026-11-25T10:04:59Z'))]);
    assert.equal(
      t.text,
      'Conversation between Alice Example and Bob Example (times in UTC)\n' +
        '\n' +
        '[2026-11-25 10:02:03] Alice Example: hello\n' +
        '[2026-11-25 10:04:59] Alice Example: are you there?\n' +
        '    ping me\n',
    );
  });

  it('writes a small complete HTML document: heading, then one row per message', () => {
    const t = render([msg('text/plain', 'hello')]);
    assert.ok(t.html.startsWith('<html><head><meta charset="utf-8"></head><body>'));
    assert.ok(t.html.trimEnd().endsWith('</body></html>'));
    assert.match(t.html, /<strong>Conversation between Alice Example and Bob Example<\/strong><br>2026-11-25, times in UTC/);
    assert.match(t.html, /<tr><td[^>]*>10:02:03<\/td><td[^>]*>Alice Example<\/td><td[^>]*>hello<\/td><\/tr>/);
    assertBalanced(t.html);
  });

  it('keeps three messages in the given order, even when their times are not', () => {
    const t = render([
      msg('text/plain', 'first', new Date('2026-11-25T10:05:00Z')),
      msg('text/html', '<b>second</b>', new Date('2026-11-25T10:01:00Z')),
      msg('text/plain', 'third', new Date('2026-11-25T10:03:00Z')),
    ]);
    assert.deepEqual(cells(t.html), ['first', '<b>second</b>', 'third']);
    assert.deepEqual(stamps(t.html), ['10:05:00', '10:01:00', '10:03:00']);
    assert.deepEqual(t.text.split('\n').slice(2, 5), ['[2026-11-25 10:05:00] Alice Example: first', '[2026-11-25 10:01:00] Alice Example: second', '[2026-11-25 10:03:00] Alice Example: third']);
  });

  it('shows the date on every row when the conversation spans days', () => {
    const t = render([msg('text/plain', 'late', new Date('2026-11-25T23:59:59Z')), msg('text/plain', 'early', new Date('2026-11-26T00:00:01Z'))]);
    assert.deepEqual(stamps(t.html), ['2026-11-25 23:59:59', '2026-11-26 00:00:01']);
    assert.match(t.html, /<br>times in UTC<\/p>/);
  });

  it('formats times in the given time zone, where the days may fall differently', () => {
    const messages = [msg('text/plain', 'late', new Date('2026-11-25T23:59:59Z')), msg('text/plain', 'early', new Date('2026-11-26T00:00:01Z'))];
    const paris = render(messages, 'Europe/Paris');
    assert.deepEqual(stamps(paris.html), ['00:59:59', '01:00:01']);
    assert.match(paris.html, /2026-11-26, times in Europe\/Paris/);
    assert.match(paris.text, /^\[2026-11-26 00:59:59\] Alice Example: late$/m);
    const newYork = render([msg('text/plain', 'summer', new Date('2026-07-01T12:00:00Z')), msg('text/plain', 'winter', new Date('2026-12-01T12:00:00Z'))], 'America/New_York');
    assert.deepEqual(stamps(newYork.html), ['2026-07-01 08:00:00', '2026-12-01 07:00:00']);
  });

  it('falls back to UTC for an unknown time zone, and copes with an invalid Date', () => {
    const t = render([msg('text/plain', 'x'), msg('text/plain', 'y', new Date(Number.NaN))], 'Mars/Olympus_Mons');
    assert.match(t.text, /\(times in UTC\)/);
    assert.deepEqual(stamps(t.html), ['10:02:03', '--:--:--']);
    assert.match(t.text, /^\[unknown time\] Alice Example: y$/m);
  });

  it('shows an empty message as (empty message)', () => {
    for (const m of [msg('text/plain', ''), msg('text/plain', ' \r\n\t '), msg('text/html', '<p><br></p><script>x</script>'), msg('message/cpim', cpim(['From: <im:a@x>'], ['Content-Type: text/plain'], ''))]) {
      assert.equal(messageText(m), '(empty message)');
      assert.deepEqual(cells(render([m]).html), ['<i>(empty message)</i>']);
    }
  });

  it('says when a message cannot be shown, escaping the type', () => {
    assert.equal(messageText(msg('application/octet-stream', 'x')), '[a message of type application/octet-stream that cannot be shown]');
    assert.equal(messageText(msg('image/PNG; name=x.png', 'x')), '[a message of type image/png that cannot be shown]');
    const t = render([msg('<script>alert(1)</script>', 'x')]);
    assert.deepEqual(cells(t.html), ['<i>[a message of type &lt;script&gt;alert(1)&lt;/script&gt; that cannot be shown]</i>']);
  });

  it('escapes the names, falls back to the address, and keeps names on one line', () => {
    const t = renderTranscript({ sender: { name: '<b>Mallory</b>\n[2026-01-01 00:00:00] Bob', address: 'sip:m@x' }, recipient: { name: '', address: 'sip:bob@example.com' }, messages: [msg('text/plain', 'hi')] });
    assert.match(t.html, /&lt;b&gt;Mallory&lt;\/b&gt; \[2026-01-01 00:00:00\] Bob/);
    assert.match(t.html, /and sip:bob@example\.com</);
    assert.equal(t.text.split('\n').length, 4);
  });

  it('does not let message text start a line of its own in the plain text', () => {
    const t = render([msg('text/plain', 'hi\n[2026-11-25 10:03:00] Bob Example: forged')]);
    assert.match(t.text, /\n {4}\[2026-11-25 10:03:00\] Bob Example: forged\n$/);
  });

  it('keeps one message\'s open tags out of the next message', () => {
    const t = render([msg('text/html', '<b><i><ul><li>open'), msg('text/html', '</li></ul></i></b></td></tr></table>next')]);
    assert.deepEqual(cells(t.html), ['<b><i><ul><li>open</li></ul></i></b>', 'next']);
    assertBalanced(t.html);
  });

  it('says so when there are no messages', () => {
    const t = render([]);
    assert.match(t.html, /\(no messages\)/);
    assert.match(t.text, /\(no messages\)\n$/);
  });
});

describe('offline transcript: fuzz', () => {


  const SEEDS = [
    '<scr<script>ipt>alert(1)</script>',
    '<a href="javascript:alert(1)">x</a>',
    '<img src=x onerror=alert(1)>',
    '<svg onload=alert(1)><script>alert(2)</script></svg>',
    '<b title="a>b" onclick=\'c>d\'>t</b>',
    '<style>*{}</style><p>para<div>div</div>',
    '<!-- <script> --><![CDATA[<b>]]><?pi x?>',
    '&lt;script&gt;&#x3C;b&#62;&amp;lt;&copy',
    '<ul><li>a<li><ol><li>b</ul>',
    '<textarea><script>x</script></textarea><xmp><b>y</b></xmp>',
    '<head><title>t</title><body onload=x>b</body>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data=javascript:alert(1)><template><b>t</b></template></object>',
    '</ <//> </b <b/ <br/> <pre>\n x</pre>',
    '<math><style><img src=x onerror=alert(1)></style></math>',
  ];
  const SNIPPETS = ['<', '>', '</', '/>', '"', "'", '=', ' ', '\n', '&', ';', '#', 'x3C', '!--', '-->', '<!', '<?', ']]>', 'script', 'style', 'b', 'img', 'svg', ' onerror=', ' onload=alert(1)', 'javascript:', 'href=', '<br>', '</p>', '<li>', '\0', '\u00e9', 'ScRiPt', 'iframe', 'textarea', '<title>', '&#', '&amp;'];

  function mutate(input: string, random: () => number): string {
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    const at = (s: string): number => Math.floor(random() * (s.length + 1));
    let s = input;
    const ops = 1 + Math.floor(random() * 6);
    for (let k = 0; k < ops; k++) {
      const i = at(s);
      const j = Math.min(s.length, i + Math.floor(random() * 12));
      switch (Math.floor(random() * 6)) {
        case 0: s = s.slice(0, i) + pick(SNIPPETS) + s.slice(i); break;
        case 1: s = s.slice(0, i) + s.slice(j); break;
        case 2: s = s.slice(0, i) + s.slice(i, j).repeat(2) + s.slice(j); break;
        case 3: s = s.slice(0, i) + String.fromCharCode(32 + Math.floor(random() * 95)) + s.slice(i + 1); break;
        case 4: s = s.slice(0, i) + pick(SEEDS) + s.slice(i); break;
        default: s = s.slice(0, i) + s.slice(i, j).toUpperCase() + s.slice(j); break;
      }
    }
    return s;
  }

  it('2,000 mutated HTML inputs never throw and never let a foreign tag, a handler or javascript: through', () => {
    const random = prng(20261125);
    for (let n = 0; n < 2000; n++) {
      const input = mutate(SEEDS[n % SEEDS.length] as string, random);
      const context = `iteration ${n}, input ${JSON.stringify(input)}`;
      const fragment = sanitizeHtml(input);
      assert.doesNotMatch(fragment, FOREIGN_TAG_IN_FRAGMENT, context);
      assertBalanced(fragment);
      assert.equal(sanitizeHtml(fragment), fragment, `not stable: ${context}`);
      assert.equal(typeof htmlToText(input), 'string');
      const t = render([msg('text/html', input), msg('message/cpim', cpim(['From: <im:a@x>'], ['Content-Type: text/html'], input)), msg('text/plain', input)]);
      assert.doesNotMatch(t.html, FOREIGN_TAG_IN_DOCUMENT, context);
      assertNoActiveContent(t.html);
      assertBalanced(t.html);
      assert.equal(cells(t.html).length, 3, context);
    }
  });
});
