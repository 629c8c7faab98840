// Blocked watchers end to end (issue 6): a user blocks a watcher through the HTTP endpoint
// /presence/blocked (HTTP Basic with their SIP password), or an administrator does with
// Add-/Remove-CsPresenceBlock; the blocked watcher sees Offline — the very document of a user who
// is offline — at once, and nobody else hears of it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { notifications, sdkClients } from '../harness/clients.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const PIDF = 'application/pidf+xml';
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: ['alice', 'bob', 'mallory', 'carol'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
  });
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

function blockedUrl(watcher?: string): string {
  return `http://${server.http.host}:${server.http.port}/presence/blocked${watcher === undefined ? '' : `/${encodeURIComponent(watcher)}`}`;
}

function basic(user: string, password = `${user}-pw`): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

async function http(method: string, user: string, watcher?: string, password?: string) {
  const res = await fetch(blockedUrl(watcher), { method, headers: { authorization: basic(user, password) } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

function pidf(user: string, activities: string, note: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${user}@${DOMAIN}">
  <tuple id="dev"><status><basic>open</basic></status></tuple>
  <dm:person id="p"><rpid:activities>${activities}</rpid:activities>${note === '' ? '' : `<dm:note>${note}</dm:note>`}</dm:person>
</presence>`;
}

function publish(c: SipClient, user: string, body: string, etag?: string) {
  return c.request('PUBLISH', `sip:${user}@${DOMAIN}`, {
    headers: { Event: 'presence', Expires: '600', ...(etag === undefined ? {} : { 'SIP-If-Match': etag }) },
    body,
    contentType: PIDF,
  });
}

function subscribe(c: SipClient, user: string) {
  return c.request('SUBSCRIBE', `sip:${user}@${DOMAIN}`, { contact: true, headers: { Event: 'presence', Expires: '600', Accept: PIDF } });
}

const basicOf = (n: SipRequest) => /<basic>(\w+)<\/basic>/.exec(n.body.toString('utf8'))?.[1];
const activitiesOf = (n: SipRequest) => /<rpid:activities>(.*?)<\/rpid:activities>/.exec(n.body.toString('utf8'))?.[1] ?? '';
const quiet = (ms = 300) => new Promise((r) => setTimeout(r, ms));

describe('blocking a watcher', () => {
  it('bob blocks mallory over HTTP: she sees Offline at once, exactly as if he were, and alice notices nothing', async () => {
    const bob = await people.connect('bob', { register: true });
    const alice = await people.connect('alice');
    const mallory = await people.connect('mallory');
    const aliceInbox = notifications(alice);
    const malloryInbox = notifications(mallory);
    assert.equal((await subscribe(alice, 'bob')).status, 200);
    assert.equal((await subscribe(mallory, 'bob')).status, 200);
    assert.equal(basicOf(await aliceInbox.next()), 'open');
    assert.equal(basicOf(await malloryInbox.next()), 'open');
    const busy = await publish(bob, 'bob', pidf('bob', '<rpid:busy/>', 'In a meeting'));
    assert.equal(busy.status, 200);
    assert.equal(activitiesOf(await aliceInbox.next()), '<rpid:busy/>');
    assert.equal(activitiesOf(await malloryInbox.next()), '<rpid:busy/>');

    const put = await http('PUT', 'bob', 'mallory');
    assert.equal(put.status, 201);
    assert.equal(put.json?.watcher, `mallory@${DOMAIN}`);
    assert.match(String(put.json?.since), /^\d{4}-\d\d-\d\dT.*Z$/);
    const hidden = await malloryInbox.next();
    assert.equal(basicOf(hidden), 'closed');
    assert.doesNotMatch(hidden.body.toString('utf8'), /In a meeting|busy|block/i);
    assert.match(hidden.headers.get('subscription-state') ?? '', /^active;/, 'the subscription itself goes on');
    await quiet();
    assert.equal(aliceInbox.queued, 0, 'alice sees no change');

    // bob changes: alice hears of it, mallory does not
    const away = await publish(bob, 'bob', pidf('bob', '<rpid:away/>', ''), busy.headers.get('sip-etag'));
    assert.equal(away.status, 200);
    assert.equal(activitiesOf(await aliceInbox.next()), '<rpid:away/>');
    await quiet();
    assert.equal(malloryInbox.queued, 0, 'a blocked watcher gets nothing while bob changes');

    // a new subscription of mallory is accepted as any other and shows Offline
    const again = await people.connect('mallory');
    const againInbox = notifications(again);
    assert.equal((await subscribe(again, 'bob')).status, 200);
    const fresh = await againInbox.next();
    assert.equal(basicOf(fresh), 'closed');

    // the document mallory gets is byte for byte the one of a user who is offline
    await bob.unregister();
    const offline = await aliceInbox.next();
    assert.equal(basicOf(offline), 'closed');
    assert.equal(hidden.body.toString('utf8'), offline.body.toString('utf8'));
    await bob.register({ expires: 300 });
    assert.equal(basicOf(await aliceInbox.next()), 'open');
    await quiet();
    assert.equal(malloryInbox.queued + againInbox.queued, 0);

    // unblocking: mallory sees bob's real state again, at once
    const del = await http('DELETE', 'bob', `sip:mallory@${DOMAIN}`);
    assert.equal(del.status, 204);
    assert.equal(basicOf(await malloryInbox.next()), 'open');
    assert.equal(basicOf(await againInbox.next()), 'open');
    await quiet();
    assert.equal(aliceInbox.queued, 0);
  });

  it('lists, reads and refuses as documented, with problem JSON', async () => {
    assert.equal((await http('PUT', 'carol', `alice@${DOMAIN}`)).status, 201);
    const twice = await http('PUT', 'carol', 'alice');
    assert.equal(twice.status, 200, 'blocking again is no error');
    assert.equal((await http('PUT', 'carol', 'someone@elsewhere.example')).status, 201);
    const list = await http('GET', 'carol');
    assert.equal(list.status, 200);
    assert.deepEqual((list.json?.blocked as Array<{ watcher: string }>).map((b) => b.watcher), [`alice@${DOMAIN}`, 'someone@elsewhere.example']);
    assert.equal((await http('GET', 'carol', 'alice')).json?.watcher, `alice@${DOMAIN}`);
    assert.deepEqual((await http('GET', 'alice')).json, { blocked: [] }, "each user sees only their own blocks");

    const missing = await http('GET', 'carol', 'bob');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(missing.json?.code, 'NOT_BLOCKED');
    assert.equal((await http('DELETE', 'carol', 'bob')).json?.code, 'NOT_BLOCKED');
    assert.equal((await http('PUT', 'carol', 'carol')).json?.code, 'SELF_BLOCK');
    const bad = await http('PUT', 'carol', 'bob@@nowhere');
    assert.deepEqual([bad.status, bad.json?.code], [400, 'BAD_ADDRESS']);
    const wrong = await http('GET', 'carol', undefined, 'not-her-password');
    assert.deepEqual([wrong.status, wrong.json?.code], [401, 'UNAUTHORIZED']);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic realm="parley\.test"/);
    const none = await fetch(blockedUrl());
    assert.equal(none.status, 401);
    const post = await http('POST', 'carol', 'bob');
    assert.deepEqual([post.status, post.headers.get('allow')], [405, 'GET, PUT, DELETE']);
  });

  it('an administrator blocks with --data-dir (the server finds it within a second) and unblocks through the admin API (at once)', async () => {
    const alice = await people.connect('alice', { register: true });
    const carol = await people.connect('carol');
    const inbox = notifications(carol);
    assert.equal((await subscribe(carol, 'alice')).status, 200);
    assert.equal(basicOf(await inbox.next()), 'open');

    const add = await runCli(['admin', ...server.storageArgs, 'Add-CsPresenceBlock', '-Identity', `alice@${DOMAIN}`, '-Watcher', `carol@${DOMAIN}`]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /Watcher\s+: carol@parley\.test/);
    assert.equal(basicOf(await inbox.next(3000)), 'closed');

    const token = ['--url', `http://${server.http.host}:${server.http.port}`, '--token-file', `${server.dataDir}/secrets/admin.token`];
    const get = await runCli(['admin', ...token, '--json', 'Get-CsPresenceBlock', '-Identity', `alice@${DOMAIN}`]);
    assert.equal(get.code, 0, get.stderr);
    assert.deepEqual((JSON.parse(get.stdout) as Array<{ Watcher: string }>).map((b) => b.Watcher), [`carol@${DOMAIN}`]);
    const remove = await runCli(['admin', ...token, 'Remove-CsPresenceBlock', `alice@${DOMAIN}`, '-Watcher', `carol@${DOMAIN}`]);
    assert.equal(remove.code, 0, remove.stderr);
    // the API tells the running server at once (under the 1-s database poll a CLI change waits for)
    assert.equal(basicOf(await inbox.next(900)), 'open');
    await alice.unregister();
  });
});
