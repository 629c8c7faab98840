// Federation administration (issue 15) end to end: the cmdlets through the real `parley admin`
// process on the running server's data directory, and through the server's admin HTTP API; the
// decision (Test-CsFederationAccess) refusing on each rule, then allowing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../harness/server.ts';
import { runCli, startServer } from '../harness/server.ts';

let server: RunningServer;
let base: string;
let tokenFile: string;

before(async () => {
  server = await startServer({ users: [{ address: 'alice@parley.test', password: 'alice-pw-1' }, { address: 'bob@parley.test', password: 'bob-pw-1' }] });
  base = `http://${server.http.host}:${server.http.port}`;
  tokenFile = path.join(server.dataDir, 'secrets', 'admin.token');
});
after(() => server?.stop());

const local = (...args: string[]) => runCli(['admin', ...server.storageArgs, ...args]);
const remote = (...args: string[]) => runCli(['admin', '--url', base, '--token-file', tokenFile, ...args]);

async function api(cmdlet: string, parameters: Record<string, unknown>) {
  const res = await fetch(`${base}/admin/cmdlets/${cmdlet}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ parameters }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

async function decision(run: typeof local, user: string, domain: string): Promise<Record<string, unknown>> {
  const r = await run('--json', 'Test-CsFederationAccess', user, domain);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as Array<Record<string, unknown>>)[0] ?? {};
}

describe('federation administration through parley admin and the admin API', () => {
  it('refuses on each rule in turn, then allows, the changes made in both modes', async () => {
    // federation off by default
    const off = await decision(remote, 'alice', 'partner.example');
    assert.equal(off.Allowed, false);
    assert.equal(off.Code, 'FEDERATION_DISABLED');
    assert.match(String(off.Reason), /Set-CsAccessEdgeConfiguration -AllowFederatedUsers \$True/);

    // local mode (the CLI on the data directory, beside the running server), spawned without a shell
    const on = await local('Set-CsAccessEdgeConfiguration', '-AllowFederatedUsers', '$True');
    assert.equal(on.code, 0, on.stderr);
    assert.equal((await decision(remote, 'alice', 'partner.example')).Code, 'DOMAIN_NOT_ALLOWED', 'the server sees the CLI change');

    const block = await api('New-CsBlockedDomain', { Identity: 'Partner.Example', Comment: 'until the contract is signed' });
    assert.equal(block.status, 200, JSON.stringify(block.json));
    assert.equal(block.json.results[0].Identity, 'partner.example');
    assert.equal((await decision(local, 'alice', 'partner.example')).Code, 'DOMAIN_BLOCKED');

    // a domain cannot be on both lists: 409 from the API, exit 1 from the CLI, naming the other list
    const both = await api('New-CsAllowedDomain', { Identity: 'partner.example' });
    assert.equal(both.status, 409);
    assert.equal(both.json.code, 'IDENTITY_EXISTS');
    assert.match(both.json.detail, /already on the blocked list \(CsBlockedDomain\)/);
    const bothCli = await remote('New-CsAllowedDomain', 'partner.example');
    assert.equal(bothCli.code, 1);
    assert.match(bothCli.stderr, /Remove-CsBlockedDomain -Identity partner.example/);

    assert.equal((await remote('Remove-CsBlockedDomain', 'partner.example')).code, 0);
    const allow = await remote('New-CsAllowedDomain', 'partner.example', '-ProxyFqdn', 'sip.partner.example:5061');
    assert.equal(allow.code, 0, allow.stderr);
    assert.match(allow.stdout, /^Identity +: partner.example\nDomain +: partner.example\nProxyFqdn +: sip.partner.example:5061\nComment +:\nWhenCreated +: \d{4}-/);

    const user = await decision(remote, 'alice', 'partner.example');
    assert.equal(user.Code, 'USER_NOT_ENABLED');
    assert.match(String(user.Reason), /alice@parley.test \(Global\) has EnableFederationAccess False/);

    assert.equal((await local('New-CsExternalAccessPolicy', 'Tag:Federated', '-EnableFederationAccess', '$True')).code, 0);
    assert.equal((await remote('Grant-CsExternalAccessPolicy', 'alice', 'Federated')).code, 0);
    assert.deepEqual(await decision(remote, 'alice', 'partner.example'), {
      Identity: 'alice@parley.test', Domain: 'partner.example', Allowed: true, Code: null, Reason: null, Route: 'sip.partner.example:5061 (ProxyFqdn)',
    });
    assert.equal((await decision(remote, 'bob', 'partner.example')).Code, 'USER_NOT_ENABLED', 'bob has no grant');
    assert.equal((await decision(remote, 'alice', 'other.example')).Code, 'DOMAIN_NOT_ALLOWED');
    assert.equal((await remote('Set-CsAccessEdgeConfiguration', '-EnablePartnerDiscovery', 'True')).code, 0);
    assert.equal((await decision(remote, 'alice', 'other.example')).Route, 'DNS SRV _sipfederationtls._tcp.other.example');
  });

  it('answers bad values as usage errors and unknown identities as failures, in both modes', async () => {
    const bad = await api('New-CsAllowedDomain', { Identity: 'x.example', ProxyFqdn: 'sip.x.example:99999' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.detail, /the port 99999 is not between 1 and 65535/);
    const own = await remote('New-CsBlockedDomain', 'parley.test');
    assert.equal(own.code, 2);
    assert.match(own.stderr, /this server's own domain/);
    const missing = await local('Remove-CsAllowedDomain', 'nowhere.example');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /there is no CsAllowedDomain nowhere.example/);
    const route = await remote('Set-CsAccessEdgeConfiguration', '-UseDefaultRouting');
    assert.equal(route.code, 2);
    assert.match(route.stderr, /-UseDefaultRouting needs -DefaultRouteFqdn/);
  });

  it('audits every change, with who made it', async () => {
    const r = await local('--json', 'Get-CsAdminAudit');
    assert.equal(r.code, 0, r.stderr);
    const entries = (JSON.parse(r.stdout) as Array<Record<string, unknown>>).filter((e) => /Domain|AccessEdge|ExternalAccess/.test(String(e.Cmdlet)));
    const seen = entries.map((e) => [e.Cmdlet, e.Identity, e.Property, e.NewValue]);
    for (const expected of [
      ['Set-CsAccessEdgeConfiguration', 'Global', 'AllowFederatedUsers', 'True'],
      ['New-CsBlockedDomain', 'partner.example', null, 'created'],
      ['Remove-CsBlockedDomain', 'partner.example', null, 'removed'],
      ['New-CsAllowedDomain', 'partner.example', 'ProxyFqdn', 'sip.partner.example:5061'],
      ['New-CsExternalAccessPolicy', 'Tag:Federated', 'EnableFederationAccess', 'True'],
      ['Grant-CsExternalAccessPolicy', 'alice@parley.test', 'ExternalAccessPolicy', 'Tag:Federated'],
      ['Set-CsAccessEdgeConfiguration', 'Global', 'EnablePartnerDiscovery', 'True'],
    ]) assert.ok(seen.some((s) => JSON.stringify(s) === JSON.stringify(expected)), `${JSON.stringify(expected)} in ${JSON.stringify(seen)}`);
    assert.ok(entries.filter((e) => e.Cmdlet === 'New-CsBlockedDomain').every((e) => e.Who === 'admin-api'));
    assert.equal(entries.filter((e) => e.Cmdlet === 'New-CsAllowedDomain' && e.Property === null).length, 1, 'the refused New- left no row');
  });
});
