import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { after, describe, it } from 'node:test';
import { runAdminCommand } from '../../src/admin/index.ts';
import { verifyPassword } from '../../src/directory/index.ts';
import { effectiveSettings } from '../../src/settings/index.ts';
import type { Sql } from '../../src/storage/index.ts';
import type { CliEngine, CliStorage } from '../harness/cli-storage.ts';
import { CLI_ENGINES, storesOf, UNREACHABLE_POSTGRES, withStore } from '../harness/cli-storage.ts';
import { closeTestPostgres } from '../harness/engines.ts';

after(closeTestPostgres);

/** `parley admin` runners on storage of their own: `--data-dir DIR` on SQLite, `--database URL` on PostgreSQL. */
function adminOn(engine: CliEngine) {
  const fresh = storesOf(engine);
  return async () => admin(await fresh());
}

/** A `parley admin …` runner capturing its output, on `store` (also where none is named: `runNamed`). */
function admin(store: CliStorage) {
  return {
    store,
    async run(...args: string[]) {
      return runAdmin([...store.args, ...args], store.dataDir);
    },
    async ok(...args: string[]) {
      const r = await this.run(...args);
      assert.equal(r.code, 0, `${args.join(' ')} → ${r.code}: ${r.error}`);
      return r;
    },
    /** What the server would read, on its own connection to the same storage. */
    sql<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
      return withStore(store, fn);
    },
  };
}

async function runAdmin(args: string[], dataDir: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runAdminCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, { dataDir, domain: 'parley.test' });
  return { code, out, err, text: out.join('\n'), error: err.join('\n') };
}

