import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, chmodSync, writeFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AdminError, CMDLETS } from '../../src/admin/index.ts';
import { AdminApiError, bindJsonParameters, createAdminRoute, toWireParameters } from '../../src/admin/http/index.ts';
import type { AdminEndpoint, AdminRouteOptions } from '../../src/admin/http/index.ts';
import { isSecureOrLocal } from '../../src/auth/http-basic.ts';
import { EndpointTable } from '../../src/admin/http/endpoints.ts';
import { problemOf } from '../../src/admin/http/problem.ts';
import { parametersOf } from '../../src/admin/http/validate.ts';
import { bindArguments, findCmdlet } from '../../src/admin/parse.ts';
import { DirectoryError } from '../../src/directory/index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { adminTokenPath, loadAdminToken } from '../../src/server/secrets.ts';
import { SettingsError, effectiveSettings } from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { openDatabase, sqliteSql } from '../../src/storage/index.ts';
import type { EngineUnderTest } from '../harness/engines.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import { addTestUser, migrateSettings } from './settings-fixture.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-admin-http-'));
after(() => rmSync(root, { recursive: true, force: true }));
after(closeTestPostgres);
let dirs = 0;
const TOKEN = 'test-token-0123456789abcdefghijklmnopqrstuvw';
const cmdlet = (name: string) => findCmdlet(CMDLETS, name);

const serve = (options: Partial<AdminRouteOptions> = {}) => serveOn(options);

/**
 * The admin route on a real HTTP listener (port 0), against a fresh database of `engine` (default
 * SQLite in a data directory).
 */
async function serveOn(options: Partial<AdminRouteOptions> = {}, engine?: EngineUnderTest) {
  const sql: SqlDatabase = engine === undefined ? sqliteSql(openDatabase(join(root, `data-${++dirs}`))) : await engine.open();
  await migrateSettings(sql);
  const route = createAdminRoute({ sql, logger: createLogger('silent'), token: TOKEN, domain: 'parley.test', product: 'Parley/test', ...options });
  const server = http.createServer((req, res) => {
    if (!route.handle(req, res, new URL(req.url ?? '/', 'http://localhost'))) {
      res.writeHead(418);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sql.close();
  });
  return {
    sql,
    route,
    base,
    async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const init: RequestInit = { method, headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers } };
      if (body !== undefined) init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as string | Uint8Array<ArrayBuffer>) : JSON.stringify(body);
      const res = await fetch(`${base}${path}`, init);
      const text = await res.text();
      return { status: res.status, headers: res.headers, text, json: text === '' ? undefined : (JSON.parse(text) as Record<string, any>) };
    },
    run(name: string, parameters: Record<string, unknown> = {}) {
      return this.call('POST', `/admin/cmdlets/${name}`, { parameters });
    },
  };
}

function assertProblem(r: { status: number; headers: Headers; json?: Record<string, any> }, status: number, code: string, detail?: RegExp) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(r.json?.type, 'about:blank');
  assert.equal(r.json?.status, status);
  assert.equal(r.json?.title, http.STATUS_CODES[status]);
  assert.equal(r.json?.code, code);
  assert.equal(typeof r.json?.detail, 'string');
  if (detail) assert.match(r.json?.detail, detail);
}

