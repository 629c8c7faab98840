// The SDK's presence parts without a server: MIME multipart (RFC 2046), the resource-list NOTIFY
// body (RFC 4662 §5) as Parley's server builds it (src/presence/lists.ts) and as other notifiers
// may (partial state, terminated instances, no start parameter), and the PUBLISH sequence of the
// publisher (RFC 3903 §4: initial, modify, refresh on 412, remove) over a scripted request function.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientError } from '../../src/client/errors.ts';
import { parseMultipart } from '../../src/client/multipart.ts';
import { addressOfUri, PresencePublisher, presenceStateNamed } from '../../src/client/presence.ts';
import { warningTextOf } from '../../src/client/warning.ts';
import { parseListNotify } from '../../src/client/rlmi.ts';
import type { RequestOptions, ResponseInfo } from '../../src/client/types.ts';
import { buildListDocument } from '../../src/presence/lists.ts';
import { buildPidf, parsePidf } from '../../src/presence/pidf.ts';
import { Headers } from '../../src/sip/index.ts';

const isInvalid = (e: unknown) => e instanceof ClientError && e.code === 'INVALID_BODY';
const D = 'parley.test';

describe('parseMultipart (RFC 2046 §5.1.1)', () => {
  it('splits parts, skipping preamble and epilogue, with CRLF or LF line ends and folded headers', () => {
    const body = 'preamble\r\n--b1\r\nContent-Type: text/plain\r\nContent-ID:\r\n <one@x>\r\n\r\nfirst\r\nline\r\n--b1 \r\n\r\nno headers\r\n--b1--\r\nepilogue';
    const parts = parseMultipart(body, 'b1');
    assert.deepEqual(parts.map((p) => [p.contentType, p.contentId, p.body]), [['text/plain', 'one@x', 'first\r\nline'], ['text/plain', undefined, 'no headers']]);
    const lf = parseMultipart('--b\nContent-Type: a/b\n\nx\n--b--\n', 'b');
    assert.deepEqual(lf.map((p) => [p.contentType, p.body]), [['a/b', 'x']]);
  });

  it('refuses a body without its boundary or close delimiter, and bad part headers', () => {
    assert.throws(() => parseMultipart('no boundary here', 'b'), isInvalid);
    assert.throws(() => parseMultipart('--b\r\nContent-Type: a/b\r\n\r\nx\r\n', 'b'), isInvalid);
    assert.throws(() => parseMultipart('--b\r\nnot a header\r\n\r\nx\r\n--b--', 'b'), isInvalid);
    assert.throws(() => parseMultipart('--\r\n', ''), isInvalid);
  });
});

