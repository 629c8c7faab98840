import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirectoryError } from '../../src/directory/index.ts';
import type { EffectiveSettings, SettingsError } from '../../src/settings/index.ts';
import {
  CLIENT_POLICY, EXTERNAL_ACCESS_POLICY, GLOBAL, IM_CONFIGURATION, createInstance, effectiveSettings, grantClientPolicy, grantPolicy, grantedPolicy, removeInstance, updateInstance,
} from '../../src/settings/index.ts';
import type { Sql, SqlDatabase } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import { addTestSite, addTestUser, change, migrateSettings, openSettingsDatabase, setTestUserSite, twoConnections } from './settings-fixture.ts';

after(closeTestPostgres);

/** What `read` gives once it satisfies `ok` (another connection's change counts after the cache's next check). */
async function eventually(read: () => Promise<EffectiveSettings>, ok: (s: EffectiveSettings) => boolean): Promise<EffectiveSettings> {
  for (let i = 0; ; i++) {
    const s = await read();
    if (ok(s) || i >= 200) return s;
    await sleep(25);
  }
}

for (const engine of ENGINES) {
  // Sites: `Configured` has an ImConfiguration and a ClientPolicy; `Bare` has neither.
  // Tag policy `Sales` exists. Users cover: no site, site with / without instances, tag / no tag.
  describe(`effectiveSettings on ${engine.name}`, () => {
    let sql: SqlDatabase;
    before(async () => {
      sql = await openSettingsDatabase(engine);
      await addTestSite(sql, 'Configured');
      await addTestSite(sql, 'Bare');
      await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { OfflineImPickupDelay: 300 }, change);
      await createInstance(sql, IM_CONFIGURATION, { scope: 'site', name: 'configured' }, { EnableOfflineIm: false, OfflineImMaxAge: 3600 }, change);
      await createInstance(sql, CLIENT_POLICY, { scope: 'site', name: 'Configured' }, { DisableSavingIM: true }, change);
      await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'Sales' }, { EnableIMAutoArchiving: false }, change);
      for (const [user, site, tag] of [
        ['nosite', null, null], ['nosite-tag', null, 'Sales'],
        ['configured', 'Configured', null], ['configured-tag', 'Configured', 'sales'],
        ['bare', 'Bare', null], ['bare-tag', 'Bare', 'Sales'],
      ] as const) {
        await addTestUser(sql, `${user}@parley.test`, site);
        if (tag !== null) await grantClientPolicy(sql, `${user}@parley.test`, tag, change);
      }
    });
    after(() => sql.close());

    it('a user with no site gets Global (or their tag policy)', async () => {
      assert.deepEqual(await effectiveSettings(sql, 'nosite@parley.test'), {
        EnableOfflineIm: true, OfflineImPickupDelaySeconds: 300, OfflineImMaxAgeSeconds: 86400,
        ConversationIdleTimeoutSeconds: 600, UnreadMissedTimeoutSeconds: 300,
        EnableIMAutoArchiving: true, DisableSavingIM: false, EnableFederationAccess: false,
        sources: { ImConfiguration: 'Global', ClientPolicy: 'Global', ExternalAccessPolicy: 'Global' },
      });
      const tagged = await effectiveSettings(sql, 'sip:NoSite-Tag@parley.test');
      assert.deepEqual(tagged.sources, { ImConfiguration: 'Global', ClientPolicy: 'Tag:Sales', ExternalAccessPolicy: 'Global' });
      assert.equal(tagged.EnableIMAutoArchiving, false);
      assert.equal(tagged.DisableSavingIM, false, 'a tag instance holds all values: DisableSavingIM is its own default, not inherited');
    });

    it('a site with instances applies them whole; a tag still wins for the client policy', async () => {
      const site = await effectiveSettings(sql, 'configured@parley.test');
      assert.deepEqual(site, {
        EnableOfflineIm: false, OfflineImPickupDelaySeconds: 120, OfflineImMaxAgeSeconds: 3600,
        ConversationIdleTimeoutSeconds: 600, UnreadMissedTimeoutSeconds: 300,
        EnableIMAutoArchiving: true, DisableSavingIM: true, EnableFederationAccess: false,
        sources: { ImConfiguration: 'Site:Configured', ClientPolicy: 'Site:Configured', ExternalAccessPolicy: 'Global' },
      });
      const tagged = await effectiveSettings(sql, 'configured-tag@parley.test');
      assert.deepEqual(tagged.sources, { ImConfiguration: 'Site:Configured', ClientPolicy: 'Tag:Sales', ExternalAccessPolicy: 'Global' });
      assert.equal(tagged.EnableIMAutoArchiving, false);
      assert.equal(tagged.DisableSavingIM, false);
      assert.equal(tagged.EnableOfflineIm, false);
    });

    it('a site without instances falls back to Global', async () => {
      assert.deepEqual((await effectiveSettings(sql, 'bare@parley.test')).sources, { ImConfiguration: 'Global', ClientPolicy: 'Global', ExternalAccessPolicy: 'Global' });
      assert.deepEqual((await effectiveSettings(sql, 'bare-tag@parley.test')).sources, { ImConfiguration: 'Global', ClientPolicy: 'Tag:Sales', ExternalAccessPolicy: 'Global' });
    });

    it('sees a change made through the same handle at once, and a removed grant', async () => {
      await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change);
      assert.equal((await effectiveSettings(sql, 'bare@parley.test')).EnableOfflineIm, false);
      await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: true }, change);
      assert.equal((await effectiveSettings(sql, 'bare@parley.test')).EnableOfflineIm, true);
      await grantClientPolicy(sql, 'bare-tag@parley.test', null, change);
      assert.equal((await effectiveSettings(sql, 'bare-tag@parley.test')).sources.ClientPolicy, 'Global');
      await grantClientPolicy(sql, 'bare-tag@parley.test', 'Sales', change);
      assert.equal((await effectiveSettings(sql, 'bare-tag@parley.test')).sources.ClientPolicy, 'Tag:Sales');
    });

    it('answers a repeated question from memory: a hit reads nothing but the settings version', async () => {
      const texts: string[] = [];
      const counting = countingSql(sql, texts);
      const first = await effectiveSettings(counting, 'configured@parley.test');
      assert.ok(texts.some((t) => /FROM users/.test(t)), 'the first question is read');
      texts.length = 0;
      assert.deepEqual(await effectiveSettings(counting, 'configured@parley.test'), first);
      assert.deepEqual(texts.filter((t) => t !== 'SELECT v FROM settings_version'), [], 'the second is not');
    });

    it('refuses an address with no user, and does not remember the refusal', async () => {
      await assert.rejects(effectiveSettings(sql, 'nobody@parley.test'), (e: unknown) => e instanceof DirectoryError && e.code === 'USER_NOT_FOUND');
      await addTestUser(sql, 'nobody@parley.test');
      assert.equal((await effectiveSettings(sql, 'nobody@parley.test')).sources.ImConfiguration, 'Global');
    });
  });

  describe(`effectiveSettings on ${engine.name}: changes by another process`, () => {
    it('a change through another connection (parley admin) counts from the cache’s next check', async () => {
      const { server, cli, close } = await twoConnections(engine);
      try {
        await migrateSettings(cli);
        await addTestUser(cli, 'carol@parley.test');
        assert.deepEqual((await effectiveSettings(server, 'carol@parley.test')).sources, { ImConfiguration: 'Global', ClientPolicy: 'Global', ExternalAccessPolicy: 'Global' });
        await addTestSite(cli, 'Remote');
        await createInstance(cli, IM_CONFIGURATION, { scope: 'site', name: 'Remote' }, { EnableOfflineIm: false }, change);
        await createInstance(cli, CLIENT_POLICY, { scope: 'tag', name: 'Remote' }, { DisableSavingIM: true }, change);
        await setTestUserSite(cli, 'carol@parley.test', 'Remote');
        await grantClientPolicy(cli, 'carol@parley.test', 'Remote', change);
        const moved = await eventually(() => effectiveSettings(server, 'carol@parley.test'), (s) => s.sources.ClientPolicy === 'Tag:Remote');
        assert.deepEqual(moved.sources, { ImConfiguration: 'Site:Remote', ClientPolicy: 'Tag:Remote', ExternalAccessPolicy: 'Global' });
        assert.equal(moved.EnableOfflineIm, false);
        assert.equal(moved.DisableSavingIM, true);
        await updateInstance(cli, IM_CONFIGURATION, { scope: 'site', name: 'Remote' }, { EnableOfflineIm: true }, change);
        assert.equal((await eventually(() => effectiveSettings(server, 'carol@parley.test'), (s) => s.EnableOfflineIm)).EnableOfflineIm, true);
        await setTestUserSite(cli, 'carol@parley.test', null);
        assert.equal((await eventually(() => effectiveSettings(server, 'carol@parley.test'), (s) => s.sources.ImConfiguration === 'Global')).sources.ImConfiguration, 'Global', 'a user moved off the site');
      } finally {
        await close();
      }
    });
  });

  describe(`effectiveSettings on ${engine.name}: CsExternalAccessPolicy (issue 15)`, () => {
    it('resolves like CsClientPolicy (Tag granted, else site, else Global), with its own grants', async () => {
      const d = await openSettingsDatabase(engine);
      try {
        await addTestSite(d, 'Partners');
        await addTestUser(d, 'erin@parley.test');
        assert.equal((await effectiveSettings(d, 'erin@parley.test')).EnableFederationAccess, false, 'off by default');
        assert.equal((await effectiveSettings(d, 'erin@parley.test')).sources.ExternalAccessPolicy, 'Global');
        await createInstance(d, EXTERNAL_ACCESS_POLICY, { scope: 'site', name: 'partners' }, { EnableFederationAccess: true }, change);
        await setTestUserSite(d, 'erin@parley.test', 'Partners');
        await eventually(() => effectiveSettings(d, 'erin@parley.test'), (s) => s.EnableFederationAccess);
        assert.equal((await effectiveSettings(d, 'erin@parley.test')).EnableFederationAccess, true);
        assert.equal((await effectiveSettings(d, 'erin@parley.test')).sources.ExternalAccessPolicy, 'Site:Partners', 'the site’s name as created');
        await createInstance(d, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'NoFederation' }, {}, change);
        // a client policy grant of the same name is another grant: it changes nothing here
        await createInstance(d, CLIENT_POLICY, { scope: 'tag', name: 'NoFederation' }, {}, change);
        await grantClientPolicy(d, 'erin@parley.test', 'NoFederation', change);
        assert.equal((await effectiveSettings(d, 'erin@parley.test')).sources.ExternalAccessPolicy, 'Site:Partners');
        await grantPolicy(d, EXTERNAL_ACCESS_POLICY, 'erin@parley.test', 'nofederation', change);
        const tagged = await effectiveSettings(d, 'erin@parley.test');
        assert.equal(tagged.EnableFederationAccess, false);
        assert.deepEqual(tagged.sources, { ImConfiguration: 'Global', ClientPolicy: 'Tag:NoFederation', ExternalAccessPolicy: 'Tag:NoFederation' });
        await assert.rejects(removeInstance(d, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'NoFederation' }, change),
          (e: SettingsError) => e.code === 'POLICY_IN_USE' && /Grant-CsExternalAccessPolicy -Identity <user> -PolicyName \$Null/.test(e.message));
        await grantPolicy(d, EXTERNAL_ACCESS_POLICY, 'erin@parley.test', null, change);
        assert.equal((await effectiveSettings(d, 'erin@parley.test')).sources.ExternalAccessPolicy, 'Site:Partners');
        assert.equal(await grantedPolicy(d, 'erin@parley.test'), 'NoFederation', 'the client policy grant is untouched');
        await assert.rejects(grantPolicy(d, IM_CONFIGURATION, 'erin@parley.test', 'x', change), /not granted to users/);
      } finally {
        await d.close();
      }
    });
  });
}

/** `sql`, noting the text of every statement run through it. */
function countingSql(sql: Sql, texts: string[]): Sql {
  const note = (text: string) => {
    texts.push(text);
    return text;
  };
  return {
    engine: sql.engine,
    inTransaction: false,
    all: (text, params) => sql.all(note(text), params),
    get: (text, params) => sql.get(note(text), params),
    run: (text, params) => sql.run(note(text), params),
    exec: (text) => sql.exec(note(text)),
    transaction: (fn, options) => sql.transaction(fn, options),
  };
}