describe('admin API: the schema of a cmdlet call', () => {
  it('binds JSON values to the parameter types, names in any case', () => {
    const set = cmdlet('Set-CsImConfiguration');
    assert.deepEqual(bindJsonParameters(set, { identity: 'Global', EnableOfflineIM: false, OfflineImPickupDelay: '00:05:00' }), {
      Identity: 'Global', EnableOfflineIm: false, OfflineImPickupDelay: 300,
    });
    // strings are read as the command line reads them
    assert.deepEqual(bindJsonParameters(set, { EnableOfflineIm: '$False', OfflineImMaxAge: '1.00:00:00' }), { EnableOfflineIm: false, OfflineImMaxAge: 86400 });
    assert.deepEqual(bindJsonParameters(cmdlet('Grant-CsClientPolicy'), { Identity: 'alice', PolicyName: null }), { Identity: 'alice', PolicyName: null });
    assert.deepEqual(bindJsonParameters(cmdlet('Get-CsAdminAudit'), { Last: 3 }), { Last: 3 });
  });

  it('refuses what the command line refuses, with the same code and message', () => {
    const cases: Array<[string, Record<string, unknown>, string[]]> = [
      ['Set-CsImConfiguration', { EnableOfflineIm: 'maybe' }, ['-EnableOfflineIm', 'maybe']],
      ['Set-CsImConfiguration', { OfflineImPickupDelay: '25:00:00' }, ['-OfflineImPickupDelay', '25:00:00']],
      ['Set-CsImConfiguration', { EnableOfflineIm: null }, ['-EnableOfflineIm', '$Null']],
      ['Set-CsImConfiguration', { Bogus: 1 }, ['-Bogus', '1']],
      ['New-CsSite', {}, []],
      ['Get-CsAdminAudit', { Last: '-1' }, ['-Last', '-1']],
    ];
    for (const [name, json, argv] of cases) {
      const viaCli = captureError(() => bindArguments(cmdlet(name), argv));
      const viaApi = captureError(() => bindJsonParameters(cmdlet(name), json));
      assert.equal(viaApi.code, viaCli.code, name);
      assert.equal(viaApi.message, viaCli.message, name);
    }
  });

  it('refuses values of the wrong JSON type, and prefixes (the API names parameters in full)', () => {
    const set = cmdlet('Set-CsImConfiguration');
    assert.match(captureError(() => bindJsonParameters(set, { EnableOfflineIm: { a: 1 } })).message, /takes a Boolean .*not "\{\\"a\\":1\}"/);
    assert.match(captureError(() => bindJsonParameters(set, { Identity: 5 })).message, /-Identity takes a string, not "5"/);
    assert.match(captureError(() => bindJsonParameters(set, { OfflineImMaxAge: true })).message, /takes a TimeSpan/);
    assert.equal(captureError(() => bindJsonParameters(cmdlet('Get-CsAdminAudit'), { Last: 1.5 })).code, 'BAD_VALUE');
    assert.equal(captureError(() => bindJsonParameters(set, { Enable: true })).code, 'UNKNOWN_PARAMETER');
    assert.equal(captureError(() => bindJsonParameters(set, { identity: 'Global', IDENTITY: 'Global' })).code, 'BAD_SYNTAX');
    assert.match(captureError(() => bindJsonParameters(cmdlet('Enable-CsUser'), { Identity: 'a', Password: 7 })).message, /-Password takes a string, not \*\*\*/);
  });

  it('checks the shape of the body', () => {
    assert.deepEqual(parametersOf(undefined), {});
    assert.deepEqual(parametersOf({}), {});
    assert.deepEqual(parametersOf({ parameters: { A: 1 } }), { A: 1 });
    for (const body of [[], 'x', null, { parameters: [] }, { parameters: 'x' }, { Identity: 'Global' }]) {
      assert.equal(captureError(() => parametersOf(body)).code, 'BAD_BODY', JSON.stringify(body));
    }
  });

  it('sends what the command line bound as the JSON the API binds back to the same values', () => {
    for (const [name, argv] of [
      ['Set-CsImConfiguration', ['-EnableOfflineIM', '$False', '-OfflineImPickupDelay', '00:10:00', '-OfflineImMaxAge', '2.03:04:05']],
      ['Grant-CsClientPolicy', ['alice@parley.test', '$Null']],
      ['Get-CsAdminAudit', ['-Last', '5', 'site:*']],
      ['Enable-CsUser', ['bob', '-Password', "it's secret", '-DisplayName', 'Bob']],
    ] as const) {
      const spec = cmdlet(name);
      const bound = bindArguments(spec, argv);
      const wire = JSON.parse(JSON.stringify(toWireParameters(spec, bound)));
      assert.deepEqual(bindJsonParameters(spec, wire), bound, name);
    }
    assert.deepEqual(toWireParameters(cmdlet('Set-CsImConfiguration'), { OfflineImMaxAge: 90061 }), { OfflineImMaxAge: '1.01:01:01' });
  });
});

