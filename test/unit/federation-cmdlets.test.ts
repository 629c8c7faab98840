// The federation cmdlets through runAdminCommand (as `parley admin --data-dir` or `--database`
// runs them): parsing, `Name : Value` and --json output, exit codes, the audit log.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { runAdminCommand } from '../../src/admin/index.ts';
import type { CliStorage } from '../harness/cli-storage.ts';
import { CLI_ENGINES, storesOf } from '../harness/cli-storage.ts';
import { closeTestPostgres } from '../harness/engines.ts';

after(closeTestPostgres);
/** `parley admin` on `store` (--data-dir DIR or --database URL before the cmdlet). */
function admin(store: CliStorage) {
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runAdminCommand([...store.args, ...args], { out: (l) => out.push(l), err: (l) => err.push(l) }, { dataDir: store.dataDir, domain: 'parley.test' });
    return { code, out, error: err.join('\n') };
  };
  return {
    run,
    async ok(...args: string[]) {
      const r = await run(...args);
      assert.equal(r.code, 0, `${args.join(' ')} → ${r.code}: ${r.error}`);
      return r.out;
    },
    async fails(exit: number, pattern: RegExp, ...args: string[]) {
      const r = await run(...args);
      assert.equal(r.code, exit, `${args.join(' ')}: ${r.error}`);
      assert.match(r.error, pattern);
    },
  };
}

