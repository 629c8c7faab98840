import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { DIRECTORY_MIGRATIONS, DirectoryError, addUser, createSite, setUserSite } from '../../src/directory/index.ts';
import {
  CLIENT_POLICY, EXTERNAL_ACCESS_POLICY, GLOBAL, IM_CONFIGURATION, SETTINGS_MIGRATIONS, SettingsError, createInstance, effectiveSettings, grantClientPolicy, grantPolicy, grantedPolicy,
  removeInstance, updateInstance,
} from '../../src/settings/index.ts';
import type { Database } from '../../src/storage/index.ts';
import { openDatabase, openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';

const change = { actor: 'test', cmdlet: 'test', now: () => 1 };

// Sites: `Configured` has an ImConfiguration and a ClientPolicy; `Bare` has neither.
// Tag policy `Sales` exists. Users cover: no site, site with / without instances, tag / no tag.
let db: Database;
before(async () => {
  db = openMemoryDatabase();
  runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
  await createSite(sqliteSql(db), 'Configured');
  await createSite(sqliteSql(db), 'Bare');
  updateInstance(db, IM_CONFIGURATION, GLOBAL, { OfflineImPickupDelay: 300 }, change);
  createInstance(db, IM_CONFIGURATION, { scope: 'site', name: 'configured' }, { EnableOfflineIm: false, OfflineImMaxAge: 3600 }, change);
  createInstance(db, CLIENT_POLICY, { scope: 'site', name: 'Configured' }, { DisableSavingIM: true }, change);
  createInstance(db, CLIENT_POLICY, { scope: 'tag', name: 'Sales' }, { EnableIMAutoArchiving: false }, change);
  for (const [user, site, tag] of [
    ['nosite', null, null], ['nosite-tag', null, 'Sales'],
    ['configured', 'Configured', null], ['configured-tag', 'Configured', 'sales'],
    ['bare', 'Bare', null], ['bare-tag', 'Bare', 'Sales'],
  ] as const) {
    await addUser(sqliteSql(db), { address: `${user}@parley.test`, password: 'pw' });
    if (site !== null) await setUserSite(sqliteSql(db), `${user}@parley.test`, site);
    if (tag !== null) grantClientPolicy(db, `${user}@parley.test`, tag, change);
  }
});

describe('effectiveSettings', () => {
  it('a user with no site gets Global (or their tag policy)', () => {
    assert.deepEqual(effectiveSettings(db, 'nosite@parley.test'), {
      EnableOfflineIm: true, OfflineImPickupDelaySeconds: 300, OfflineImMaxAgeSeconds: 86400,
      ConversationIdleTimeoutSeconds: 600, UnreadMissedTimeoutSeconds: 300,
      EnableIMAutoArchiving: true, DisableSavingIM: false, EnableFederationAccess: false,
      sources: { ImConfiguration: 'Global', ClientPolicy: 'Global', ExternalAccessPolicy: 'Global' },
    });
    const tagged = effectiveSettings(db, 'sip:NoSite-Tag@parley.test');
    assert.deepEqual(tagged.sources, { ImConfiguration: 'Global', ClientPolicy: 'Tag:Sales', ExternalAccessPolicy: 'Global' });
    assert.equal(tagged.EnableIMAutoArchiving, false);
    assert.equal(tagged.DisableSavingIM, false, 'a tag instance holds all values: DisableSavingIM is its own default, not inherited');
  });

  it('a site with instances applies them whole; a tag still wins for the client policy', () => {
    const site = effectiveSettings(db, 'configured@parley.test');
    assert.deepEqual(site, {
      EnableOfflineIm: false, OfflineImPickupDelaySeconds: 120, OfflineImMaxAgeSeconds: 3600,
      ConversationIdleTimeoutSeconds: 600, UnreadMissedTimeoutSeconds: 300,
      EnableIMAutoArchiving: true, DisableSavingIM: true, EnableFederationAccess: false,
      sources: { ImConfiguration: 'Site:Configured', ClientPolicy: 'Site:Configured', ExternalAccessPolicy: 'Global' },
    });
    const tagged = effectiveSettings(db, 'configured-tag@parley.test');
    assert.deepEqual(tagged.sources, { ImConfiguration: 'Site:Configured', ClientPolicy: 'Tag:Sales', ExternalAccessPolicy: 'Global' });
    assert.equal(tagged.EnableIMAutoArchiving, false);
    assert.equal(tagged.DisableSavingIM, false);
    assert.equal(tagged.EnableOfflineIm, false);
  });

  it('a site without instances falls back to Global', () => {
    assert.deepEqual(effectiveSettings(db, 'bare@parley.test').sources, { ImConfiguration: 'Global', ClientPolicy: 'Global', ExternalAccessPolicy: 'Global' });
    assert.deepEqual(effectiveSettings(db, 'bare-tag@parley.test').sources, { ImConfiguration: 'Global', ClientPolicy: 'Tag:Sales', ExternalAccessPolicy: 'Global' });
  });

  it('sees a change at once, and a removed grant', () => {
    updateInstance(db, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change);
    assert.equal(effectiveSettings(db, 'bare@parley.test').EnableOfflineIm, false);
    updateInstance(db, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: true }, change);
    grantClientPolicy(db, 'bare-tag@parley.test', null, change);
    assert.equal(effectiveSettings(db, 'bare-tag@parley.test').sources.ClientPolicy, 'Global');
    grantClientPolicy(db, 'bare-tag@parley.test', 'Sales', change);
  });

  it('sees a change made through another connection on the next call (statements reused, rows not)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-settings-'));
    const server = openDatabase(dir);
    runMigrations(server, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
    const cli = openDatabase(dir);
    await addUser(sqliteSql(cli), { address: 'carol@parley.test', password: 'pw' });
    try {
      assert.deepEqual(effectiveSettings(server, 'carol@parley.test').sources, { ImConfiguration: 'Global', ClientPolicy: 'Global', ExternalAccessPolicy: 'Global' });
      assert.equal(server.isTransaction, false, 'a read leaves no transaction (snapshot) open');
      await createSite(sqliteSql(cli), 'Remote');
      createInstance(cli, IM_CONFIGURATION, { scope: 'site', name: 'Remote' }, { EnableOfflineIm: false }, change);
      createInstance(cli, CLIENT_POLICY, { scope: 'tag', name: 'Remote' }, { DisableSavingIM: true }, change);
      await setUserSite(sqliteSql(cli), 'carol@parley.test', 'Remote');
      grantClientPolicy(cli, 'carol@parley.test', 'Remote', change);
      const moved = effectiveSettings(server, 'carol@parley.test');
      assert.deepEqual(moved.sources, { ImConfiguration: 'Site:Remote', ClientPolicy: 'Tag:Remote', ExternalAccessPolicy: 'Global' });
      assert.equal(moved.EnableOfflineIm, false);
      assert.equal(moved.DisableSavingIM, true);
      updateInstance(cli, IM_CONFIGURATION, { scope: 'site', name: 'Remote' }, { EnableOfflineIm: true }, change);
      assert.equal(effectiveSettings(server, 'carol@parley.test').EnableOfflineIm, true);
    } finally {
      cli.close();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an address with no user', () => {
    assert.throws(() => effectiveSettings(db, 'nobody@parley.test'), (e: unknown) => e instanceof DirectoryError && e.code === 'USER_NOT_FOUND');
  });
});

