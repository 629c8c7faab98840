// The first start (`npm start` = `parley serve --demo`): on a new data directory three demo users
// with random passwords, printed once after the ready line, that really sign in and see each other
// in their contact lists; marked demo in the directory and removable like anyone. A second start
// on the same directory prints no users and changes nothing; without --demo there are none.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { SipClient } from '../../src/client/index.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const servers: RunningServer[] = [];
const clients: SipClient[] = [];
const keptDirs: string[] = [];

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(keptDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function start(options: Parameters<typeof startServer>[0] = {}): Promise<RunningServer> {
  const server = await startServer({ domain: DOMAIN, ...options });
  servers.push(server);
  // the welcome lines follow the ready line on every start
  await server.waitForLog(/^Add a user: bin\/parley user add you@parley\.test --password/, 5000);
  return server;
}

async function register(server: RunningServer, address: string, password: string): Promise<SipClient> {
  const c = new SipClient({ server: `tcp://${server.tcp.host}:${server.tcp.port}`, aor: `sip:${address}`, password, requestTimeoutMs: 5000, keepAliveIntervalMs: 0 });
  clients.push(c);
  await c.connect();
  await c.register({ expires: 60 });
  return c;
}

function demoUsersIn(logs: string): Array<{ address: string; password: string; name: string }> {
  return [...logs.matchAll(/^ {2}(\S+@parley\.test) +password (\S+) +\(([^)]+)\)$/gm)].map((m) => ({ address: m[1]!, password: m[2]!, name: m[3]! }));
}

describe('demo users on a first start', () => {
  it('--demo on a new data directory makes three users whose printed passwords sign in; a second start changes nothing', async () => {
    const first = await start({ extraArgs: ['--demo'] });
    await first.waitForLog(/^Remove them when done: bin\/parley user remove alice@parley\.test/, 5000);
    const logs = first.logs();
    assert.match(logs, new RegExp(`^Open http://127\\.0\\.0\\.1:${first.http.port}/ in a browser`, 'm'));
    const demo = demoUsersIn(logs);
    assert.deepEqual(demo.map((u) => [u.address, u.name]), [[`alice@${DOMAIN}`, 'Alice Adams'], [`bob@${DOMAIN}`, 'Bob Brown'], [`carol@${DOMAIN}`, 'Carol Clark']]);
    for (const u of demo) assert.match(u.password, /^[a-z2-7]{16}$/, 'random base32, not a word');
    assert.equal(new Set(demo.map((u) => u.password)).size, 3);

    // each signs in with the printed password, and sees the other two in their contact list
    const alice = await register(first, demo[0]!.address, demo[0]!.password);
    await register(first, demo[1]!.address, demo[1]!.password);
    const list = await alice.watchPresenceList(`sip:alice+contacts@${DOMAIN}`);
    for (let i = 0; i < 50 && !list.known; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([...list.snapshot().values()].map((p) => [p.address, p.displayName]).sort(), [[`bob@${DOMAIN}`, 'Bob Brown'], [`carol@${DOMAIN}`, 'Carol Clark']]);
    await register(first, demo[2]!.address, demo[2]!.password);

    // the web client's sign-in says so too (the page can tell a newcomer they are in a demo)
    const signIn = await fetch(`http://127.0.0.1:${first.http.port}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${first.http.port}` },
      body: JSON.stringify({ user: 'carol', password: demo[2]!.password }),
    });
    assert.equal(signIn.status, 201);
    assert.equal(((await signIn.json()) as { demo: boolean }).demo, true);

    // marked demo for the administrator
    const shown = await runCli(['admin', ...first.storageArgs, 'Get-CsUser', `alice@${DOMAIN}`]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^Demo +: True$/m);
    const listed = await runCli(['user', 'list', ...first.storageArgs]);
    assert.match(listed.stdout, /^ADDRESS\s+DISPLAY NAME\s+CREATED\s+DEMO$/m);
    assert.match(listed.stdout, /^alice@parley\.test\s+Alice Adams\s+.+UTC\s+yes$/m);

    // a second start on the same directory: nothing new is printed, the users are as they were
    keptDirs.push(first.dataDir);
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await first.kill('SIGTERM');
    const second = await start({ dataDir: first.dataDir, extraArgs: ['--demo'] });
    assert.doesNotMatch(second.logs(), /Demo users|password [a-z2-7]{16}/);
    const again = await runCli(['user', 'list', ...first.storageArgs]);
    assert.equal(again.stdout, listed.stdout, 'the same three users, unchanged');
    await register(second, demo[1]!.address, demo[1]!.password);

    // a demo user is removed like any other
    const removed = await runCli(['user', 'remove', `carol@${DOMAIN}`, ...first.storageArgs]);
    assert.equal(removed.code, 0, removed.stderr);
    const after = await runCli(['user', 'list', ...first.storageArgs]);
    assert.doesNotMatch(after.stdout, /carol@/);
  });

  it('without --demo a new data directory gets no users, only the welcome lines', async () => {
    const server = await start();
    assert.match(server.logs(), /^Open http:\/\/127\.0\.0\.1:\d+\/ in a browser/m);
    assert.doesNotMatch(server.logs(), /Demo users/);
    const listed = await runCli(['user', 'list', ...server.storageArgs]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^no users in /);
  });
});