describe('admin API: problems', () => {
  it('maps every error with an HTTP status to problem JSON with its code', () => {
    assert.deepEqual(problemOf(new DirectoryError('SITE_IN_USE', 'in use')), { type: 'about:blank', title: 'Conflict', status: 409, detail: 'in use', code: 'SITE_IN_USE' });
    assert.equal(problemOf(new SettingsError('UNKNOWN_IDENTITY', 'x'))?.status, 404);
    assert.equal(problemOf(new SettingsError('BAD_TIMESPAN', 'x'))?.status, 400);
    assert.equal(problemOf(new AdminError('UNKNOWN_CMDLET', 'x'))?.status, 404);
    assert.equal(problemOf(new AdminError('BAD_VALUE', 'x'))?.status, 400);
    assert.equal(problemOf(new AdminApiError('BODY_TOO_LARGE', 'x'))?.status, 413);
    assert.deepEqual(problemOf(new AdminApiError('NOT_FOUND', 'x'), { closest: null }), { closest: null, type: 'about:blank', title: 'Not Found', status: 404, detail: 'x', code: 'NOT_FOUND' });
    // not ours: the caller answers 500 and logs it
    assert.equal(problemOf(new Error('bug')), undefined);
    assert.equal(problemOf('text'), undefined);
  });
});

describe('admin API: the token', () => {
  it('is made once, owner-only, in <dataDir>/secrets/admin.token, and reused', () => {
    const dataDir = join(root, 'token-dir');
    const token = loadAdminToken(dataDir);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    const file = adminTokenPath(dataDir);
    assert.equal(file, join(dataDir, 'secrets', 'admin.token'));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dataDir, 'secrets')).mode & 0o777, 0o700);
    assert.equal(readFileSync(file, 'utf8'), `${token}\n`);
    assert.equal(loadAdminToken(dataDir), token);
    // a copy with loose permissions is tightened; a file without a token is replaced
    chmodSync(file, 0o644);
    assert.equal(loadAdminToken(dataDir), token);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    writeFileSync(file, 'short\n');
    const replaced = loadAdminToken(dataDir);
    assert.notEqual(replaced, token);
    assert.match(replaced, /^[A-Za-z0-9_-]{43}$/);
  });

  it('is required on every request, compared in constant time, with WWW-Authenticate: Bearer', async () => {
    const s = await serve();
    const none = await s.call('GET', '/admin/cmdlets', undefined, { authorization: '' });
    assertProblem(none, 401, 'UNAUTHORIZED', /Bearer/);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="parley-admin"');
    const wrong = await s.call('GET', '/admin/cmdlets', undefined, { authorization: `Bearer ${TOKEN}x` });
    assertProblem(wrong, 401, 'UNAUTHORIZED');
    assert.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="parley-admin", error="invalid_token"');
    assertProblem(await s.call('GET', '/admin/cmdlets', undefined, { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }), 401, 'UNAUTHORIZED');
    assertProblem(await s.call('GET', '/admin/nothing-here', undefined, { authorization: '' }), 401, 'UNAUTHORIZED');
    // a refused request with a body it did not read: answered, then the connection closes
    const big = await s.call('POST', '/admin/cmdlets/Get-CsSite', 'x'.repeat(200_000), { authorization: 'Bearer nope-nope-nope-nope-nope' });
    assertProblem(big, 401, 'UNAUTHORIZED');
    assert.equal((await s.call('GET', '/admin/cmdlets', undefined, { authorization: `bearer ${TOKEN}` })).status, 200);
    assert.throws(() => createAdminRoute({ sql: s.sql, logger: createLogger('silent'), token: 'short', domain: 'x', product: 'x' }), /too short/);
  });

  it('is refused over plain HTTP from another host than loopback', () => {
    const req = (remoteAddress: string, encrypted?: boolean) => ({ socket: { remoteAddress, encrypted } }) as unknown as http.IncomingMessage;
    assert.equal(isSecureOrLocal(req('127.0.0.1')), true);
    assert.equal(isSecureOrLocal(req('::1')), true);
    assert.equal(isSecureOrLocal(req('::ffff:127.0.0.1')), true);
    assert.equal(isSecureOrLocal(req('192.0.2.7')), false);
    assert.equal(isSecureOrLocal(req('192.0.2.7', true)), true);
  });
});