describe('parseListNotify (RFC 4662 §5)', () => {
  const members = [
    { uri: `sip:bob@${D}`, name: 'Bob Brown', pidf: buildPidf(`sip:bob@${D}`, { state: 'Busy', note: 'in a meeting <3 & more' }) },
    { uri: `sip:carol@${D}`, name: null, pidf: buildPidf(`sip:carol@${D}`, { state: 'Offline', note: '' }) },
    { uri: `sip:dave@${D}`, name: 'Dave', pidf: buildPidf(`sip:dave@${D}`, { state: 'Do Not Disturb', note: '' }) },
  ];

  it("reads the server's own document: every member's state, note and name", () => {
    const doc = buildListDocument({ listUri: `sip:alice+contacts@${D}`, domain: D, version: 4, seed: 'sub-1', members });
    const update = parseListNotify(doc.contentType, doc.body);
    assert.deepEqual([update.uri, update.version, update.fullState], [`sip:alice+contacts@${D}`, 4, true]);
    assert.deepEqual(
      update.resources.map((r) => [addressOfUri(r.uri), r.displayName, r.presence?.state, r.presence?.note, r.ended]),
      [
        [`bob@${D}`, 'Bob Brown', 'Busy', 'in a meeting <3 & more', false],
        [`carol@${D}`, undefined, 'Offline', '', false],
        [`dave@${D}`, 'Dave', 'Do Not Disturb', '', false],
      ],
    );
  });

  it('reads partial state, a pending member without state and a terminated one; the root is the first part without start', () => {
    const rlmi = `<?xml version="1.0"?>
<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:alice+contacts@${D}" version="7" fullState="false">
  <resource uri="sip:bob@${D}"><name xml:lang="en">Bob</name><instance id="1" state="active" cid="b@x"/><instance id="2" state="active" cid="b2@x"/></resource>
  <resource uri="sip:erin@${D}"><instance id="3" state="pending"/></resource>
  <resource uri="sip:frank@${D}"><instance id="4" state="terminated" reason="noresource"/></resource>
</list>`;
    const body = [
      '--zz', 'Content-Type: application/rlmi+xml', '', rlmi,
      '--zz', 'Content-Type: application/pidf+xml', 'Content-ID: <b@x>', '', buildPidf(`sip:bob@${D}`, { state: 'Away', note: 'lunch' }),
      '--zz', 'Content-Type: application/pidf+xml', 'Content-ID: <b2@x>', '', buildPidf(`sip:bob@${D}`, { state: 'Available', note: '' }),
      '--zz--', '',
    ].join('\r\n');
    const update = parseListNotify('multipart/related; type="application/rlmi+xml"; boundary=zz', body);
    assert.equal(update.fullState, false);
    assert.deepEqual(update.resources.map((r) => [r.uri, r.presence?.state, r.ended]), [
      [`sip:bob@${D}`, 'Available', false], // two devices: the most available wins, as the server aggregates
      [`sip:erin@${D}`, undefined, false],
      [`sip:frank@${D}`, undefined, true],
    ]);
  });

  it('refuses what is not an RLMI multipart body', () => {
    const doc = buildListDocument({ listUri: `sip:alice+contacts@${D}`, domain: D, version: 0, seed: 's', members });
    assert.throws(() => parseListNotify('application/pidf+xml', doc.body), isInvalid);
    assert.throws(() => parseListNotify('multipart/related;type="application/rlmi+xml"', doc.body), isInvalid, 'no boundary');
    assert.throws(() => parseListNotify(doc.contentType.replace(/start="<[^>]+>"/, 'start="<nope@x>"'), doc.body), isInvalid, 'start names no part');
    assert.throws(() => parseListNotify(doc.contentType, doc.body.replace('version="0"', 'version="-1"')), isInvalid);
    assert.throws(() => parseListNotify(doc.contentType, doc.body.replace('fullState="true"', '')), isInvalid);
    assert.throws(() => parseListNotify(doc.contentType, doc.body.replace('<list ', '<lust ').replace('</list>', '</lust>')), isInvalid);
    assert.throws(() => parseListNotify(doc.contentType, doc.body.replace(`entity="sip:bob@${D}"`, `entity="sip:mallory@${D}"`)), isInvalid, "a member's document must be that member's");
  });
});

describe('presence helpers', () => {
  it('names states as people type them, and addresses as the SDK writes them', () => {
    assert.deepEqual(['busy', 'DND', 'do-not-disturb', 'be right back', 'brb', 'away', 'available', 'offline', 'Appear Offline', 'sleepy'].map(presenceStateNamed), ['Busy', 'Do Not Disturb', 'Do Not Disturb', 'Be Right Back', 'Be Right Back', 'Away', 'Available', 'Offline', 'Offline', undefined]);
    assert.equal(addressOfUri(`<sip:bob@${D};transport=tcp>`), `bob@${D}`);
    assert.equal(addressOfUri(`sips:carol@${D}`), `carol@${D}`);
  });
});

/** A scripted server: each PUBLISH is recorded and answered by the next scripted status. */
function scripted(answers: Array<{ status: number; headers?: Record<string, string> }>) {
  const sent: Array<{ method: string; uri: string; headers: Record<string, string>; body?: string }> = [];
  const request = async (method: string, uri: string, options: RequestOptions): Promise<ResponseInfo> => {
    sent.push({ method, uri, headers: { ...options.headers }, ...(options.body === undefined ? {} : { body: String(options.body) }) });
    const answer = answers.shift();
    if (answer === undefined) throw new Error('no answer scripted');
    const headers = new Headers();
    for (const [k, v] of Object.entries(answer.headers ?? {})) headers.append(k, v);
    return { status: answer.status, reason: 'R', headers, response: undefined as never };
  };
  return { sent, request };
}

