import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIRECTORY_MIGRATIONS, addUser, listUsers, removeUser, userSite } from '../../src/directory/index.ts';
import { CLIENT_POLICY, GLOBAL, SETTINGS_MIGRATIONS, createInstance, getInstance, grantedPolicy, grantClientPolicy } from '../../src/settings/index.ts';
import { openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';

const change = { actor: 'test', cmdlet: 'test', now: () => 1 };

describe('settings and sites migrations', () => {
  it('upgrade a database made by the foundation (001-users only), keeping its users without a site', async () => {
    const db = openMemoryDatabase();
    const [first] = DIRECTORY_MIGRATIONS.migrations;
    assert.equal(first?.id, '001-users');
    runMigrations(db, [{ capability: 'directory', migrations: [first] }]);
    // a row as the foundation's code wrote it (today's addUser also writes the later columns)
    db.prepare("INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at) VALUES ('old@parley.test', NULL, 'h', 'parley.test', 'm', 's', 1, 1)").run();
    const applied = runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
    assert.deepEqual(applied.map((m) => `${m.capability}/${m.id}`), ['directory/002-sites', 'directory/003-user-demo', 'directory/004-users-version', 'settings/001-settings', 'settings/002-conversation-timeouts', 'settings/003-external-access-policy']);
    assert.equal(await userSite(sqliteSql(db), 'old@parley.test'), null);
    assert.deepEqual((await listUsers(sqliteSql(db))).map((u) => [u.address, u.demo]), [['old@parley.test', false]], 'an existing user is not a demo user');
    assert.equal(getInstance(db, CLIENT_POLICY, GLOBAL)?.values.EnableIMAutoArchiving, true);
    assert.deepEqual(runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]), []);
    db.close();
  });

  it('drops a user’s policy grant with the user', async () => {
    const db = openMemoryDatabase();
    runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
    await addUser(sqliteSql(db), { address: 'gone@parley.test', password: 'pw' });
    createInstance(db, CLIENT_POLICY, { scope: 'tag', name: 'Sales' }, {}, change);
    grantClientPolicy(db, 'gone@parley.test', 'SALES', change);
    assert.equal(grantedPolicy(db, 'gone@parley.test'), 'Sales');
    await removeUser(sqliteSql(db), 'gone@parley.test');
    assert.equal(grantedPolicy(db, 'gone@parley.test'), null);
    db.close();
  });
});
