// Issue 18, finding 7, against a real `parley serve`: one user sending SUBSCRIBE after SUBSCRIBE
// for one presentity (each with its own Call-ID, over one TCP connection) holds at most
// events.maxSubscriptionsPerWatcherResource (16) of them — each new one past that replaces the
// least recently refreshed, which ends with terminated;reason=probation — so one PUBLISH sends that
// user 16 NOTIFYs, not one per SUBSCRIBE. Past events.maxSubscriptionsPerWatcher (20 here) a new
// subscription is refused with 403. Other watchers are served meanwhile; a closed connection's
// subscriptions stop counting; unauthenticated and foreign watchers hold none.
// Finding 8b: a user's block list stops at MAX_BLOCKS (1,000), like the contact list — 409
// BLOCK_LIST_FULL over HTTP, and Add-CsPresenceBlock refuses with exit code 1.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import { addBlock } from '../../src/presence/blocks.ts';
import { MAX_BLOCKS } from '../../src/presence/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { eventually } from '../harness/eventually.ts';
import { notifications, sdkClients } from '../harness/clients.ts';
import { openServerStorage, runCli, startServer, type RunningServer } from '../harness/server.ts';
import { rawRequest, tcpExchange } from './raw-sip.ts';

const DOMAIN = 'parley.test';
const PIDF = 'application/pidf+xml';
const PER_PAIR = 16;
const PER_WATCHER = 20;
const ATTEMPTS = 200;
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN);
let configFile: string;

before(async () => {
  configFile = path.join(os.tmpdir(), `parley-subscription-limits-${process.pid}.json`);
  await writeFile(configFile, JSON.stringify({ events: { maxSubscriptionsPerWatcher: PER_WATCHER } }));
  server = await startServer({
    domain: DOMAIN,
    users: ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
    extraArgs: ['--config', configFile],
  });
});

after(async () => {
  await people.closeAll();
  await server?.stop();
  await rm(configFile, { force: true });
});

function subscribe(c: SipClient, user: string, expires = 600) {
  return c.request('SUBSCRIBE', `sip:${user}@${DOMAIN}`, { contact: true, headers: { Event: 'presence', Expires: String(expires), Accept: PIDF } });
}

function pidf(user: string, activity: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${user}@${DOMAIN}">
  <tuple id="dev"><status><basic>open</basic></status></tuple>
  <dm:person id="p"><rpid:activities><rpid:${activity}/></rpid:activities></dm:person>
</presence>`;
}

/** The watchers of `user` the running server shows (Get-CsUserPresence through the admin API). */
async function watchersOf(user: string): Promise<string[]> {
  const shown = await runCli(['admin', '--url', `http://${server.http.host}:${server.http.port}`, '--token-file', path.join(server.dataDir, 'secrets', 'admin.token'), '--json', 'Get-CsUserPresence', user]);
  assert.equal(shown.code, 0, shown.stderr);
  const [object] = JSON.parse(shown.stdout) as Array<{ Watchers: string }>;
  const inner = object?.Watchers.replace(/^\{|\}$/g, '') ?? '';
  return inner === '' ? [] : inner.split(', ').sort();
}

const stateOf = (n: SipRequest) => n.headers.get('subscription-state') ?? '';
const callIdOf = (n: SipRequest) => n.headers.get('call-id') ?? '';

