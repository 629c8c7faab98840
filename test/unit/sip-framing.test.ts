import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SIP_PARSE_ERRORS, SipParseError, StreamFramer, sipLimits } from '../../src/sip/index.ts';
import type { FrameEvent, SipMessage } from '../../src/sip/index.ts';

const E = SIP_PARSE_ERRORS;

function message(n: number, body = `body ${n} ☃`, extra: string[] = []): Buffer {
  const lines = [
    `MESSAGE sip:bob@b SIP/2.0`,
    `Via: SIP/2.0/TCP h;branch=z9hG4bK${n}`,
    'From: "Ünïcode Ålice" <sip:a@b>;tag=1',
    'To: <sip:bob@b>',
    `Call-ID: call-${n}`,
    `CSeq: ${n} MESSAGE`,
    ...extra,
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body);
}

function feed(framer: StreamFramer, data: Buffer, chunk: number): FrameEvent[] {
  const out: FrameEvent[] = [];
  for (let at = 0; at < data.length; at += chunk) out.push(...framer.push(data.subarray(at, at + chunk)));
  return out;
}

function messages(events: FrameEvent[]): SipMessage[] {
  return events.flatMap((e) => (e.type === 'message' ? [e.message] : []));
}

function kinds(events: FrameEvent[]): string[] {
  return events.map((e) => (e.type === 'error' ? `error:${e.error.code}:${e.fatal ? 'fatal' : 'ok'}` : e.type));
}