describe('effectiveSettings: CsExternalAccessPolicy (issue 15)', () => {
  it('resolves like CsClientPolicy (Tag granted, else site, else Global), with its own grants', async () => {
    const d = openMemoryDatabase();
    runMigrations(d, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
    await createSite(sqliteSql(d), 'Partners');
    await addUser(sqliteSql(d), { address: 'erin@parley.test', password: 'pw' });
    assert.equal(effectiveSettings(d, 'erin@parley.test').EnableFederationAccess, false, 'off by default');
    assert.equal(effectiveSettings(d, 'erin@parley.test').sources.ExternalAccessPolicy, 'Global');
    createInstance(d, EXTERNAL_ACCESS_POLICY, { scope: 'site', name: 'Partners' }, { EnableFederationAccess: true }, change);
    await setUserSite(sqliteSql(d), 'erin@parley.test', 'Partners');
    assert.equal(effectiveSettings(d, 'erin@parley.test').EnableFederationAccess, true);
    assert.equal(effectiveSettings(d, 'erin@parley.test').sources.ExternalAccessPolicy, 'Site:Partners');
    createInstance(d, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'NoFederation' }, {}, change);
    // a client policy grant of the same name is another grant: it changes nothing here
    createInstance(d, CLIENT_POLICY, { scope: 'tag', name: 'NoFederation' }, {}, change);
    grantClientPolicy(d, 'erin@parley.test', 'NoFederation', change);
    assert.equal(effectiveSettings(d, 'erin@parley.test').sources.ExternalAccessPolicy, 'Site:Partners');
    grantPolicy(d, EXTERNAL_ACCESS_POLICY, 'erin@parley.test', 'nofederation', change);
    const tagged = effectiveSettings(d, 'erin@parley.test');
    assert.equal(tagged.EnableFederationAccess, false);
    assert.deepEqual(tagged.sources, { ImConfiguration: 'Global', ClientPolicy: 'Tag:NoFederation', ExternalAccessPolicy: 'Tag:NoFederation' });
    assert.throws(() => removeInstance(d, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'NoFederation' }, change),
      (e: SettingsError) => e.code === 'POLICY_IN_USE' && /Grant-CsExternalAccessPolicy -Identity <user> -PolicyName \$Null/.test(e.message));
    grantPolicy(d, EXTERNAL_ACCESS_POLICY, 'erin@parley.test', null, change);
    assert.equal(effectiveSettings(d, 'erin@parley.test').sources.ExternalAccessPolicy, 'Site:Partners');
    assert.equal(grantedPolicy(d, 'erin@parley.test'), 'NoFederation', 'the client policy grant is untouched');
    assert.throws(() => grantPolicy(d, IM_CONFIGURATION, 'erin@parley.test', 'x', change), /not granted to users/);
    d.close();
  });
});