for (const engine of CLI_ENGINES) describe(`parley admin cmdlets on ${engine.name}`, () => {
  const fresh = adminOn(engine);

  it("runs the seed's two commands and audits the change with old and new values", async () => {
    const a = await fresh();
    const set = await a.ok('Set-CsImConfiguration', '-EnableOfflineIM', '$False');
    assert.deepEqual(set.out, []);
    const get = await a.ok('Get-CsImConfiguration');
    assert.deepEqual(get.out, [
      'Identity                : Global',
      'EnableOfflineIm         : False',
      'OfflineImPickupDelay    : 00:02:00',
      'OfflineImMaxAge         : 1.00:00:00',
      'ConversationIdleTimeout : 00:10:00',
      'UnreadMissedTimeout     : 00:05:00',
    ]);
    const audit = await a.ok('--json', 'Get-CsAdminAudit');
    const entries = JSON.parse(audit.text) as Array<Record<string, unknown>>;
    assert.equal(entries.length, 1);
    assert.deepEqual({ ...entries[0], When: undefined }, {
      Identity: 'Global', When: undefined, Who: userInfo().username, Cmdlet: 'Set-CsImConfiguration', Property: 'EnableOfflineIm', OldValue: 'True', NewValue: 'False',
    });
    // setting the same value again changes nothing and audits nothing
    await a.ok('set-csimconfiguration', '-enableofflineim', 'false');
    assert.equal(JSON.parse((await a.ok('--json', 'Get-CsAdminAudit')).text).length, 1);
  });

  it('resets Global to the defaults on Remove, and refuses to remove an unknown identity', async () => {
    const a = await fresh();
    await a.ok('Set-CsImConfiguration', '-OfflineImPickupDelay', '00:10:00', '-EnableOfflineIm', '$false');
    await a.ok('Remove-CsImConfiguration', '-Identity', 'global');
    assert.match((await a.ok('Get-CsImConfiguration', 'Global')).text, /EnableOfflineIm +: True\nOfflineImPickupDelay +: 00:02:00/);
    const missing = await a.run('Remove-CsClientPolicy', 'Tag:Nobody');
    assert.equal(missing.code, 1);
    assert.match(missing.error, /there is no CsClientPolicy Tag:Nobody/);
    const unknownSite = await a.run('New-CsImConfiguration', '-Identity', 'Site:Atlantis');
    assert.equal(unknownSite.code, 1);
    assert.match(unknownSite.error, /there is no site Atlantis/);
    const badIdentity = await a.run('Get-CsImConfiguration', 'Tag:Sales');
    assert.equal(badIdentity.code, 2);
    assert.match(badIdentity.error, /use Global, Site:<name>/);
  });

  it('creates site and tag instances with every value, filters them, and grants policies', async () => {
    const a = await fresh();
    await a.ok('New-CsSite', 'Redmond');
    const created = await a.ok('New-CsImConfiguration', '-Identity', 'site:redmond', '-OfflineImMaxAge', '02:00:00');
    assert.deepEqual(created.out, [
      'Identity                : Site:Redmond',
      'EnableOfflineIm         : True',
      'OfflineImPickupDelay    : 00:02:00',
      'OfflineImMaxAge         : 02:00:00',
      'ConversationIdleTimeout : 00:10:00',
      'UnreadMissedTimeout     : 00:05:00',
    ]);
    assert.equal((await a.run('New-CsImConfiguration', 'Site:Redmond')).code, 1, 'exists already');
    await a.ok('New-CsClientPolicy', 'Sales', '-DisableSavingIM', '$True');
    const sites = await a.ok('--json', 'Get-CsImConfiguration', '-Filter', 'site:*');
    assert.deepEqual(JSON.parse(sites.text).map((o: { Identity: string }) => o.Identity), ['Site:Redmond']);
    const policies = await a.ok('Get-CsClientPolicy');
    assert.match(policies.text, /^Identity +: Global\n[^]*\n\nIdentity +: Tag:Sales\nEnableIMAutoArchiving : True\nDisableSavingIM +: True$/);

    await a.ok('Enable-CsUser', '-Identity', 'alice', '-Password', 'secret', '-DisplayName', 'Alice', '-Site', 'Site:Redmond');
    await a.ok('Grant-CsClientPolicy', '-Identity', 'alice@parley.test', '-PolicyName', 'Sales');
    const user = await a.ok('Get-CsUser', 'sip:alice@parley.test');
    assert.match(user.text, /^Identity +: alice@parley\.test\nSipAddress +: sip:alice@parley\.test\nDisplayName +: Alice\nSite +: Site:Redmond\nClientPolicy +: Tag:Sales\nExternalAccessPolicy :\nWhenCreated +: \S+\nDemo +: False$/);
    const settings = await a.sql((sql) => effectiveSettings(sql, 'alice@parley.test'));
    assert.deepEqual(settings.sources, { ImConfiguration: 'Site:Redmond', ClientPolicy: 'Tag:Sales', ExternalAccessPolicy: 'Global' });
    assert.equal(settings.OfflineImMaxAgeSeconds, 7200);

    const inUse = await a.run('Remove-CsClientPolicy', 'Tag:Sales');
    assert.equal(inUse.code, 1);
    assert.match(inUse.error, /granted to 1 user/);
    await a.ok('Grant-CsClientPolicy', 'alice', '-PolicyName', '$Null');
    await a.ok('Remove-CsClientPolicy', 'Tag:Sales');
    assert.equal((await a.sql((sql) => effectiveSettings(sql, 'alice@parley.test'))).sources.ClientPolicy, 'Global');
  });

  it('refuses to remove a site still in use, naming how many users and instances use it', async () => {
    const a = await fresh();
    await a.ok('New-CsSite', '-Identity', 'Site:Paris');
    await a.ok('Enable-CsUser', 'bob', '-Password', 'pw', '-Site', 'Paris');
    await a.ok('Enable-CsUser', 'carol', '-Password', 'pw', '-Site', 'paris');
    await a.ok('New-CsClientPolicy', 'Site:Paris');
    const refused = await a.run('Remove-CsSite', 'Paris');
    assert.equal(refused.code, 1);
    assert.match(refused.error, /the site Paris is still used by 2 users .* and 1 settings instance/);
    await a.ok('Set-CsUser', 'bob', '-Site', '$Null');
    await a.ok('Disable-CsUser', 'carol');
    assert.match((await a.run('Remove-CsSite', 'Paris')).error, /still used by 1 settings instance \(/);
    await a.ok('Remove-CsClientPolicy', 'Site:Paris');
    await a.ok('Remove-CsSite', 'Site:Paris');
    assert.deepEqual((await a.ok('Get-CsSite')).out, []);
    assert.equal((await a.run('Remove-CsSite', 'Paris')).code, 1);
  });

  it('changes users and audits each change, never the password', async () => {
    const a = await fresh();
    await a.ok('New-CsSite', 'Oslo');
    await a.ok('Enable-CsUser', 'dave@parley.test', '-Password', 'old-pw');
    await a.ok('Set-CsUser', 'dave', '-DisplayName', 'Dave', '-Site', 'Oslo', '-Password', 'new-pw');
    assert.equal(await a.sql((sql) => verifyPassword(sql, 'dave@parley.test', 'new-pw')), true);
    const audit = await a.ok('Get-CsAdminAudit', '-Identity', 'dave@*', '-Last', '3');
    assert.match(audit.text, /Property : Password\nOldValue : \*\*\*\nNewValue : \*\*\*/);
    assert.match(audit.text, /Property : DisplayName\nOldValue :\nNewValue : Dave/);
    assert.match(audit.text, /Property : Site\nOldValue :\nNewValue : Oslo/);
    assert.doesNotMatch(audit.text, /new-pw|old-pw/);
    assert.equal((await a.run('Set-CsUser', 'nobody', '-DisplayName', 'x')).code, 1);
    assert.equal((await a.run('Enable-CsUser', 'erin', '-Password', 'pw', '-Site', 'Nowhere')).code, 1);
    assert.equal((await a.run('Get-CsUser', 'not an address')).code, 2);
    assert.deepEqual(JSON.parse((await a.ok('--json', 'Get-CsUser', '-Filter', 'd*')).text).map((u: { Identity: string }) => u.Identity), ['dave@parley.test']);
  });

  it('shows and sets ConversationIdleTimeout and UnreadMissedTimeout, refusing values out of range', async () => {
    const a = await fresh();
    const tooShort = await a.run('Set-CsImConfiguration', '-ConversationIdleTimeout', '00:00:00');
    assert.equal(tooShort.code, 2);
    assert.equal(tooShort.error, 'parley admin: ConversationIdleTimeout must be between 00:00:01 and 1.00:00:00');
    const tooLong = await a.run('Set-CsImConfiguration', '-ConversationIdleTimeout', '1.00:00:01');
    assert.equal(tooLong.error, 'parley admin: ConversationIdleTimeout must be between 00:00:01 and 1.00:00:00');
    const unreadTooLong = await a.run('Set-CsImConfiguration', '-UnreadMissedTimeout', '1.00:00:01');
    assert.equal(unreadTooLong.code, 2);
    assert.equal(unreadTooLong.error, 'parley admin: UnreadMissedTimeout must be between 00:00:00 and 1.00:00:00');
    const help = await a.ok('--help');
    assert.match(help.text, /Set-CsImConfiguration .*\[-ConversationIdleTimeout <TimeSpan>\] \[-UnreadMissedTimeout <TimeSpan>\]/);
    const described = await a.ok('Set-CsImConfiguration', '--help');
    assert.match(described.text, /\n {2}-ConversationIdleTimeout: a conversation ends after this long without a message; then it is written to Conversation History\n/);
    assert.match(described.text, /\n {2}-UnreadMissedTimeout: .*Missed Conversation; 00:00:00 turns it off/);
    const unknown = await a.run('Set-CsImConfiguration', '-IdleTimeout', '00:01:00');
    assert.match(unknown.error, /-ConversationIdleTimeout, -UnreadMissedTimeout$/);

    // 00:00:00 turns missed-while-signed-in off; the idle timeout's minimum is one second
    await a.ok('Set-CsImConfiguration', '-ConversationIdleTimeout', '00:00:01', '-UnreadMissedTimeout', '00:00:00');
    const get = await a.ok('Get-CsImConfiguration');
    assert.match(get.text, /\nConversationIdleTimeout : 00:00:01\nUnreadMissedTimeout +: 00:00:00$/);
    await a.ok('Set-CsImConfiguration', '-ConversationIdleTimeout', '00:30:00', '-UnreadMissedTimeout', '00:01:30');
    const json = JSON.parse((await a.ok('--json', 'Get-CsImConfiguration')).text) as Array<Record<string, unknown>>;
    assert.equal(json[0]?.ConversationIdleTimeout, '00:30:00');
    assert.equal(json[0]?.UnreadMissedTimeout, '00:01:30');
    await a.ok('Enable-CsUser', 'frank', '-Password', 'pw');
    const settings = await a.sql((sql) => effectiveSettings(sql, 'frank@parley.test'));
    assert.equal(settings.ConversationIdleTimeoutSeconds, 1800);
    assert.equal(settings.UnreadMissedTimeoutSeconds, 90);
    const audit = JSON.parse((await a.ok('--json', 'Get-CsAdminAudit', '-Identity', 'Global')).text) as Array<Record<string, unknown>>;
    assert.deepEqual(audit.map((e) => `${e.Property} ${e.OldValue} → ${e.NewValue}`).sort(), [
      'ConversationIdleTimeout 00:00:01 → 00:30:00',
      'ConversationIdleTimeout 00:10:00 → 00:00:01',
      'UnreadMissedTimeout 00:00:00 → 00:01:30',
      'UnreadMissedTimeout 00:05:00 → 00:00:00',
    ]);
  });

  it('answers usage errors (unknown cmdlet or parameter, bad value) with exit code 2', async () => {
    const a = await fresh();
    const unknown = await a.run('Get-CsImConfig');
    assert.equal(unknown.code, 2);
    assert.match(unknown.error, /did you mean Get-CsImConfiguration\?/);
    const param = await a.run('Set-CsImConfiguration', '-EnableOfflineMessages', '$False');
    assert.equal(param.code, 2);
    assert.match(param.error, /its parameters are -Identity, -EnableOfflineIm/);
    assert.equal((await a.run('Set-CsImConfiguration', '-OfflineImMaxAge', '1 day')).code, 2);
    assert.equal((await a.run('Set-CsImConfiguration', '-OfflineImMaxAge', '00:00:10')).code, 2, 'below the minimum');
    assert.equal((await a.run()).code, 2);
    assert.equal((await a.run('--url', 'https://x', 'Get-CsSite')).code, 2);
    const help = await a.run('--help');
    assert.equal(help.code, 0);
    assert.match(help.text, /Grant-CsClientPolicy \[-Identity\] <String> \[-PolicyName\] <String>/);
  });

  it('acts on the storage it is given, and makes nothing in the data directory on PostgreSQL', async () => {
    const a = await fresh();
    await a.ok('New-CsSite', 'Lima');
    assert.match((await a.ok('Get-CsSite')).text, /Identity +: Site:Lima/);
    if (a.store.database === null) {
      // without --data-dir: the default data directory (the same one here)
      assert.deepEqual((await runAdmin(['Get-CsSite'], a.store.dataDir)).out, (await a.ok('Get-CsSite')).out);
    } else assert.equal(existsSync(a.store.dataDir), false);
  });
});

describe('parley admin: --data-dir or --database', () => {
  const dataDir = '/nonexistent/parley-admin-default';

  it('refuses both at once, a --database that is not PostgreSQL, and either with --url (exit 2)', async () => {
    const both = await runAdmin(['--data-dir', '/tmp/x', '--database', 'postgres://localhost/parley', 'Get-CsSite'], dataDir);
    assert.equal(both.code, 2);
    assert.equal(both.error, 'parley admin: give --data-dir DIR (SQLite in that directory) or --database postgres://… (PostgreSQL), not both');
    const notPostgres = await runAdmin(['--database', 'mysql://root:pw@localhost/parley', 'Get-CsSite'], dataDir);
    assert.equal(notPostgres.code, 2);
    assert.match(notPostgres.error, /--database must be a PostgreSQL address such as postgres:\/\//);
    assert.doesNotMatch(notPostgres.error, /pw/);
    const remote = await runAdmin(['--database', 'postgres://localhost/parley', '--url', 'http://127.0.0.1:1', 'Get-CsSite'], dataDir);
    assert.equal(remote.code, 2);
    assert.equal(remote.error, 'parley admin: give --database (act on the database) or --url (through the server), not both');
    assert.equal((await runAdmin(['--database'], dataDir)).code, 2, 'a value is needed');
    assert.match((await runAdmin(['--help'], dataDir)).text, /usage: parley admin \[--data-dir DIR \| --database postgres:\/\/…\]/);
  });

  it('answers a PostgreSQL it cannot reach with exit 1 and the reason, never the password', async () => {
    const r = await runAdmin(['--database', UNREACHABLE_POSTGRES, 'Get-CsSite'], dataDir);
    assert.equal(r.code, 1);
    assert.match(r.error, /^parley admin: cannot connect to PostgreSQL at postgres:\/\/parley:\*\*\*@127\.0\.0\.1:1\/parley: /);
    assert.doesNotMatch(r.error, /s3cret-pw/);
    assert.deepEqual(r.out, []);
  });
});