describe('StreamFramer', () => {
  it('reads several messages from one chunk', () => {
    const events = new StreamFramer().push(Buffer.concat([message(1), message(2), message(3, '')]));
    assert.deepEqual(kinds(events), ['message', 'message', 'message']);
    assert.deepEqual(messages(events).map((m) => m.headers.get('call-id')), ['call-1', 'call-2', 'call-3']);
    assert.equal(messages(events)[0]?.body.toString(), 'body 1 ☃');
  });

  it('reads a message split anywhere, even byte by byte, inside CRLF CRLF or a UTF-8 character', () => {
    const data = Buffer.concat([message(1), message(2, 'x'.repeat(1000) + '日本語')]);
    for (const size of [1, 2, 3, 5, 7, 64, 1000]) {
      const framer = new StreamFramer();
      const got = messages(feed(framer, data, size));
      assert.equal(got.length, 2, `chunk size ${size}`);
      assert.equal(got[0]?.headers.get('from'), '"Ünïcode Ålice" <sip:a@b>;tag=1');
      assert.equal(got[1]?.body.toString().endsWith('日本語'), true);
      assert.equal(framer.buffered, 0);
    }
    // every split point of one message into two chunks
    const one = message(7);
    for (let cut = 0; cut <= one.length; cut++) {
      const framer = new StreamFramer();
      const got = messages([...framer.push(one.subarray(0, cut)), ...framer.push(one.subarray(cut))]);
      assert.equal(got.length, 1, `cut at ${cut}`);
      assert.equal(got[0]?.body.toString(), 'body 7 ☃');
    }
  });

  it('reports CRLF CRLF between messages as a ping and a lone CRLF as a pong (RFC 5626 §3.5.1)', () => {
    const framer = new StreamFramer();
    assert.deepEqual(kinds(framer.push(Buffer.from('\r\n\r\n'))), ['ping']);
    assert.deepEqual(kinds(framer.push(Buffer.from('\r\n'))), ['pong']);
    assert.deepEqual(kinds(framer.push(Buffer.concat([Buffer.from('\r\n\r\n'), message(1), Buffer.from('\r\n\r\n\r\n'), message(2)]))), ['ping', 'message', 'ping', 'pong', 'message']);
    // a ping whose last LF comes later is still one ping
    assert.deepEqual(kinds(framer.push(Buffer.from('\r\n\r'))), []);
    assert.deepEqual(kinds(framer.push(Buffer.from('\n'))), ['ping']);
    assert.deepEqual(kinds(framer.push(Buffer.from('\r'))), []);
    assert.deepEqual(kinds(framer.push(Buffer.from('\n'))), ['pong']);
    assert.deepEqual(kinds(framer.push(Buffer.from('\n\n'))), [], 'bare LFs between messages are ignored');
  });

  it('copies bodies: the caller may reuse its chunk', () => {
    const chunk = message(1, 'original');
    const got = messages(new StreamFramer().push(chunk));
    chunk.fill(0x41);
    assert.equal(got[0]?.body.toString(), 'original');
  });

  it('treats a missing Content-Length as fatal and ignores everything after', () => {
    const framer = new StreamFramer();
    const noLength = Buffer.from(message(1).toString().replace(/Content-Length: \d+\r\n/, ''));
    const events = framer.push(Buffer.concat([message(2), noLength, message(3)]));
    assert.deepEqual(kinds(events), ['message', `error:${E.MISSING_CONTENT_LENGTH}:fatal`]);
    const err = events[1]?.type === 'error' ? events[1].error : undefined;
    assert.equal(err?.isRequest, true);
    assert.equal(err?.headers?.get('call-id'), 'call-1');
    assert.equal(framer.closed, true);
    assert.deepEqual(framer.push(message(4)), []);
  });

  it('skips the body of a message over the body limit (413) and goes on', () => {
    const framer = new StreamFramer(sipLimits({ maxBody: 100 }));
    const big = message(1, 'b'.repeat(5000));
    const events = feed(framer, Buffer.concat([big, message(2)]), 700);
    assert.deepEqual(kinds(events), [`error:${E.BODY_TOO_LARGE}:ok`, 'message']);
    const err = events[0]?.type === 'error' ? events[0].error : undefined;
    assert.equal(err?.status, 413);
    assert.equal(err?.headers?.get('cseq'), '1 MESSAGE');
    assert.equal(messages(events)[0]?.headers.get('call-id'), 'call-2');
    assert.ok(framer.buffered < 1000, 'skipped bytes are not kept');
  });

  it('reports a bad header section as a non-fatal error when its Content-Length can still be read', () => {
    const framer = new StreamFramer();
    const noFrom = Buffer.from(message(1, 'abc').toString().replace(/From: .*\r\n/, ''));
    const badCSeq = Buffer.from(message(2, 'defg').toString().replace('CSeq: 2 MESSAGE', 'CSeq: 2 INVITE'));
    const garbled = Buffer.from('garbage line\r\nl: 5\r\n\r\nhello');
    const events = framer.push(Buffer.concat([noFrom, badCSeq, garbled, message(3)]));
    assert.deepEqual(kinds(events), [`error:${E.MISSING_HEADER}:ok`, `error:${E.BAD_CSEQ}:ok`, `error:${E.BAD_START_LINE}:ok`, 'message']);
  });

  it('is fatal when the Content-Length of a bad header section cannot be trusted', () => {
    for (const length of ['Content-Length: abc', 'Content-Length: -1', 'Content-Length: 5\r\nContent-Length: 6']) {
      const framer = new StreamFramer();
      const bad = Buffer.from(message(1).toString().replace(/Content-Length: \d+/, length));
      const events = framer.push(Buffer.concat([bad, message(2)]));
      assert.deepEqual(kinds(events), [`error:${E.BAD_CONTENT_LENGTH}:fatal`], length);
    }
  });

  it('fails fast on an over-long line or header section, without waiting for its end', () => {
    const limits = sipLimits({ maxStartLine: 100, maxHeaderLine: 200, maxHeaderBytes: 1000 });
    let framer = new StreamFramer(limits);
    let events = framer.push(Buffer.from(`INVITE sip:${'a'.repeat(200)}`));
    assert.deepEqual(kinds(events), [`error:${E.START_LINE_TOO_LONG}:fatal`]);
    assert.equal(events[0]?.type === 'error' && events[0].error.status, 414);

    framer = new StreamFramer(limits);
    events = feed(framer, Buffer.from(`MESSAGE sip:b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nSubject: ${'s'.repeat(500)}`), 50);
    assert.deepEqual(kinds(events), [`error:${E.HEADER_TOO_LONG}:fatal`]);
    assert.equal(events[0]?.type === 'error' && events[0].error.headers?.get('via'), 'SIP/2.0/TCP h;branch=z9hG4bK1');

    framer = new StreamFramer(limits);
    events = feed(framer, Buffer.from('MESSAGE sip:b SIP/2.0\r\n' + 'X-Pad: 0123456789\r\n'.repeat(100)), 64);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.type === 'error' && events[0].fatal, true);
    assert.equal(events[0]?.type === 'error' && events[0].error.status, 513);
  });

  it('reports garbage and binary junk as errors, never throwing', () => {
    const framer = new StreamFramer();
    const events = framer.push(Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', 'latin1'));
    assert.equal(events.length, 1);
    assert.ok(events[0]?.type === 'error' && events[0].error instanceof SipParseError);
    const http = new StreamFramer().push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(http[0]?.type, 'error');
  });

  it('searches each byte once: a large header section in tiny chunks and a large body stay fast', () => {
    const limits = sipLimits({ maxHeaderBytes: 200_000, maxHeaderCount: 10_000, maxBody: 4 * 1024 * 1024 });
    const pad = Array.from({ length: 4000 }, (_, i) => `X-Pad-${i}: ${'v'.repeat(30)}`);
    const heavy = message(1, 'z'.repeat(3 * 1024 * 1024), pad);
    const framer = new StreamFramer(limits);
    const started = performance.now();
    let got = 0;
    const head = heavy.indexOf('\r\n\r\n') + 4;
    for (let at = 0; at < head; at += 7) got += messages(framer.push(heavy.subarray(at, Math.min(at + 7, head)))).length;
    for (let at = head; at < heavy.length; at += 1000) got += messages(framer.push(heavy.subarray(at, at + 1000))).length;
    const elapsed = performance.now() - started;
    assert.equal(got, 1);
    assert.ok(elapsed < 3000, `took ${elapsed.toFixed(0)} ms`);
    assert.equal(framer.buffered, 0);
  });
});

