// Resource lists end to end (RFC 4662): alice keeps her contact list on the server
// (/presence/contacts, HTTP Basic) and watches all of it with one SUBSCRIBE to
// sip:alice+contacts@parley.test; each NOTIFY is multipart/related with an RLMI document and one
// PIDF document per contact.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { notifications, sdkClients } from '../harness/clients.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const PIDF = 'application/pidf+xml';
const LIST_ACCEPT = 'multipart/related, application/rlmi+xml, application/pidf+xml';
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Builder' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw' },
      { address: `dave@${DOMAIN}`, password: 'dave-pw' },
    ],
  });
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

async function contacts(method: string, user: string, contact?: string) {
  const url = `http://${server.http.host}:${server.http.port}/presence/contacts${contact === undefined ? '' : `/${encodeURIComponent(contact)}`}`;
  const res = await fetch(url, { method, headers: { authorization: `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}` } });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

function subscribeList(c: SipClient, owner: string, headers: Record<string, string> = { Supported: 'eventlist', Accept: LIST_ACCEPT }) {
  return c.request('SUBSCRIBE', `sip:${owner}+contacts@${DOMAIN}`, { contact: true, headers: { Event: 'presence', Expires: '600', ...headers } });
}

function pidf(user: string, activities: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${user}@${DOMAIN}">
  <tuple id="dev"><status><basic>open</basic></status></tuple>
  <dm:person id="p"><rpid:activities>${activities}</rpid:activities></dm:person>
</presence>`;
}

/** A list NOTIFY read as RFC 4662 §5 lays it out: the RLMI root part, then the parts it names. */
function readList(notify: SipRequest): { version: number; fullState: string; members: Record<string, string>; names: string[] } {
  assert.equal(notify.headers.get('require'), 'eventlist');
  assert.equal(notify.headers.get('event'), 'presence');
  const type = notify.headers.get('content-type') ?? '';
  assert.match(type, /^multipart\/related;type="application\/rlmi\+xml";start="<[^>]+>";boundary="[^"]+"$/);
  const boundary = /boundary="([^"]+)"/.exec(type)![1]!;
  const start = /start="<([^>]+)>"/.exec(type)![1]!;
  const sections = notify.body.toString('utf8').split(`--${boundary}`).slice(1, -1).map((p) => {
    const i = p.indexOf('\r\n\r\n');
    const head = p.slice(2, i);
    return { cid: /Content-ID: <([^>]+)>/i.exec(head)?.[1] ?? '', type: /Content-Type: ([^;\r\n]+)/i.exec(head)?.[1] ?? '', content: p.slice(i + 4) };
  });
  const [root, ...rest] = sections;
  assert.equal(root?.cid, start);
  assert.equal(root?.type, 'application/rlmi+xml');
  const rlmi = root.content;
  const byCid = new Map(rest.map((s) => [s.cid, s]));
  const members: Record<string, string> = {};
  for (const m of rlmi.matchAll(/<resource uri="sip:([^"@]+)@[^"]+">[\s\S]*?cid="([^"]+)"/g)) {
    const part = byCid.get(m[2]!);
    assert.equal(part?.type, PIDF);
    const basic = /<basic>(\w+)<\/basic>/.exec(part!.content)?.[1] ?? '';
    const activity = /<rpid:activities>(.*?)<\/rpid:activities>/.exec(part!.content)?.[1] ?? '';
    members[m[1]!] = `${basic}${activity}`;
  }
  assert.equal(Object.keys(members).length, rest.length, 'every part is named by an instance');
  return {
    version: Number(/version="(\d+)"/.exec(rlmi)?.[1]),
    fullState: /fullState="(\w+)"/.exec(rlmi)?.[1] ?? '',
    members,
    names: [...rlmi.matchAll(/<name>([^<]*)<\/name>/g)].map((m) => m[1]!),
  };
}

describe('resource list subscriptions (RFC 4662)', () => {
  it("alice watches her whole contact list with one SUBSCRIBE, version after version", async () => {
    assert.equal((await contacts('PUT', 'alice', 'bob')).status, 201);
    const put = await contacts('PUT', 'alice', `sip:carol@${DOMAIN}`);
    assert.equal(put.status, 201);
    assert.deepEqual(put.json, { contact: `carol@${DOMAIN}`, displayName: null, since: put.json?.since, remote: false });
    assert.equal((await contacts('PUT', 'alice', 'carol')).status, 200);
    const list = await contacts('GET', 'alice');
    assert.equal(list.json?.uri, `sip:alice+contacts@${DOMAIN}`);
    assert.deepEqual((list.json?.contacts as Array<{ contact: string; displayName: string | null }>).map((c) => [c.contact, c.displayName]), [[`bob@${DOMAIN}`, 'Bob Builder'], [`carol@${DOMAIN}`, null]]);

    const alice = await people.connect('alice');
    const inbox = notifications(alice);
    const sub = await subscribeList(alice, 'alice');
    assert.equal(sub.status, 200);
    const first = readList(await inbox.next());
    assert.deepEqual(first, { version: 0, fullState: 'true', members: { bob: 'closed', carol: 'closed' }, names: ['Bob Builder'] });

    const bob = await people.connect('bob', { register: true });
    assert.deepEqual(readList(await inbox.next()).members, { bob: 'open', carol: 'closed' });
    assert.equal((await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf('bob', '<rpid:busy/>'), contentType: PIDF })).status, 200);
    const busy = readList(await inbox.next());
    assert.deepEqual([busy.version, busy.members.bob], [2, 'open<rpid:busy/>']);

    // the list itself changes: the subscription hears of it at once
    assert.equal((await contacts('PUT', 'alice', 'dave')).status, 201);
    assert.deepEqual(readList(await inbox.next()), { version: 3, fullState: 'true', members: { bob: 'open<rpid:busy/>', carol: 'closed', dave: 'closed' }, names: ['Bob Builder'] });
    assert.equal((await contacts('DELETE', 'alice', 'carol')).status, 204);
    assert.deepEqual(readList(await inbox.next()).members, { bob: 'open<rpid:busy/>', dave: 'closed' });

    // bob blocks alice: her list shows him Offline, like any other subscription of hers
    const blocked = await fetch(`http://${server.http.host}:${server.http.port}/presence/blocked/alice`, { method: 'PUT', headers: { authorization: `Basic ${Buffer.from('bob:bob-pw').toString('base64')}` } });
    assert.equal(blocked.status, 201);
    const hidden = readList(await inbox.next());
    assert.deepEqual([hidden.version, hidden.members.bob], [5, 'closed']);

    // the administrator sees alice among bob's watchers, through her list
    const admin = await runCli(['admin', '--url', `http://${server.http.host}:${server.http.port}`, '--token-file', `${server.dataDir}/secrets/admin.token`, 'Get-CsUserPresence', 'bob']);
    assert.equal(admin.code, 0, admin.stderr);
    assert.match(admin.stdout, /^Watchers\s+: \{alice@parley\.test \(through their contact list\) \(blocked: sees Offline\)\}$/m);
    await bob.unregister();
  });

  it('refuses what RFC 4662 and the organisation do not allow', async () => {
    const alice = await people.connect('alice');
    notifications(alice);
    const noSupported = await subscribeList(alice, 'alice', { Accept: LIST_ACCEPT });
    assert.equal(noSupported.status, 421);
    assert.equal(noSupported.headers.get('require'), 'eventlist');
    const pidfOnly = await subscribeList(alice, 'alice', { Supported: 'eventlist', Accept: PIDF });
    assert.equal(pidfOnly.status, 406);
    const bob = await people.connect('bob');
    notifications(bob);
    assert.equal((await subscribeList(bob, 'alice')).status, 403, "alice's list is hers alone");
    assert.equal((await subscribeList(bob, 'nobody')).status, 404);
    const stranger = await contacts('PUT', 'alice', 'someone@elsewhere.example');
    assert.deepEqual([stranger.status, stranger.json?.code], [404, 'USER_NOT_FOUND']);
    const missing = await contacts('DELETE', 'alice', 'carol');
    assert.deepEqual([missing.status, missing.json?.code], [404, 'NOT_A_CONTACT']);
  });
});