for (const engine of ENGINES) describe(`admin API: cmdlets over HTTP on ${engine.name}`, () => {
  const serve = (options: Partial<AdminRouteOptions> = {}) => serveOn(options, engine);
  it('lists the cmdlets with their parameters', async () => {
    const s = await serve();
    const list = await s.call('GET', '/admin/cmdlets');
    assert.equal(list.status, 200);
    assert.match(list.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(list.headers.get('cache-control'), 'no-store');
    assert.deepEqual(list.json?.cmdlets.map((c: { name: string }) => c.name), CMDLETS.map((c) => c.name));
    const one = await s.call('GET', '/admin/cmdlets/set-csimconfiguration');
    assert.equal(one.json?.name, 'Set-CsImConfiguration');
    assert.deepEqual(one.json?.parameters[1], { name: 'EnableOfflineIm', type: 'bool', required: false, nullable: false, help: one.json?.parameters[1].help });
    const user = await s.call('GET', '/admin/cmdlets/Enable-CsUser');
    assert.equal(user.json?.parameters.find((p: { name: string }) => p.name === 'Password').secret, true);
  });

  it("runs the seed's two commands, audited as admin-api, and tells the settings listener", async () => {
    let changes = 0;
    const s = await serve({ onSettingsChanged: () => changes++ });
    const set = await s.run('Set-CsImConfiguration', { EnableOfflineIM: false });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(set.json, { cmdlet: 'Set-CsImConfiguration', results: [] });
    assert.equal(changes, 1);
    const get = await s.call('POST', '/admin/cmdlets/Get-CsImConfiguration');
    assert.deepEqual(get.json?.results, [{
      Identity: 'Global', EnableOfflineIm: false, OfflineImPickupDelay: '00:02:00', OfflineImMaxAge: '1.00:00:00', ConversationIdleTimeout: '00:10:00', UnreadMissedTimeout: '00:05:00',
    }]);
    assert.equal(changes, 1);
    const audit = await s.run('Get-CsAdminAudit', { Last: 1 });
    assert.deepEqual({ ...audit.json?.results[0], When: undefined }, {
      Identity: 'Global', When: undefined, Who: 'admin-api', Cmdlet: 'Set-CsImConfiguration', Property: 'EnableOfflineIm', OldValue: 'True', NewValue: 'False',
    });
    // the route's listener failing does not fail the change
    const failing = await serve({ onSettingsChanged: () => { throw new Error('listener broke'); } });
    assert.equal((await failing.run('New-CsClientPolicy', { Identity: 'Tag:Paris' })).status, 200);
    assert.equal((await failing.run('Get-CsClientPolicy', { Identity: 'tag:paris' })).json?.results[0].Identity, 'Tag:Paris');
  });

  it('creates, grants, refuses to remove while granted, and removes a tag policy; each change audited', async () => {
    let changes = 0;
    const s = await serve({ onSettingsChanged: () => changes++ });
    await addTestUser(s.sql, 'erin@parley.test');
    assert.equal((await s.run('New-CsExternalAccessPolicy', { Identity: 'Tag:Partners', EnableFederationAccess: true })).status, 200);
    assert.equal((await s.run('Grant-CsExternalAccessPolicy', { Identity: 'erin', PolicyName: 'partners' })).status, 200);
    assert.equal((await effectiveSettings(s.sql, 'erin@parley.test')).sources.ExternalAccessPolicy, 'Tag:Partners');
    assertProblem(await s.run('Remove-CsExternalAccessPolicy', { Identity: 'Tag:Partners' }), 409, 'POLICY_IN_USE', /granted to 1 user/);
    assert.equal((await s.run('Grant-CsExternalAccessPolicy', { Identity: 'erin', PolicyName: null })).status, 200);
    assert.equal((await s.run('Remove-CsExternalAccessPolicy', { Identity: 'Tag:Partners' })).status, 200);
    assert.equal((await effectiveSettings(s.sql, 'erin@parley.test')).sources.ExternalAccessPolicy, 'Global');
    assertProblem(await s.run('Grant-CsExternalAccessPolicy', { Identity: 'nobody', PolicyName: null }), 404, 'USER_NOT_FOUND');
    const audit = await s.run('Get-CsAdminAudit', { Identity: 'erin@*' });
    assert.deepEqual(audit.json?.results.map((e: Record<string, unknown>) => [e.Property, e.OldValue, e.NewValue]), [
      ['ExternalAccessPolicy', null, 'Tag:Partners'], ['ExternalAccessPolicy', 'Tag:Partners', null],
    ]);
    assert.deepEqual((await s.run('Get-CsAdminAudit', { Last: 1 })).json?.results.map((e: Record<string, unknown>) => [e.Identity, e.NewValue]), [['Tag:Partners', 'removed']]);
    assert.equal(changes, 4, 'the listener hears of every change, not of a Get- or a refusal');
  });

  it('answers mistakes as problem JSON with the status of each', async () => {
    const s = await serve();
    const typo = await s.run('Get-CsImConfigration');
    assertProblem(typo, 404, 'UNKNOWN_CMDLET', /did you mean Get-CsImConfiguration\?/);
    assert.equal(typo.json?.closest, 'Get-CsImConfiguration');
    const param = await s.run('Set-CsImConfiguration', { EnableOfflineIMM: false });
    assertProblem(param, 400, 'UNKNOWN_PARAMETER', /did you mean -EnableOfflineIm\?/);
    assert.deepEqual(param.json?.validParameters, ['Identity', 'EnableOfflineIm', 'OfflineImPickupDelay', 'OfflineImMaxAge', 'ConversationIdleTimeout', 'UnreadMissedTimeout']);
    assertProblem(await s.run('Set-CsImConfiguration', { EnableOfflineIm: 'yes please' }), 400, 'BAD_VALUE', /-EnableOfflineIm takes a Boolean/);
    assertProblem(await s.run('Get-CsImConfiguration', { Identity: 'Site:Nowhere' }), 404, 'UNKNOWN_IDENTITY');
    assertProblem(await s.run('Get-CsUser', { Identity: 'nobody' }), 404, 'USER_NOT_FOUND');
    assertProblem(await s.run('Get-CsImConfiguration', { Identity: 'Tag:X' }), 400, 'BAD_IDENTITY');
    assertProblem(await s.run('New-CsSite'), 400, 'MISSING_PARAMETER', /New-CsSite needs -Identity/);
    await s.run('New-CsSite', { Identity: 'Paris' });
    assertProblem(await s.run('New-CsSite', { Identity: 'Paris' }), 409, 'SITE_EXISTS');
    assert.equal((await s.run('Enable-CsUser', { Identity: 'alice', Password: 'pw', Site: 'Paris' })).status, 200);
    assertProblem(await s.run('Remove-CsSite', { Identity: 'Paris' }), 409, 'SITE_IN_USE', /still used by 1 user/);
  });

  it('shows and sets ConversationIdleTimeout and UnreadMissedTimeout; describes them; refuses values out of range', async () => {
    let changes = 0;
    const s = await serve({ onSettingsChanged: () => changes++ });
    const described = await s.call('GET', '/admin/cmdlets/Set-CsImConfiguration');
    const params = described.json?.parameters as Array<{ name: string; type: string; help: string }>;
    const idle = params.find((p) => p.name === 'ConversationIdleTimeout');
    const unread = params.find((p) => p.name === 'UnreadMissedTimeout');
    assert.equal(idle?.type, 'timespan');
    assert.match(idle?.help ?? '', /Conversation History/);
    assert.equal(unread?.type, 'timespan');
    assert.match(unread?.help ?? '', /00:00:00 turns it off/);

    assertProblem(await s.run('Set-CsImConfiguration', { ConversationIdleTimeout: '00:00:00' }), 400, 'BAD_TIMESPAN', /^ConversationIdleTimeout must be between 00:00:01 and 1\.00:00:00$/);
    assertProblem(await s.run('Set-CsImConfiguration', { UnreadMissedTimeout: '1.00:00:01' }), 400, 'BAD_TIMESPAN', /^UnreadMissedTimeout must be between 00:00:00 and 1\.00:00:00$/);
    assertProblem(await s.run('Set-CsImConfiguration', { UnreadMissedTimeout: 'five minutes' }), 400, 'BAD_VALUE', /-UnreadMissedTimeout takes a TimeSpan/);
    assert.equal(changes, 0);

    const set = await s.run('Set-CsImConfiguration', { ConversationIdleTimeout: '00:00:05', UnreadMissedTimeout: '00:00:00' });
    assert.equal(set.status, 200, set.text);
    assert.equal(changes, 1);
    const get = await s.run('Get-CsImConfiguration', { Identity: 'Global' });
    assert.equal(get.json?.results[0].ConversationIdleTimeout, '00:00:05');
    assert.equal(get.json?.results[0].UnreadMissedTimeout, '00:00:00');
  });

  it('refuses a body that is not JSON, too large, or of the wrong shape; never crashes', async () => {
    const s = await serve({ maxBodyBytes: 1024 });
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', 'Identity=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', '{}', { 'content-type': 'application/json; charset=latin1' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    const untyped = await fetch(`${s.base}/admin/cmdlets/Get-CsSite`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: new Uint8Array(Buffer.from('{}')) });
    assert.equal(untyped.status, 415);
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', JSON.stringify({ parameters: { Identity: 'x'.repeat(2000) } })), 413, 'BODY_TOO_LARGE');
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', '{"parameters":'), 400, 'BAD_JSON');
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', new Uint8Array([0x7b, 0xff, 0x7d])), 400, 'BAD_JSON', /not valid UTF-8/);
    // a chunked body (no Content-Length) is counted while it arrives
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${s.base}/admin/cmdlets/Get-CsSite`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write('{"parameters": {"Identity": "');
      req.write('x'.repeat(600));
      req.end('x'.repeat(600));
    });
    assert.equal(chunked.status, 413);
    assert.equal(JSON.parse(chunked.body).code, 'BODY_TOO_LARGE');
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', '[1,2]'), 400, 'BAD_BODY');
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', { Identity: 'x' }), 400, 'BAD_BODY', /only member is "parameters"/);
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', { parameters: { Identity: ['a'] } }), 400, 'BAD_VALUE');
    const deep = `${'['.repeat(400)}${']'.repeat(400)}`;
    assertProblem(await s.call('POST', '/admin/cmdlets/Get-CsSite', deep), 400, 'BAD_BODY');
    assertProblem(await s.call('DELETE', '/admin/cmdlets/Get-CsSite'), 405, 'METHOD_NOT_ALLOWED');
    assert.equal((await s.call('DELETE', '/admin/cmdlets')).headers.get('allow'), 'GET');
    assertProblem(await s.call('GET', '/admin/nothing'), 404, 'NOT_FOUND');
    assertProblem(await s.call('GET', '/admin/cmdlets/%E0%A4%A'), 400, 'BAD_PATH');
    // an empty body, or none, is no parameters
    assert.equal((await s.call('POST', '/admin/cmdlets/Get-CsSite', '', { 'content-type': 'application/json' })).status, 200);
    // the route serves /admin and below only
    assert.equal((await s.call('GET', '/administrator')).status, 418);
    // still serving
    assert.equal((await s.call('GET', '/admin/cmdlets')).status, 200);
  });
});

describe('admin API: endpoints of other capabilities', () => {
  it('registers endpoints with :params, answers their JSON, and maps their errors', async () => {
    const calls: unknown[] = [];
    const spool: AdminEndpoint[] = [
      { method: 'GET', path: '/spool', handle: ({ query }) => ({ entries: [], limit: query.get('limit') }) },
      { method: 'GET', path: '/spool/stats', handle: () => ({ pending: 0 }) },
      {
        method: 'GET',
        path: '/spool/:id',
        handle({ params }) {
          if (params.id !== '12') throw new AdminApiError('NOT_FOUND', `no spool entry ${params.id}`);
          return { id: 12 };
        },
      },
      {
        method: 'POST',
        path: '/spool/:id/retry',
        handle: ({ params, body, actor }) => {
          calls.push({ params: { ...params }, body, actor });
          return undefined;
        },
      },
      { method: 'DELETE', path: '/spool/:id', handle: () => { throw new Error('a bug'); } },
    ];
    const s = await serve({ endpoints: spool });
    s.route.register({ method: 'GET', path: '/later', handle: async () => ({ ok: true }) });
    assert.deepEqual((await s.call('GET', '/admin/spool?limit=5')).json, { entries: [], limit: '5' });
    assert.deepEqual((await s.call('GET', '/admin/spool/stats')).json, { pending: 0 });
    assert.deepEqual((await s.call('GET', '/admin/spool/12')).json, { id: 12 });
    assertProblem(await s.call('GET', '/admin/spool/13'), 404, 'NOT_FOUND', /no spool entry 13/);
    const retry = await s.call('POST', '/admin/spool/a%2Fb/retry', { now: true });
    assert.equal(retry.status, 204);
    assert.equal(retry.text, '');
    assert.deepEqual(calls, [{ params: { id: 'a/b' }, body: { now: true }, actor: 'admin-api' }]);
    assertProblem(await s.call('DELETE', '/admin/spool/12'), 500, 'INTERNAL', /see the server log/);
    assert.deepEqual((await s.call('GET', '/admin/later')).json, { ok: true });
    assert.equal((await s.call('PUT', '/admin/spool/12')).headers.get('allow'), 'DELETE, GET');
    assert.throws(() => s.route.register({ method: 'GET', path: '/spool/:other', handle: () => 1 }), /registered twice/);
    assert.throws(() => s.route.register({ method: 'GET', path: '/cmdlets/:x', handle: () => 1 }), /registered twice/);
    assert.throws(() => s.route.register({ method: 'GET', path: 'spool', handle: () => 1 }), /not like/);
  });

  it('matches literal segments before :params', () => {
    const table = new EndpointTable();
    table.add({ method: 'GET', path: '/a/:id', handle: () => 'param' });
    table.add({ method: 'GET', path: '/a/b', handle: () => 'literal' });
    assert.equal(table.find('GET', '/a/b').endpoint.handle({} as never), 'literal');
    assert.deepEqual({ ...table.find('GET', '/a/c/').params }, { id: 'c' });
  });
});

function captureError(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (error) {
    if (error instanceof AdminError || error instanceof AdminApiError) return { code: error.code, message: error.message };
    throw error;
  }
  assert.fail('no error');
}