describe('StreamFramer: what a connection holds (for the transport guard)', () => {
  it('says when a message has begun and not ended, through head, body and a skipped body', () => {
    const framer = new StreamFramer(sipLimits({ maxBody: 100 }));
    const whole = message(1, 'x'.repeat(50));
    assert.equal(framer.midMessage, false);
    framer.push(whole.subarray(0, 20));
    assert.equal(framer.midMessage, true, 'half a start line');
    framer.push(whole.subarray(20, whole.length - 10));
    assert.equal(framer.midMessage, true, 'in the body');
    assert.deepEqual(kinds(framer.push(whole.subarray(whole.length - 10))), ['message']);
    assert.equal(framer.midMessage, false);
    assert.deepEqual(kinds(framer.push(Buffer.from('\r\n\r\n'))), ['ping']);
    assert.equal(framer.midMessage, false, 'a keep-alive is not a message');
    const big = message(2, 'y'.repeat(150));
    assert.deepEqual(kinds(framer.push(big.subarray(0, big.length - 40))), [`error:${E.BODY_TOO_LARGE}:ok`]);
    assert.equal(framer.midMessage, true, 'a refused body still being skipped');
    assert.equal(framer.buffered, 0, 'a skipped body is not kept');
    assert.deepEqual(kinds(framer.push(Buffer.concat([big.subarray(big.length - 40), message(3)]))), ['message']);
    assert.equal(framer.midMessage, false);
  });

  it('holds a half-sent body in a buffer the size of the body, not twice it', () => {
    const framer = new StreamFramer(sipLimits({ maxBody: 64 * 1024 }));
    const whole = message(1, 'b'.repeat(60 * 1024));
    const head = whole.indexOf('\r\n\r\n') + 4;
    framer.push(whole.subarray(0, head + 1000));
    assert.equal(framer.buffered, 1000);
    assert.equal(framer.held, 60 * 1024, 'room for the body, and no more');
    for (let at = head + 1000; at < whole.length - 1; at += 4096) framer.push(whole.subarray(at, Math.min(at + 4096, whole.length - 1)));
    assert.equal(framer.held, 60 * 1024, 'filled without growing');
    assert.deepEqual(kinds(framer.push(whole.subarray(whole.length - 1))), ['message']);
    assert.equal(framer.buffered, 0);
  });
});