describe('PresencePublisher (RFC 3903 §4)', () => {
  const aor = `sip:alice@${D}`;

  it('publishes, modifies with SIP-If-Match, publishes anew after 412, and removes with Expires 0', async () => {
    const s = scripted([
      { status: 200, headers: { 'SIP-ETag': 'e1', Expires: '600' } },
      { status: 200, headers: { 'SIP-ETag': 'e2', Expires: '600' } },
      { status: 412 },
      { status: 200, headers: { 'SIP-ETag': 'e3', Expires: '600' } },
      { status: 200, headers: { Expires: '0' } },
    ]);
    const errors: unknown[] = [];
    const publisher = new PresencePublisher({ request: s.request, aor, error: (e) => errors.push(e) });
    assert.deepEqual(await publisher.publish({ state: 'Busy', note: 'in a meeting' }, 600), { status: 200, reason: 'R', etag: 'e1', expires: 600 });
    assert.deepEqual(await publisher.publish({ state: 'Away' }, 600), { status: 200, reason: 'R', etag: 'e2', expires: 600 });
    assert.equal((await publisher.publish({ state: 'Available' }, 600)).etag, 'e3');
    await publisher.remove();
    await publisher.remove(); // nothing left: no request
    assert.deepEqual(s.sent.map((r) => [r.method, r.uri, r.headers.event, r.headers.expires, r.headers['sip-if-match'], r.body === undefined ? '-' : parsePidf(r.body, aor).state]), [
      ['PUBLISH', aor, 'presence', '600', undefined, 'Busy'],
      ['PUBLISH', aor, 'presence', '600', 'e1', 'Away'],
      ['PUBLISH', aor, 'presence', '600', 'e2', 'Available'],
      ['PUBLISH', aor, 'presence', '600', undefined, 'Available'],
      ['PUBLISH', aor, 'presence', '0', 'e3', '-'],
    ]);
    assert.equal(parsePidf(s.sent[0]!.body!, aor).note, 'in a meeting');
    assert.equal(publisher.current, null);
    assert.deepEqual(errors, []);
  });

  it('raises Min-Expires after 423, and fails with the Warning text on a refusal', async () => {
    const s = scripted([
      { status: 423, headers: { 'Min-Expires': '60' } },
      { status: 200, headers: { 'SIP-ETag': 'e1', Expires: '60' } },
      { status: 403, headers: { Warning: '399 parley.test "alice may not publish the presence of bob"' } },
    ]);
    const publisher = new PresencePublisher({ request: s.request, aor, error: () => {} });
    assert.equal((await publisher.publish({ state: 'Available' }, 10)).expires, 60);
    assert.deepEqual(s.sent.map((r) => r.headers.expires), ['10', '60']);
    await assert.rejects(publisher.publish({ state: 'Away' }), (e: unknown) => e instanceof ClientError && e.code === 'PUBLISH_FAILED' && e.status === 403 && /may not publish/.test(e.message));
    await assert.rejects(publisher.publish({ state: 'Sleepy' as never }), (e: unknown) => e instanceof ClientError && e.code === 'INVALID_ARGUMENT');
    publisher.stop();
  });

  it('after a reconnection (restore) modifies the publication the server kept, and nothing when none was live', async () => {
    const s = scripted([
      { status: 200, headers: { 'SIP-ETag': 'e1', Expires: '600' } },
      { status: 200, headers: { 'SIP-ETag': 'e2', Expires: '600' } },
    ]);
    const publisher = new PresencePublisher({ request: s.request, aor, error: () => {} });
    assert.equal(publisher.restore(), null, 'nothing published yet');
    await publisher.publish({ state: 'Busy', note: 'call' }, 600);
    publisher.stop(); // the connection went; the server keeps the publication until it expires
    assert.equal(publisher.current, null);
    assert.equal((await publisher.restore())?.etag, 'e2');
    assert.deepEqual([s.sent[1]!.headers['sip-if-match'], parsePidf(s.sent[1]!.body!, aor)], ['e1', { state: 'Busy', note: 'call' }], 'the kept publication is modified (RFC 3903 §4.4), not doubled');
    assert.deepEqual(publisher.current, { state: 'Busy', note: 'call' });
    assert.equal(publisher.restore(), null, 'once');
    publisher.stop();
  });

  it('publishes anew after a reconnection when the kept publication expired meanwhile (412)', async () => {
    const s = scripted([
      { status: 200, headers: { 'SIP-ETag': 'e1', Expires: '600' } },
      { status: 412 },
      { status: 200, headers: { 'SIP-ETag': 'e3', Expires: '600' } },
    ]);
    const publisher = new PresencePublisher({ request: s.request, aor, error: () => {} });
    await publisher.publish({ state: 'Away' }, 600);
    publisher.stop();
    assert.equal((await publisher.restore())?.etag, 'e3');
    assert.deepEqual(s.sent.map((r) => r.headers['sip-if-match']), [undefined, 'e1', undefined]);
    publisher.stop();
  });

  it('reads the text of a Warning header', () => {
    const headers = new Headers();
    headers.append('Warning', '399 parley.test "bob is offline; the message \\"hi\\" will be delivered"');
    assert.equal(warningTextOf({ headers } as ResponseInfo), 'bob is offline; the message "hi" will be delivered');
  });
});
