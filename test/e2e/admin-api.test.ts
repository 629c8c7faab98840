import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../harness/server.ts';
import { runCli, startServer } from '../harness/server.ts';

// The server makes its admin token at the first start, in <dataDir>/secrets/admin.token.
let server: RunningServer;
let base: string;
let tokenFile: string;
let token: string;

before(async () => {
  server = await startServer();
  base = `http://${server.http.host}:${server.http.port}`;
  tokenFile = path.join(server.dataDir, 'secrets', 'admin.token');
  token = readFileSync(tokenFile, 'utf8').trim();
});
after(() => server?.stop());

const remote = (...args: string[]) => runCli(['admin', '--url', base, '--token-file', tokenFile, ...args]);

async function call(method: string, urlPath: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, json: text === '' ? undefined : (JSON.parse(text) as Record<string, any>) };
}

function assertProblem(r: Awaited<ReturnType<typeof call>>, status: number, code: string) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.type, /^application\/problem\+json/);
  assert.equal(r.json?.status, status);
  assert.equal(r.json?.code, code);
  assert.equal(typeof r.json?.title, 'string');
  assert.equal(typeof r.json?.detail, 'string');
  assert.equal(r.json?.type, 'about:blank');
}

describe('the admin HTTP API of a running server', () => {
  it('keeps its token owner-only in the data directory', () => {
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(tokenFile)).mode & 0o777, 0o700);
    assert.doesNotMatch(server.readyLine, /admin|token/i);
  });

  it("runs the seed's two commands with parley admin --url --token-file, audited as admin-api", async () => {
    // spawned without a shell, so $False reaches Parley as typed
    const set = await remote('Set-CsImConfiguration', '-EnableOfflineIM', '$False');
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, '');
    const get = await remote('Get-CsImConfiguration');
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^Identity +: Global\nEnableOfflineIm +: False\n/);
    // the same data as local mode sees
    const local = await runCli(['admin', ...server.storageArgs, 'Get-CsImConfiguration']);
    assert.equal(local.stdout, get.stdout);

    const audit = await remote('--json', 'Get-CsAdminAudit', '-Last', '1');
    assert.equal(audit.code, 0, audit.stderr);
    const [entry] = JSON.parse(audit.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual({ ...entry, When: undefined }, {
      Identity: 'Global', When: undefined, Who: 'admin-api', Cmdlet: 'Set-CsImConfiguration', Property: 'EnableOfflineIm', OldValue: 'True', NewValue: 'False',
    });
  });

  it('exits like local mode on mistakes, and clearly when the token is wrong', async () => {
    const typo = await remote('Get-CsImConfigration');
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /did you mean Get-CsImConfiguration\?/);
    const missing = await remote('Get-CsImConfiguration', 'Site:Atlantis');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Atlantis/);
    const wrong = await runCli(['admin', '--url', base, 'Get-CsSite'], { env: { PARLEY_ADMIN_TOKEN: 'x'.repeat(43) } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the admin token/);
  });

  it('answers JSON over raw HTTP, and problem JSON for every mistake', async () => {
    const set = await call('POST', '/admin/cmdlets/Set-CsImConfiguration', JSON.stringify({ parameters: { Identity: 'Global', EnableOfflineIm: true } }));
    assert.equal(set.status, 200);
    const get = await call('POST', '/admin/cmdlets/Get-CsImConfiguration', JSON.stringify({ parameters: { Identity: 'Global' } }));
    assert.equal(get.json?.results[0].EnableOfflineIm, true);
    const list = await call('GET', '/admin/cmdlets');
    assert.ok(list.json?.cmdlets.some((c: { name: string }) => c.name === 'Grant-CsClientPolicy'));

    const noToken = await call('GET', '/admin/cmdlets', undefined, { authorization: '' });
    assertProblem(noToken, 401, 'UNAUTHORIZED');
    assert.match(noToken.headers.get('www-authenticate') ?? '', /^Bearer /);
    assertProblem(await call('POST', '/admin/cmdlets/Set-CsImConfiguration', JSON.stringify({ parameters: { EnableOfflineIm: 'sometimes' } })), 400, 'BAD_VALUE');
    assertProblem(await call('POST', '/admin/cmdlets/Set-CsImConfiguration', JSON.stringify({ parameters: { Nope: 1 } })), 400, 'UNKNOWN_PARAMETER');
    const unknown = await call('POST', '/admin/cmdlets/Get-CsImConfigration', '{}');
    assertProblem(unknown, 404, 'UNKNOWN_CMDLET');
    assert.equal(unknown.json?.closest, 'Get-CsImConfiguration');
    assertProblem(await call('POST', '/admin/cmdlets/Get-CsSite', '<Identity/>', { 'content-type': 'application/xml' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assertProblem(await call('POST', '/admin/cmdlets/Get-CsSite', JSON.stringify({ parameters: { Identity: 'x'.repeat(400_000) } })), 413, 'BODY_TOO_LARGE');
    assertProblem(await call('POST', '/admin/cmdlets/Get-CsSite', '{not json'), 400, 'BAD_JSON');
    assertProblem(await call('POST', '/admin/cmdlets/Get-CsUser', JSON.stringify({ parameters: { Identity: 'nobody' } })), 404, 'USER_NOT_FOUND');
    // the server is still there
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.equal(server.exitStatus(), null);
  });
});