for (const engine of CLI_ENGINES) describe(`federation cmdlets on ${engine.name}`, () => {
  const fresh = storesOf(engine);
  it('Get-/Set-CsAccessEdgeConfiguration: defaults, routing switches, audited', async () => {
    const a = admin(await fresh());
    assert.deepEqual(await a.ok('Get-CsAccessEdgeConfiguration'), [
      'Identity               : Global',
      'AllowFederatedUsers    : False',
      'EnablePartnerDiscovery : False',
      'UseDnsSrvRouting       : True',
      'UseDefaultRouting      : False',
      'DefaultRouteFqdn       :',
    ]);
    assert.deepEqual(await a.ok('Set-CsAccessEdgeConfiguration', '-AllowFederatedUsers', '$True', '-UseDefaultRouting', '-DefaultRouteFqdn', 'Edge.Example:5061'), []);
    const json = JSON.parse((await a.ok('--json', 'Get-CsAccessEdgeConfiguration', 'global')).join('\n'));
    assert.deepEqual(json, [{ Identity: 'Global', AllowFederatedUsers: true, EnablePartnerDiscovery: false, UseDnsSrvRouting: false, UseDefaultRouting: true, DefaultRouteFqdn: 'edge.example:5061' }]);
    await a.ok('Set-CsAccessEdgeConfiguration', '-UseDnsSrvRouting');
    await a.fails(2, /needs -DefaultRouteFqdn/, 'Set-CsAccessEdgeConfiguration', '-UseDefaultRouting');
    await a.fails(2, /exclude each other/, 'Set-CsAccessEdgeConfiguration', '-UseDefaultRouting', '-UseDnsSrvRouting');
    await a.fails(2, /add -UseDefaultRouting/, 'Set-CsAccessEdgeConfiguration', '-DefaultRouteFqdn', 'edge.example');
    await a.fails(2, /the port 70000 is not between 1 and 65535/, 'Set-CsAccessEdgeConfiguration', '-UseDefaultRouting', '-DefaultRouteFqdn', 'edge.example:70000');
    await a.fails(2, /has only Global/, 'Get-CsAccessEdgeConfiguration', 'Site:Redmond');
    await a.fails(2, /-AllowFederatedUsers needs a value.*quote it/, 'Set-CsAccessEdgeConfiguration', '-AllowFederatedUsers');
    const audit = JSON.parse((await a.ok('--json', 'Get-CsAdminAudit')).join('\n')) as Array<Record<string, unknown>>;
    assert.deepEqual(audit.map((e) => [e.Cmdlet, e.Identity, e.Property, e.OldValue, e.NewValue]), [
      ['Set-CsAccessEdgeConfiguration', 'Global', 'AllowFederatedUsers', 'False', 'True'],
      ['Set-CsAccessEdgeConfiguration', 'Global', 'UseDnsSrvRouting', 'True', 'False'],
      ['Set-CsAccessEdgeConfiguration', 'Global', 'UseDefaultRouting', 'False', 'True'],
      ['Set-CsAccessEdgeConfiguration', 'Global', 'DefaultRouteFqdn', null, 'edge.example:5061'],
      ['Set-CsAccessEdgeConfiguration', 'Global', 'UseDnsSrvRouting', 'False', 'True'],
      ['Set-CsAccessEdgeConfiguration', 'Global', 'UseDefaultRouting', 'True', 'False'],
      ['Set-CsAccessEdgeConfiguration', 'Global', 'DefaultRouteFqdn', 'edge.example:5061', null],
    ]);
  });

  it('New-/Set-/Get-/Remove-CsAllowedDomain and -CsBlockedDomain, one list per domain', async () => {
    const a = admin(await fresh());
    const created = await a.ok('New-CsAllowedDomain', 'Partner.Example', '-ProxyFqdn', 'sip.partner.example:5061', '-Comment', 'Contoso, asked by Bob');
    assert.equal(created.length, 5);
    assert.deepEqual(created.slice(0, 4), [
      'Identity    : partner.example',
      'Domain      : partner.example',
      'ProxyFqdn   : sip.partner.example:5061',
      'Comment     : Contoso, asked by Bob',
    ]);
    assert.match(created[4] ?? '', /^WhenCreated : \d{4}-\d\d-\d\dT/);
    await a.ok('Set-CsAllowedDomain', 'partner.example', '-ProxyFqdn', '$Null');
    const got = JSON.parse((await a.ok('--json', 'Get-CsAllowedDomain', 'partner.example')).join('\n'));
    assert.equal(got[0].ProxyFqdn, null);
    assert.equal(got[0].Comment, 'Contoso, asked by Bob');
    await a.ok('New-CsBlockedDomain', 'spam.example', '-Comment', 'phishing');
    assert.deepEqual((await a.ok('Get-CsBlockedDomain')).slice(0, 3), ['Identity    : spam.example', 'Domain      : spam.example', 'Comment     : phishing']);
    await a.fails(1, /already on the blocked list \(CsBlockedDomain\).*Remove-CsBlockedDomain -Identity spam.example/, 'New-CsAllowedDomain', 'spam.example');
    await a.fails(1, /already on the allowed list/, 'New-CsBlockedDomain', 'PARTNER.example');
    await a.fails(1, /there is no CsBlockedDomain partner.example \(it is on the allowed list/, 'Remove-CsBlockedDomain', 'partner.example');
    await a.fails(1, /there is no CsAllowedDomain nowhere.example/, 'Get-CsAllowedDomain', 'nowhere.example');
    await a.fails(2, /own domain/, 'New-CsAllowedDomain', 'parley.test');
    await a.fails(2, /not a partner domain: the label "bad_name"/, 'New-CsAllowedDomain', 'bad_name.example');
    await a.fails(2, /-ProxyFqdn "sip.x.example:0": the port 0/, 'New-CsAllowedDomain', 'x.example', '-ProxyFqdn', 'sip.x.example:0');
    await a.fails(2, /CsBlockedDomain has no parameter -ProxyFqdn/, 'New-CsBlockedDomain', 'y.example', '-ProxyFqdn', 'h.example');
    await a.fails(2, /New-CsAllowedDomain needs -Identity/, 'New-CsAllowedDomain');
    assert.deepEqual(await a.ok('Get-CsAllowedDomain', '-Filter', '*.invalid'), []);
    await a.ok('Remove-CsAllowedDomain', 'partner.example');
    assert.deepEqual(await a.ok('Get-CsAllowedDomain'), []);
    const audit = JSON.parse((await a.ok('--json', 'Get-CsAdminAudit', '*.example')).join('\n')) as Array<Record<string, unknown>>;
    assert.deepEqual(audit.map((e) => [e.Cmdlet, e.Identity, e.Property, e.NewValue]), [
      ['New-CsAllowedDomain', 'partner.example', null, 'created'],
      ['New-CsAllowedDomain', 'partner.example', 'ProxyFqdn', 'sip.partner.example:5061'],
      ['New-CsAllowedDomain', 'partner.example', 'Comment', 'Contoso, asked by Bob'],
      ['Set-CsAllowedDomain', 'partner.example', 'ProxyFqdn', null],
      ['New-CsBlockedDomain', 'spam.example', null, 'created'],
      ['New-CsBlockedDomain', 'spam.example', 'Comment', 'phishing'],
      ['Remove-CsAllowedDomain', 'partner.example', null, 'removed'],
    ]);
  });

  it('CsExternalAccessPolicy with Grant-, and Test-CsFederationAccess on every refusal', async () => {
    const a = admin(await fresh());
    await a.ok('Enable-CsUser', 'alice', '-Password', 'pw-alice-1');
    assert.deepEqual(await a.ok('Get-CsExternalAccessPolicy'), ['Identity               : Global', 'EnableFederationAccess : False']);
    const test = async () => JSON.parse((await a.ok('--json', 'Test-CsFederationAccess', 'alice', 'partner.example')).join('\n'))[0] as Record<string, unknown>;
    assert.equal((await test()).Code, 'FEDERATION_DISABLED');
    await a.ok('Set-CsAccessEdgeConfiguration', '-AllowFederatedUsers', 'True');
    assert.equal((await test()).Code, 'DOMAIN_NOT_ALLOWED');
    await a.ok('New-CsBlockedDomain', 'partner.example');
    assert.equal((await test()).Code, 'DOMAIN_BLOCKED');
    await a.ok('Remove-CsBlockedDomain', 'partner.example');
    await a.ok('New-CsAllowedDomain', 'partner.example');
    const user = await test();
    assert.equal(user.Code, 'USER_NOT_ENABLED');
    assert.match(String(user.Reason), /\(Global\) has EnableFederationAccess False/);
    await a.ok('New-CsExternalAccessPolicy', 'Tag:Federated', '-EnableFederationAccess', '$True');
    await a.ok('Grant-CsExternalAccessPolicy', 'alice', 'Federated');
    assert.deepEqual((await a.ok('Get-CsUser', 'alice')).filter((l) => /Policy/.test(l)), ['ClientPolicy         :', 'ExternalAccessPolicy : Tag:Federated']);
    assert.deepEqual(await test(), { Identity: 'alice@parley.test', Domain: 'partner.example', Allowed: true, Code: null, Reason: null, Route: 'DNS SRV _sipfederationtls._tcp.partner.example' });
    const text = await a.ok('Test-CsFederationAccess', 'alice', 'partner.example');
    assert.deepEqual(text, ['Identity : alice@parley.test', 'Domain   : partner.example', 'Allowed  : True', 'Code     :', 'Reason   :', 'Route    : DNS SRV _sipfederationtls._tcp.partner.example']);
    await a.fails(1, /granted to 1 user; grant them another with Grant-CsExternalAccessPolicy/, 'Remove-CsExternalAccessPolicy', 'Tag:Federated');
    await a.fails(1, /there is no CsExternalAccessPolicy Tag:Nope/, 'Grant-CsExternalAccessPolicy', 'alice', 'Nope');
    await a.fails(1, /user nobody@parley.test does not exist/, 'Test-CsFederationAccess', 'nobody', 'partner.example');
    await a.ok('Grant-CsExternalAccessPolicy', 'alice', '$Null');
    const audit = JSON.parse((await a.ok('--json', 'Get-CsAdminAudit', 'alice@parley.test')).join('\n')) as Array<Record<string, unknown>>;
    assert.deepEqual(audit.filter((e) => e.Cmdlet !== 'Enable-CsUser').map((e) => [e.Cmdlet, e.Property, e.OldValue, e.NewValue]), [
      ['Grant-CsExternalAccessPolicy', 'ExternalAccessPolicy', null, 'Tag:Federated'],
      ['Grant-CsExternalAccessPolicy', 'ExternalAccessPolicy', 'Tag:Federated', null],
    ]);
  });
});
