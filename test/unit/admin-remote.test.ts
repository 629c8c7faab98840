import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runAdminCommand } from '../../src/admin/index.ts';
import { createAdminRoute } from '../../src/admin/http/index.ts';
import { exitCodeOf } from '../../src/admin/remote.ts';
import { makeProblem } from '../../src/admin/http/problem.ts';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { SETTINGS_MIGRATIONS } from '../../src/settings/index.ts';
import { migrate } from '../../src/storage/index.ts';
import type { CliEngine } from '../harness/cli-storage.ts';
import { CLI_ENGINES } from '../harness/cli-storage.ts';
import { closeTestPostgres } from '../harness/engines.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-admin-remote-'));
after(() => rmSync(root, { recursive: true, force: true }));
after(closeTestPostgres);
const TOKEN = 'remote-token-0123456789abcdefghijklmnopqrstu';
const tokenFile = join(root, 'admin.token');
writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

/** A server with the admin route on port 0, and `parley admin` runners for both modes against the same storage. */
async function setup(engine: CliEngine) {
  const store = await engine.fresh();
  const dataDir = store.dataDir;
  const sql = await store.open();
  await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
  const route = createAdminRoute({ sql, logger: createLogger('silent'), token: TOKEN, domain: 'parley.test', product: 'Parley/test' });
  const server = http.createServer((req, res) => {
    if (!route.handle(req, res, new URL(req.url ?? '/', 'http://localhost'))) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sql.close();
    await store.drop();
  });
  const run = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runAdminCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, { dataDir, domain: 'parley.test', env });
    return { code, out, err, text: out.join('\n'), error: err.join('\n') };
  };
  return {
    url,
    /** --data-dir DIR or --database URL */
    storage: store.args,
    run,
    remote: (...args: string[]) => run(['--url', url, '--token-file', tokenFile, ...args]),
    local: (...args: string[]) => run([...store.args, ...args]),
  };
}