describe('subscription limits (issue 18, finding 7)', () => {
  it(`${ATTEMPTS} SUBSCRIBEs from one user for one presentity: ${PER_PAIR} live, one PUBLISH sends ${PER_PAIR} NOTIFYs`, async () => {
    const bob = await people.connect('bob', { register: true });
    const alice = await people.connect('alice');
    const inbox = notifications(alice);

    const callIds: string[] = [];
    for (let i = 0; i < ATTEMPTS; i++) {
      const res = await subscribe(alice, 'bob');
      assert.equal(res.status, 200, `SUBSCRIBE ${i + 1}`);
      callIds.push(res.headers.get('call-id') ?? '');
    }
    // Each SUBSCRIBE got a NOTIFY; each of the first ATTEMPTS - PER_PAIR was replaced by a later one
    // and got its last: terminated, probation, retry after 600 s (RFC 6665 §4.1.3). One replaced
    // before its first NOTIFY left (the document is still being read: PostgreSQL under load) gets
    // that terminated NOTIFY as its first and only one, which RFC 6665 allows: so the NOTIFYs are
    // counted per dialog, not in all.
    const seen: SipRequest[] = [];
    const dialogs = new Set<string>();
    const ended = new Set<string>();
    while (dialogs.size < ATTEMPTS || ended.size < ATTEMPTS - PER_PAIR) {
      const n = await inbox.next();
      seen.push(n);
      dialogs.add(callIdOf(n));
      if (stateOf(n).startsWith('terminated')) ended.add(callIdOf(n));
    }
    assert.ok(seen.length <= ATTEMPTS + (ATTEMPTS - PER_PAIR), `${seen.length} NOTIFYs: at most two per dialog`);
    const replaced = seen.filter((n) => stateOf(n).startsWith('terminated'));
    assert.deepEqual(new Set(replaced.map(stateOf)), new Set(['terminated;reason=probation;retry-after=600']));
    assert.deepEqual(replaced.map(callIdOf).sort(), callIds.slice(0, ATTEMPTS - PER_PAIR).sort(), 'the oldest went');

    // Another watcher is served meanwhile.
    const carol = await people.connect('carol');
    const carolInbox = notifications(carol);
    assert.equal((await subscribe(carol, 'bob')).status, 200);
    assert.match(stateOf(await carolInbox.next()), /^active;/);
    const watchers = await watchersOf('bob');
    assert.equal(watchers.filter((w) => w === `alice@${DOMAIN}`).length, PER_PAIR);
    assert.deepEqual(watchers.filter((w) => w !== `alice@${DOMAIN}`), [`carol@${DOMAIN}`]);

    // One PUBLISH: PER_PAIR NOTIFYs to alice, for the newest dialogs.
    assert.equal((await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf('bob', 'busy'), contentType: PIDF })).status, 200);
    const changes: SipRequest[] = [];
    for (let i = 0; i < PER_PAIR; i++) changes.push(await inbox.next());
    assert.ok(changes.every((n) => n.body.toString().includes('<rpid:busy/>') && stateOf(n).startsWith('active;')));
    assert.deepEqual(changes.map(callIdOf).sort(), callIds.slice(ATTEMPTS - PER_PAIR).sort());
    assert.ok((await carolInbox.next()).body.toString().includes('<rpid:busy/>'));
    // Nothing more for that PUBLISH: the next NOTIFY alice gets is the answer to a later fetch.
    const fetch = await subscribe(alice, 'bob', 0);
    assert.equal(fetch.status, 200);
    const next = await inbox.next();
    assert.deepEqual([callIdOf(next), stateOf(next)], [fetch.headers.get('call-id'), 'terminated;reason=timeout']);
  });

  it(`refuses a subscription past ${PER_WATCHER} per watcher with 403 naming the limit; others still subscribe`, async () => {
    const erin = await people.connect('erin');
    notifications(erin);
    const targets = ['bob', 'carol', 'dave', 'alice'];
    for (let i = 0; i < PER_WATCHER; i++) assert.equal((await subscribe(erin, targets[i % targets.length]!)).status, 200, `SUBSCRIBE ${i + 1}`);
    const refused = await subscribe(erin, 'frank');
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('warning'), `399 ${DOMAIN} "erin@${DOMAIN} holds ${PER_WATCHER} subscriptions, the most one user may (events.maxSubscriptionsPerWatcher); end some first"`);
    const frank = await people.connect('frank');
    notifications(frank);
    assert.equal((await subscribe(frank, 'dave')).status, 200, 'another watcher');
    assert.equal((await subscribe(erin, 'frank', 0)).status, 200, 'a fetch holds nothing: still answered');
    assert.match(server.logs(), /SUBSCRIBE refused: erin@parley\.test holds 20 subscriptions/);
  });

  it("a closed connection's subscriptions stop counting at once", async () => {
    const phone = await people.connect('dave');
    notifications(phone);
    for (let i = 0; i < 3; i++) assert.equal((await subscribe(phone, 'frank')).status, 200);
    assert.deepEqual(await watchersOf('frank'), Array(3).fill(`dave@${DOMAIN}`));
    await phone.close();
    await eventually('the subscriptions of the closed connection to end', async () => ((await watchersOf('frank')).length === 0 ? true : undefined), 10_000);
    await server.waitForLog(/3 subscriptions ended: their connection closed/);
  });

  it('holds nothing for watchers it cannot authenticate or from other domains', async () => {
    const headers = ['Event: presence', 'Expires: 600', `Contact: <sip:x@127.0.0.1:9;transport=tcp>`];
    const foreign = await tcpExchange(server.tcp, rawRequest('SUBSCRIBE', `sip:bob@${DOMAIN}`, { from: 'sip:eve@elsewhere.example', to: `sip:bob@${DOMAIN}`, headers }));
    assert.equal(foreign.status, 403);
    const anonymous = await tcpExchange(server.tcp, rawRequest('SUBSCRIBE', `sip:bob@${DOMAIN}`, { from: `sip:frank@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, headers }));
    assert.equal(anonymous.status, 407, 'challenged, nothing created');
    assert.ok(!(await watchersOf('bob')).some((w) => w.startsWith('eve@') || w.startsWith('frank@')));
  });
});

describe('block list limit (issue 18, finding 8b)', () => {
  function blocked(user: string, watcher: string, method = 'PUT') {
    return fetch(`http://${server.http.host}:${server.http.port}/presence/blocked/${encodeURIComponent(watcher)}`, {
      method, headers: { authorization: `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}` },
    });
  }

  it(`refuses block ${MAX_BLOCKS + 1} with 409 BLOCK_LIST_FULL over HTTP and in Add-CsPresenceBlock; others block on`, async () => {
    // MAX_BLOCKS - 1 blocks written straight to the database (1,000 PUTs would each verify a password)
    const sql = await openServerStorage(server);
    try {
      await sql.transaction(async (tx) => {
        for (let i = 1; i < MAX_BLOCKS; i++) await addBlock(tx, `alice@${DOMAIN}`, `w${i}@elsewhere.example`, Date.now());
      });
    } finally {
      await sql.close();
    }
    assert.equal((await blocked('alice', 'mallory@elsewhere.example')).status, 201, `block ${MAX_BLOCKS}`);
    const full = await blocked('alice', 'dave');
    assert.equal(full.status, 409);
    assert.equal(full.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.deepEqual(await full.json(), {
      type: 'about:blank', title: 'Conflict', status: 409, code: 'BLOCK_LIST_FULL',
      detail: `the block list of alice@${DOMAIN} holds ${MAX_BLOCKS} blocked watchers already; remove some first`,
    });
    assert.equal((await blocked('alice', 'w5@elsewhere.example')).status, 200, 'one already blocked still answers');
    assert.equal((await blocked('bob', 'dave')).status, 201, 'another user blocks on');

    const local = await runCli(['admin', ...server.storageArgs, 'Add-CsPresenceBlock', `alice@${DOMAIN}`, '-Watcher', `dave@${DOMAIN}`]);
    assert.equal(local.code, 1);
    assert.equal(local.stderr.trim(), `parley admin: the block list of alice@${DOMAIN} holds ${MAX_BLOCKS} blocked watchers already; remove some first`);
    const api = await runCli(['admin', '--url', `http://${server.http.host}:${server.http.port}`, '--token-file', path.join(server.dataDir, 'secrets', 'admin.token'), 'Add-CsPresenceBlock', `alice@${DOMAIN}`, '-Watcher', `dave@${DOMAIN}`]);
    assert.equal(api.code, 1);
    assert.match(api.stderr, /holds 1000 blocked watchers already/);

    assert.equal((await blocked('alice', 'w5@elsewhere.example', 'DELETE')).status, 204);
    assert.equal((await blocked('alice', 'dave')).status, 201, 'room again after an unblock');
  });
});
