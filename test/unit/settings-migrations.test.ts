import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DIRECTORY_MIGRATIONS, listUsers, userSite } from '../../src/directory/index.ts';
import { CLIENT_POLICY, GLOBAL, IM_CONFIGURATION, SETTINGS_MIGRATIONS, createInstance, getInstance, grantedPolicy, grantClientPolicy, updateInstance } from '../../src/settings/index.ts';
import { migrate, openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import { addTestSite, addTestUser, change, openSettingsDatabase, setTestUserSite } from './settings-fixture.ts';

after(closeTestPostgres);

describe('settings and sites migrations on sqlite: an existing data directory', () => {
  it('upgrade a database made by the foundation (001-users only), keeping its users without a site', async () => {
    const db = openMemoryDatabase();
    const [first] = DIRECTORY_MIGRATIONS.migrations;
    assert.equal(first?.id, '001-users');
    runMigrations(db, [{ capability: 'directory', migrations: [first] }]);
    // a row as the foundation's code wrote it (today's addUser also writes the later columns)
    db.prepare("INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at) VALUES ('old@parley.test', NULL, 'h', 'parley.test', 'm', 's', 1, 1)").run();
    const applied = await migrate(sqliteSql(db), [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
    assert.deepEqual(applied.map((m) => `${m.capability}/${m.id}`), [
      'directory/002-sites', 'directory/003-user-demo', 'directory/004-users-version',
      'settings/001-settings', 'settings/002-conversation-timeouts', 'settings/003-external-access-policy', 'settings/004-settings-version',
    ]);
    assert.equal(await userSite(sqliteSql(db), 'old@parley.test'), null);
    assert.deepEqual((await listUsers(sqliteSql(db))).map((u) => [u.address, u.demo]), [['old@parley.test', false]], 'an existing user is not a demo user');
    assert.equal((await getInstance(sqliteSql(db), CLIENT_POLICY, GLOBAL))?.values.EnableIMAutoArchiving, true);
    assert.deepEqual(await migrate(sqliteSql(db), [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]), []);
    db.close();
  });

  it('a database migrated by the synchronous runner (a server of the previous version) takes the new migration alone', async () => {
    const db = openMemoryDatabase();
    runMigrations(db, [DIRECTORY_MIGRATIONS, { capability: 'settings', migrations: SETTINGS_MIGRATIONS.migrations.slice(0, 3) }]);
    const applied = await migrate(sqliteSql(db), [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
    assert.deepEqual(applied.map((m) => m.id), ['004-settings-version'], 'the shipped SQLite texts are unchanged (checksums match)');
    db.close();
  });
});

for (const engine of ENGINES) {
  describe(`settings migrations on ${engine.name}`, () => {
    it('apply once; a second run finds nothing to do', async () => {
      const sql = await engine.open();
      try {
        const applied = await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
        assert.deepEqual(applied.filter((m) => m.capability === 'settings').map((m) => m.id), ['001-settings', '002-conversation-timeouts', '003-external-access-policy', '004-settings-version']);
        assert.deepEqual(await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]), []);
        assert.deepEqual((await getInstance(sql, IM_CONFIGURATION, GLOBAL))?.values, {
          EnableOfflineIm: true, OfflineImPickupDelay: 120, OfflineImMaxAge: 86400, ConversationIdleTimeout: 600, UnreadMissedTimeout: 300,
        });
      } finally {
        await sql.close();
      }
    });

    it('drops a user’s policy grant with the user', async () => {
      const sql = await openSettingsDatabase(engine);
      try {
        await addTestUser(sql, 'gone@parley.test');
        await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'Sales' }, {}, change);
        await grantClientPolicy(sql, 'gone@parley.test', 'SALES', change);
        assert.equal(await grantedPolicy(sql, 'gone@parley.test'), 'Sales');
        await sql.run('DELETE FROM users WHERE address = ?', ['gone@parley.test']);
        assert.equal(await grantedPolicy(sql, 'gone@parley.test'), null);
      } finally {
        await sql.close();
      }
    });

    it('settings_version moves with every write of what effective settings are made of, and with nothing else', async () => {
      const sql = await openSettingsDatabase(engine);
      const version = async () => Number((await sql.get<{ v: number }>('SELECT v FROM settings_version'))?.v);
      const moves = async (what: string, write: () => Promise<unknown>) => {
        const before = await version();
        await write();
        assert.ok((await version()) > before, `${what} moves the version`);
      };
      try {
        await moves('a new user', () => addTestUser(sql, 'v@parley.test'));
        await moves('an instance', () => createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'T' }, {}, change));
        await moves('a changed instance', () => updateInstance(sql, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change));
        await moves('a grant', () => grantClientPolicy(sql, 'v@parley.test', 'T', change));
        await addTestSite(sql, 'S');
        await moves('a user moved to a site', () => setTestUserSite(sql, 'v@parley.test', 'S'));
        const before = await version();
        await sql.run("UPDATE users SET display_name = 'V' WHERE address = ?", ['v@parley.test']);
        await sql.run('INSERT INTO admin_audit (at, actor, cmdlet, identity) VALUES (1, ?, ?, ?)', ['a', 'b', 'c']);
        assert.equal(await version(), before, 'a display name or an audit row changes no settings');
        await moves('a removed user', () => sql.run('DELETE FROM users WHERE address = ?', ['v@parley.test']));
      } finally {
        await sql.close();
      }
    });
  });
}
