// /api/conversations against a running `parley serve` (issue 13): a real offline MESSAGE becomes a
// Missed Conversation after a short pickup delay; the web API lists it (newest first, paged,
// searched on the server), opens it with the sanitised transcript, and marks it read in the mailbox,
// which the message-summary NOTIFY and EWS then agree with. A user whose mailbox is on an external
// EWS server gets 409 MAILBOX_EXTERNAL.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MailboxReader, type MessageSummary } from '../../src/client/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
let base = '';
const people = sdkClients(() => server, DOMAIN, { requestTimeoutMs: 10_000 });

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Liddell' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Builder' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw' },
    ],
    config: {
      // carol's mailbox is on the organisation's Exchange (never reached in this test)
      mailboxes: { servers: { exchange: { url: 'http://127.0.0.1:9/EWS/Exchange.asmx', username: `svc@${DOMAIN}`, password: 'svc-pw' } }, users: { [`carol@${DOMAIN}`]: 'exchange' } },
    },
  });
  base = `http://${server.http.host}:${server.http.port}`;
  const delay = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
  assert.equal(delay.code, 0, delay.stderr);
});
after(async () => {
  await people.closeAll();
  await server?.stop();
});

async function call(path: string, init: { method?: string; cookie?: string; origin?: string | null; basic?: string } = {}) {
  const headers: Record<string, string> = {};
  if (init.origin !== null) headers.origin = init.origin ?? base;
  if (init.cookie !== undefined) headers.cookie = init.cookie;
  if (init.basic !== undefined) headers.authorization = `Basic ${Buffer.from(init.basic).toString('base64')}`;
  const response = await fetch(`${base}${path}`, { method: init.method ?? 'GET', headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: (text === '' ? undefined : JSON.parse(text)) as Record<string, any> | undefined };
}

async function signIn(user: string): Promise<string> {
  const response = await fetch(`${base}/api/session`, { method: 'POST', headers: { origin: base, 'content-type': 'application/json' }, body: JSON.stringify({ user, password: `${user}-pw` }) });
  assert.equal(response.status, 201, await response.text());
  return (response.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
}

describe('/api/conversations over a real missed conversation', () => {
  let bobCookie = '';
  let missedId = '';

  it('lists, opens (sanitised) and marks read a missed conversation; the message-summary NOTIFY and EWS agree', async () => {
    const bob = await people.connect('bob');
    const summaries = arrivals<MessageSummary>((push) => bob.on('message-summary', push), { what: 'message-summary', timeoutMs: 15_000, context: () => server.logs().slice(-3000) });
    await bob.watchMessageSummary();
    assert.equal((await summaries.next()).textMessages.new, 0);

    // bob is not registered: alice's messages go to his mailbox after the (1 s) pickup delay
    const alice = await people.connect('alice');
    const first = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'are you there? <script>alert(1)</script>');
    assert.equal(first.status, 202);
    const second = await alice.sendMessage(`sip:bob@${DOMAIN}`, '<p>lunch <b>today</b>?<img src=x onerror=alert(2)><script>alert(3)</script></p>', { contentType: 'text/html' });
    assert.equal(second.status, 202);
    assert.deepEqual((await summaries.next()).textMessages, { new: 1, old: 0 });

    bobCookie = await signIn('bob');
    const missed = await call('/api/conversations?kind=missed', { cookie: bobCookie, origin: null });
    assert.equal(missed.status, 200, missed.text);
    assert.equal(missed.headers.get('cache-control'), 'no-store');
    assert.equal(missed.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(missed.json?.total, 1);
    assert.equal(missed.json?.unreadMissed, 1);
    assert.deepEqual([missed.json?.page, missed.json?.pageSize], [1, 20]);
    const [item] = missed.json?.items as Array<Record<string, any>>;
    missedId = item?.id;
    assert.equal(item?.kind, 'missed');
    assert.equal(item?.subject, 'Missed conversation with Alice Liddell');
    assert.deepEqual(item?.with, { address: `alice@${DOMAIN}`, displayName: 'Alice Liddell' });
    assert.equal(item?.unread, true);
    assert.ok(!Number.isNaN(Date.parse(item?.received)));
    assert.match(item?.preview, /^Alice Liddell: are you there\? <script>alert\(1\)<\/script> Alice Liddell: lunch today\?$/);

    const opened = await call(`/api/conversations/${missedId}`, { cookie: bobCookie, origin: null });
    assert.equal(opened.status, 200, opened.text);
    assert.equal(opened.json?.id, missedId);
    assert.equal(opened.json?.unread, true, 'opening does not mark read by itself');
    const html = opened.json?.html as string;
    assert.ok(html.includes('are you there? &lt;script&gt;alert(1)&lt;/script&gt;'), html);
    assert.ok(html.includes('lunch <b>today</b>?'), html);
    assert.doesNotMatch(html, /<script|<img|onerror|style=|<table/i);
    assert.match(opened.json?.text, /Alice Liddell: are you there\? <script>alert\(1\)<\/script>\n/);

    // the sender's copy is in alice's Conversation History, read, with bob
    const aliceCookie = await signIn('alice');
    const history = await call('/api/conversations?kind=history', { cookie: aliceCookie, origin: null });
    assert.equal(history.json?.total, 1, history.text);
    assert.equal(history.json?.unreadMissed, 0);
    const [copy] = history.json?.items as Array<Record<string, any>>;
    assert.deepEqual([copy?.kind, copy?.unread, copy?.with], ['conversation', false, { address: `bob@${DOMAIN}`, displayName: 'Bob Builder' }]);
    assert.equal((await call('/api/conversations?kind=missed', { cookie: aliceCookie, origin: null })).json?.total, 0);

    // marking read: the Origin is needed (CSRF), then the mailbox, its NOTIFY and EWS agree
    const forged = await call(`/api/conversations/${missedId}/read`, { method: 'POST', cookie: bobCookie, origin: 'http://evil.example' });
    assert.equal(forged.status, 403);
    assert.equal(forged.json?.code, 'CSRF_ORIGIN');
    const read = await call(`/api/conversations/${missedId}/read`, { method: 'POST', cookie: bobCookie });
    assert.equal(read.status, 204, read.text);
    assert.deepEqual((await summaries.next()).textMessages, { new: 0, old: 1 });
    const after = await call('/api/conversations', { cookie: bobCookie, origin: null });
    assert.equal(after.json?.unreadMissed, 0);
    assert.equal((after.json?.items as Array<Record<string, any>>)[0]?.unread, false);
    const ews = new MailboxReader({ ewsUrl: `${base}/EWS/Exchange.asmx`, username: `bob@${DOMAIN}`, password: 'bob-pw' });
    const [inEws] = await ews.listMissedConversations();
    assert.equal(inEws?.itemId, missedId);
    assert.equal(inEws?.isRead, true);
    // read again: nothing changes, still 204
    assert.equal((await call(`/api/conversations/${missedId}/read`, { method: 'POST', cookie: bobCookie })).status, 204);
  });

  it('searches subject and text on the server, case-insensitively, paged', async () => {
    const lunch = await call('/api/conversations?q=LUNCH', { cookie: bobCookie, origin: null });
    assert.deepEqual((lunch.json?.items as Array<{ id: string }>).map((i) => i.id), [missedId]);
    const bySubject = await call(`/api/conversations?q=${encodeURIComponent('missed conversation with alice')}`, { cookie: bobCookie, origin: null });
    assert.equal(bySubject.json?.total, 1);
    const none = await call('/api/conversations?q=dinner', { cookie: bobCookie, origin: null });
    assert.deepEqual([none.json?.total, none.json?.items], [0, []]);
    const page2 = await call('/api/conversations?q=lunch&page=2&pageSize=1', { cookie: bobCookie, origin: null });
    assert.deepEqual([page2.json?.total, page2.json?.items, page2.json?.page, page2.json?.pageSize], [1, [], 2, 1]);
    assert.equal((await call('/api/conversations?kind=history', { cookie: bobCookie, origin: null })).json?.total, 0);
    for (const q of ['kind=unread', 'pageSize=51', 'page=0']) {
      const bad = await call(`/api/conversations?${q}`, { cookie: bobCookie, origin: null });
      assert.equal(bad.status, 400, q);
      assert.equal(bad.json?.code, 'BAD_QUERY');
    }
  });

  it("keeps each user to their own items: another's id, an unknown or malformed one are 404; methods are checked", async () => {
    const aliceCookie = await signIn('alice');
    for (const id of [missedId, 'AAAAAAAAAAAAAAAAAAAAAA', 'not-an-id', '%E0%A4%A']) {
      const r = await call(`/api/conversations/${id}`, { cookie: aliceCookie, origin: null });
      assert.ok(r.status === 404 || (r.status === 400 && r.json?.code === 'BAD_PATH'), `${id}: ${r.text}`);
      if (r.status === 404) assert.equal(r.json?.code, 'CONVERSATION_NOT_FOUND');
    }
    const theirs = await call(`/api/conversations/${missedId}/read`, { method: 'POST', cookie: aliceCookie });
    assert.equal(theirs.status, 404);
    const del = await call(`/api/conversations/${missedId}`, { method: 'DELETE', cookie: bobCookie });
    assert.equal(del.status, 405);
    assert.equal(del.headers.get('allow'), 'GET');
    const nobody = await call('/api/conversations', { origin: null });
    assert.equal(nobody.status, 401);
    assert.equal(nobody.json?.code, 'NO_SESSION');
  });

  it('answers HTTP Basic clients too, and 409 MAILBOX_EXTERNAL for a mailbox on an external EWS server', async () => {
    const basic = await call('/api/conversations?kind=missed', { basic: `bob@${DOMAIN}:bob-pw`, origin: null });
    assert.equal(basic.status, 200, basic.text);
    assert.equal(basic.json?.total, 1);
    const carol = await call('/api/conversations', { basic: `carol@${DOMAIN}:carol-pw`, origin: null });
    assert.equal(carol.status, 409, carol.text);
    assert.equal(carol.json?.code, 'MAILBOX_EXTERNAL');
  });
});
