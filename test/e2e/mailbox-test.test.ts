// `parley mailbox test ADDRESS --config FILE` (issue 17): the connector the config routes the
// address to signs in, finds the mailbox and Conversation History, and may write there, leaving
// nothing behind — for the embedded store, an EWS server (a second Parley playing Exchange, as the
// EWS connector's tests do) and Microsoft Graph (the stand-in that follows Microsoft's documented
// contract, test/harness/graph-standin.ts). One line per step; exit 0 when all pass, 1 when one
// fails (with what to fix), 2 on usage errors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGraphStandIn } from '../harness/graph-standin.ts';
import type { GraphStandIn } from '../harness/graph-standin.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const CLIENT_ID = '0f1e2d3c-4b5a-4978-8a9b-aabbccddeeff';
let standIn: GraphStandIn;
let exchange: RunningServer;
let dir = '';
let configFile = '';

before(async () => {
  standIn = await startGraphStandIn({ app: { clientId: CLIENT_ID, secret: 'right' }, mailboxes: [`bob@${DOMAIN}`] });
  exchange = await startServer({
    domain: DOMAIN,
    users: [
      { address: `carol@${DOMAIN}`, password: 'carol-pw' },
      { address: `dave@${DOMAIN}`, password: 'dave-pw' },
      { address: `svc@${DOMAIN}`, password: 'svc-pw' },
    ],
  });
  const grant = await runCli(['mailbox', 'impersonation', 'grant', `svc@${DOMAIN}`, ...exchange.storageArgs]);
  assert.equal(grant.code, 0, grant.stderr);
  dir = mkdtempSync(path.join(tmpdir(), 'parley-mailbox-test-'));
  configFile = path.join(dir, 'parley.json');
  const ews = { url: `http://${exchange.http.host}:${exchange.http.port}/EWS/Exchange.asmx`, username: `svc@${DOMAIN}`, timeout: 5 };
  const graph = { kind: 'graph', tenantId: standIn.tenantId, clientId: CLIENT_ID, graphUrl: standIn.graphUrl, authorityHost: standIn.authorityHost, timeout: 5 };
  const [flag, where] = exchange.storageArgs;
  writeFileSync(
    configFile,
    JSON.stringify({
      domain: DOMAIN,
      // the embedded store of these tests is the second Parley's (its users are carol, dave and svc)
      ...(flag === '--database' ? { dataDir: exchange.dataDir, database: where } : { dataDir: where }),
      mailboxes: {
        servers: { exchange: { ...ews, password: 'svc-pw' }, badpw: { ...ews, password: 'wrong' }, online: { ...graph, clientSecret: 'right' }, badsecret: { ...graph, clientSecret: 'wrong' } },
        users: { [`dave@${DOMAIN}`]: 'exchange', [`erin@${DOMAIN}`]: 'badpw', [`bob@${DOMAIN}`]: 'online', [`frank@${DOMAIN}`]: 'badsecret' },
      },
    }),
  );
});

after(async () => {
  await exchange?.stop();
  await standIn?.close();
  rmSync(dir, { recursive: true, force: true });
});

const test = (address: string) => runCli(['mailbox', 'test', address, '--config', configFile], { env: { NODE_EXTRA_CA_CERTS: standIn.caFile } });
/** `ok   sign-in` / `FAIL mailbox` per line */
const steps = (stdout: string) => stdout.split('\n').filter((l) => /^(ok|FAIL) /.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(' '));

describe('parley mailbox test', () => {
  it('embedded: all four steps pass for a user', async () => {
    const r = await test(`carol@${DOMAIN}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /carol@parley\.test: mailbox server embedded/);
    assert.deepEqual(steps(r.stdout), ['ok sign-in', 'ok mailbox', 'ok folder', 'ok write']);
  });

  it('embedded: no such user fails at "mailbox", saying what to do; exit 1', async () => {
    const r = await test(`nobody@${DOMAIN}`);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.deepEqual(steps(r.stdout), ['ok sign-in', 'FAIL mailbox']);
    assert.match(r.stdout, /there is no user nobody@parley\.test.*parley user add/);
  });

  it('EWS (Parley\'s own EWS as the Exchange): all four steps pass, and the write leaves nothing behind', async () => {
    const r = await test(`dave@${DOMAIN}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(steps(r.stdout), ['ok sign-in', 'ok mailbox', 'ok folder', 'ok write']);
    const ls = await runCli(['mailbox', 'ls', `dave@${DOMAIN}`, 'conversationhistory', ...exchange.storageArgs]);
    assert.match(ls.stdout, /is empty/);
  });

  it('EWS: a wrong password fails at "sign-in"; without the impersonation right it fails at "mailbox", naming the right', async () => {
    const wrong = await test(`erin@${DOMAIN}`);
    assert.equal(wrong.code, 1);
    assert.deepEqual(steps(wrong.stdout), ['FAIL sign-in']);
    assert.match(wrong.stdout, /refused the credentials.*check username and password/);
    assert.equal((await runCli(['mailbox', 'impersonation', 'revoke', `svc@${DOMAIN}`, ...exchange.storageArgs])).code, 0);
    try {
      const denied = await test(`dave@${DOMAIN}`);
      assert.equal(denied.code, 1);
      assert.deepEqual(steps(denied.stdout), ['ok sign-in', 'FAIL mailbox']);
      assert.match(denied.stdout, /ApplicationImpersonation/);
    } finally {
      assert.equal((await runCli(['mailbox', 'impersonation', 'grant', `svc@${DOMAIN}`, ...exchange.storageArgs])).code, 0);
    }
  });

  it('Graph (stand-in): all four steps pass, and the test message is deleted for good', async () => {
    const r = await test(`bob@${DOMAIN}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /bob@parley\.test: mailbox server online/);
    assert.deepEqual(steps(r.stdout), ['ok sign-in', 'ok mailbox', 'ok folder', 'ok write']);
    assert.equal(standIn.messages(`bob@${DOMAIN}`).length, 0);
  });

  it('Graph: a wrong secret fails at "sign-in"; an access policy that leaves the mailbox out fails at "mailbox", naming the permission', async () => {
    const wrong = await test(`frank@${DOMAIN}`);
    assert.equal(wrong.code, 1);
    assert.deepEqual(steps(wrong.stdout), ['FAIL sign-in']);
    assert.match(wrong.stdout, /invalid_client/);
    standIn.deny(`bob@${DOMAIN}`);
    try {
      const denied = await test(`bob@${DOMAIN}`);
      assert.equal(denied.code, 1);
      assert.deepEqual(steps(denied.stdout), ['ok sign-in', 'FAIL mailbox']);
      assert.match(denied.stdout, /Mail\.ReadWrite application permission/);
    } finally {
      standIn.deny(`bob@${DOMAIN}`, false);
    }
    assert.deepEqual(standIn.rejected().map((q) => `${q.method} ${q.path}: ${q.rejected}`), []);
  });

  it('usage errors exit 2', async () => {
    const none = await runCli(['mailbox', 'test', '--config', configFile]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /expected one SIP-ADDRESS/);
    const unknown = await runCli(['mailbox', 'test', `bob@${DOMAIN}`, '--nope']);
    assert.equal(unknown.code, 2);
  });
});
