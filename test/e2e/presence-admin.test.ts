// `parley admin Get-CsUserPresence` against a real server: the live state (registrations and
// publications live in the server's memory) through the admin API; in local mode it says to use
// --url. And the presence durations of the config file (presence.publishExpiry,
// presence.subscribeExpiry) as clients see them.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import { notifications, sdkClients } from '../harness/clients.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const PIDF = 'application/pidf+xml';
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN);
let configFile: string;

before(async () => {
  configFile = path.join(os.tmpdir(), `parley-presence-config-${process.pid}.json`);
  await writeFile(configFile, JSON.stringify({
    presence: { publishExpiry: { min: 30, max: 900, default: 120 }, subscribeExpiry: { min: 20, default: 240, max: 480 } },
  }));
  server = await startServer({
    domain: DOMAIN,
    users: ['alice', 'bob', 'carol', 'mallory'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
    extraArgs: ['--config', configFile],
  });
});

after(async () => {
  await people.closeAll();
  await server?.stop();
  await rm(configFile, { force: true });
});

function pidf(user: string, activities: string, note: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${user}@${DOMAIN}">
  <tuple id="dev"><status><basic>open</basic></status></tuple>
  <dm:person id="p"><rpid:activities>${activities}</rpid:activities>${note === '' ? '' : `<dm:note>${note}</dm:note>`}</dm:person>
</presence>`;
}

function publish(c: SipClient, user: string, body: string, expires?: number) {
  return c.request('PUBLISH', `sip:${user}@${DOMAIN}`, { headers: { Event: 'presence', ...(expires === undefined ? {} : { Expires: String(expires) }) }, body, contentType: PIDF });
}

function subscribe(c: SipClient, user: string, expires?: number) {
  return c.request('SUBSCRIBE', `sip:${user}@${DOMAIN}`, { contact: true, headers: { Event: 'presence', Accept: PIDF, ...(expires === undefined ? {} : { Expires: String(expires) }) } });
}

function remote(...args: string[]) {
  return runCli(['admin', '--url', `http://${server.http.host}:${server.http.port}`, '--token-file', path.join(server.dataDir, 'secrets', 'admin.token'), ...args]);
}

describe('Get-CsUserPresence', () => {
  it("shows bob's live state, devices and watchers through the admin API", async () => {
    const phone = await people.connect('bob', { register: true, userAgent: 'bob-phone' });
    const laptop = await people.connect('bob', { over: 'ws', register: true, userAgent: 'bob-laptop' });
    assert.equal((await publish(phone, 'bob', pidf('bob', '<rpid:away/>', ''), 600)).status, 200);
    assert.equal((await publish(laptop, 'bob', pidf('bob', '<rpid:busy/>', 'Quarterly review'), 600)).status, 200);
    const alice = await people.connect('alice');
    notifications(alice);
    assert.equal((await subscribe(alice, 'bob', 300)).status, 200);
    const mallory = await people.connect('mallory');
    notifications(mallory);
    assert.equal((await subscribe(mallory, 'bob', 300)).status, 200);
    const block = await remote('Add-CsPresenceBlock', 'bob', '-Watcher', 'mallory');
    assert.equal(block.code, 0, block.stderr);

    const shown = await remote('Get-CsUserPresence', '-Identity', 'bob');
    assert.equal(shown.code, 0, shown.stderr);
    const lines = shown.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.map((l) => l.split(' : ')[0]?.trim()), ['Identity', 'State', 'Note', 'Registrations', 'Publications', 'Watchers']);
    assert.equal(lines[0], 'Identity      : bob@parley.test');
    assert.equal(lines[1], 'State         : Busy');
    assert.equal(lines[2], 'Note          : Quarterly review');
    // the remaining time counts down while the machine is busy: within a minute of the full 300 s
    assert.match(lines[3]!, /^Registrations : \{sip:bob@[^ ]+ \(tcp, bob-phone, expires in (300|2[5-9]\d) s\), sip:[^ ]+ \(ws, bob-laptop, expires in (300|2[5-9]\d) s\)\}$|^Registrations : \{sip:[^ ]+ \(ws, bob-laptop, expires in (300|2[5-9]\d) s\), sip:bob@[^ ]+ \(tcp, bob-phone, expires in (300|2[5-9]\d) s\)\}$/);
    assert.match(lines[4]!, /^Publications  : \{Busy "Quarterly review" \(expires in (600|5[5-9]\d) s\), Away \(expires in (600|5[5-9]\d) s\)\}$/);
    assert.equal(lines[5], 'Watchers      : {alice@parley.test, mallory@parley.test (blocked: sees Offline)}');

    const json = await remote('--json', 'Get-CsUserPresence', `sip:bob@${DOMAIN}`);
    assert.equal(json.code, 0, json.stderr);
    const [object] = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    assert.equal(object?.State, 'Busy');

    // after both devices unregister: Offline, whatever was published
    await phone.unregister();
    await laptop.unregister();
    const offline = await remote('Get-CsUserPresence', 'bob');
    assert.match(offline.stdout, /^State\s+: Offline$/m);
    assert.match(offline.stdout, /^Registrations : \{\}$/m);
  });

  it('in local mode, says it needs the running server (exit 2); an unknown user is exit 1', async () => {
    const local = await runCli(['admin', ...server.storageArgs, 'Get-CsUserPresence', '-Identity', `bob@${DOMAIN}`]);
    assert.equal(local.code, 2);
    assert.match(local.stderr, /needs the running server.*use --url/);
    const unknown = await remote('Get-CsUserPresence', 'nobody');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /nobody@parley\.test does not exist/);
  });
});

describe('presence durations from the config file', () => {
  it('publications: the default 120 s, at least 30 s (423), at most 900 s', async () => {
    const carol = await people.connect('carol', { register: true });
    const plain = await publish(carol, 'carol', pidf('carol', '<rpid:busy/>', ''));
    assert.deepEqual([plain.status, plain.headers.get('expires')], [200, '120']);
    const brief = await publish(carol, 'carol', pidf('carol', '<rpid:busy/>', ''), 10);
    assert.deepEqual([brief.status, brief.headers.get('min-expires')], [423, '30']);
    const long = await publish(carol, 'carol', pidf('carol', '<rpid:busy/>', ''), 5000);
    assert.deepEqual([long.status, long.headers.get('expires')], [200, '900']);
  });

  it('subscriptions: the default 240 s, at least 20 s (423), at most 480 s', async () => {
    const alice = await people.connect('alice');
    notifications(alice);
    const plain = await subscribe(alice, 'carol');
    assert.deepEqual([plain.status, plain.headers.get('expires')], [200, '240']);
    const brief = await subscribe(alice, 'carol', 10);
    assert.deepEqual([brief.status, brief.headers.get('min-expires')], [423, '20']);
    const long = await subscribe(alice, 'carol', 3600);
    assert.deepEqual([long.status, long.headers.get('expires')], [200, '480']);
  });

  it('refuses a config whose durations do not hold together, naming the setting', async () => {
    const bad = path.join(os.tmpdir(), `parley-presence-bad-${process.pid}.json`);
    await writeFile(bad, JSON.stringify({ presence: { subscribeExpiry: { max: 300 } } }));
    const r = await runCli(['serve', '--config', bad, '--data-dir', path.join(os.tmpdir(), `parley-presence-bad-${process.pid}`), '--sip-port', '0', '--http-port', '0']);
    await rm(bad, { force: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr + r.stdout, /presence\.subscribeExpiry must have min ≤ default ≤ max/);
  });
});