for (const engine of CLI_ENGINES) describe(`parley admin --url (remote mode), the server on ${engine.name}`, () => {
  it("runs the seed's two commands through the API and prints what local mode prints", async () => {
    const s = await setup(engine);
    const set = await s.remote('Set-CsImConfiguration', '-EnableOfflineIM', '$False');
    assert.equal(set.code, 0, set.error);
    assert.deepEqual(set.out, []);
    const remote = await s.remote('Get-CsImConfiguration');
    assert.equal(remote.code, 0, remote.error);
    assert.deepEqual(remote.out, [
      'Identity                : Global',
      'EnableOfflineIm         : False',
      'OfflineImPickupDelay    : 00:02:00',
      'OfflineImMaxAge         : 1.00:00:00',
      'ConversationIdleTimeout : 00:10:00',
      'UnreadMissedTimeout     : 00:05:00',
    ]);
    assert.deepEqual(remote.out, (await s.local('Get-CsImConfiguration')).out);

    await s.remote('New-CsSite', 'Paris');
    await s.remote('Enable-CsUser', 'alice', '-Password', 'pw', '-DisplayName', 'Alice', '-Site', 'Paris');
    await s.remote('Set-CsImConfiguration', '-OfflineImPickupDelay', '00:10:00');
    for (const args of [['Get-CsUser'], ['Get-CsSite'], ['Get-CsImConfiguration'], ['Get-CsAdminAudit'], ['--json', 'Get-CsAdminAudit']]) {
      const viaApi = await s.remote(...args);
      const viaDb = await s.local(...args);
      assert.equal(viaApi.code, 0, viaApi.error);
      assert.equal(viaApi.text, viaDb.text, args.join(' '));
    }
    const audit = JSON.parse((await s.remote('--json', 'Get-CsAdminAudit')).text) as Array<Record<string, unknown>>;
    assert.ok(audit.length >= 4);
    assert.ok(audit.every((e) => e.Who === 'admin-api'));
    assert.ok(!JSON.stringify(audit).includes('"pw"'));
  });

  it('gives the messages and exit codes of local mode', async () => {
    const s = await setup(engine);
    for (const args of [
      ['Get-CsImConfigration'], // unknown cmdlet: found before any request
      ['Set-CsImConfiguration', '-Bogus', '1'],
      ['Set-CsImConfiguration', '-EnableOfflineIM'],
      ['Get-CsImConfiguration', 'Site:Nowhere'],
      ['Get-CsImConfiguration', 'Tag:Sales'],
      ['Get-CsUser', 'nobody'],
      ['Remove-CsClientPolicy', 'Tag:Nobody'],
    ]) {
      const viaApi = await s.remote(...args);
      const viaDb = await s.local(...args);
      assert.notEqual(viaApi.code, 0);
      assert.equal(viaApi.code, viaDb.code, args.join(' '));
      assert.equal(viaApi.error, viaDb.error, args.join(' '));
    }
    await s.local('New-CsSite', 'Paris');
    await s.local('Enable-CsUser', 'bob', '-Password', 'pw', '-Site', 'Paris');
    const inUse = await s.remote('Remove-CsSite', 'Paris');
    assert.equal(inUse.code, 1);
    assert.match(inUse.error, /^parley admin: the site Paris is still used by 1 user/);
  });

  it('takes the token from --token, --token-file or PARLEY_ADMIN_TOKEN, and says when it is refused', async () => {
    const s = await setup(engine);
    assert.equal((await s.run(['--url', s.url, '--token', TOKEN, 'Get-CsSite'])).code, 0);
    assert.equal((await s.run([`--url=${s.url}`, `--token=${TOKEN}`, 'Get-CsSite'])).code, 0);
    assert.equal((await s.run(['--url', s.url, 'Get-CsSite'], { PARLEY_ADMIN_TOKEN: TOKEN })).code, 0);
    const wrong = await s.run(['--url', s.url, '--token', 'not-the-token-at-all', 'Get-CsSite']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.error, /the server refused the admin token/);
    const none = await s.run(['--url', s.url, 'Get-CsSite']);
    assert.equal(none.code, 2);
    assert.match(none.error, /--url needs the admin token: --token-file/);
    const missingFile = await s.run(['--url', s.url, '--token-file', join(root, 'nope'), 'Get-CsSite']);
    assert.equal(missingFile.code, 1);
    assert.match(missingFile.error, /cannot read the token file/);
    const both = await s.run(['--url', s.url, '--token', TOKEN, '--token-file', tokenFile, 'Get-CsSite']);
    assert.equal(both.code, 2);
  });

  it('refuses mixed or incomplete options with exit 2', async () => {
    const s = await setup(engine);
    for (const [args, message] of [
      [['--url', s.url, ...s.storage, 'Get-CsSite'], /not both/],
      [['--token-file', tokenFile, 'Get-CsSite'], /go with --url/],
      [['--url'], /--url needs a value/],
      [['--url', 'ftp://x', '--token', TOKEN, 'Get-CsSite'], /only http/],
      [['--url', 'not a url', '--token', TOKEN, 'Get-CsSite'], /is not a URL/],
      [['--url', `http://u:p@127.0.0.1:1/`, '--token', TOKEN, 'Get-CsSite'], /address only/],
    ] as const) {
      const r = await s.run([...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.error, message);
    }
    const help = await s.run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.text, /--url URL --token-file FILE/);
  });

  it('says clearly when the server cannot be reached, or is not Parley', async () => {
    const s = await setup(engine);
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await s.run(['--url', `http://127.0.0.1:${port}`, '--token', TOKEN, 'Get-CsSite']);
    assert.equal(refused.code, 1);
    assert.match(refused.error, /cannot connect to http:\/\/127\.0\.0\.1:\d+: connection refused; is parley serve running/);
    const elsewhere = await s.run(['--url', `${s.url}/prefix/`, '--token', TOKEN, 'Get-CsSite']);
    assert.equal(elsewhere.code, 1);
    assert.match(elsewhere.error, /answered 404 Not Found: is it a Parley server's HTTP port\?/);
  });

  it('maps problems to exit codes as local mode does', () => {
    assert.equal(exitCodeOf(makeProblem(400, 'BAD_VALUE', 'x')), 2);
    assert.equal(exitCodeOf(makeProblem(404, 'UNKNOWN_CMDLET', 'x')), 2);
    assert.equal(exitCodeOf(makeProblem(404, 'UNKNOWN_IDENTITY', 'x')), 1);
    assert.equal(exitCodeOf(makeProblem(409, 'SITE_IN_USE', 'x')), 1);
    assert.equal(exitCodeOf(makeProblem(401, 'UNAUTHORIZED', 'x')), 1);
    assert.equal(exitCodeOf(makeProblem(500, 'INTERNAL', 'x')), 1);
  });
});
