// The settings repository and the audit log on each engine: what the cmdlets rely on (errors with
// their codes, names in any case, the audit rows of each write) and what retention uses.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DirectoryError } from '../../src/directory/index.ts';
import {
  CLIENT_POLICY, EXTERNAL_ACCESS_POLICY, GLOBAL, IM_CONFIGURATION, SettingsError, countSiteInstances, createInstance, getInstance, grantPolicy, grantedPolicy, lastAuditId, listAudit,
  listInstances, oldestAudit, purgeAuditBatch, recordAudit, removeInstance, requireInstance, updateInstance,
} from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import { addTestSite, addTestUser, change, openSettingsDatabase } from './settings-fixture.ts';

after(closeTestPostgres);

const code = (c: string) => (e: unknown) => (e instanceof SettingsError || e instanceof DirectoryError) && e.code === c;

for (const engine of ENGINES) {
  describe(`settings repository on ${engine.name}`, () => {
    let sql: SqlDatabase;
    before(async () => {
      sql = await openSettingsDatabase(engine);
      await addTestSite(sql, 'Redmond');
      await addTestUser(sql, 'dana@parley.test', 'Redmond');
    });
    after(() => sql.close());

    it('creates an instance with every value, under the site’s name as created; refuses it twice, and an unknown site', async () => {
      const created = await createInstance(sql, IM_CONFIGURATION, { scope: 'site', name: 'REDMOND' }, { OfflineImMaxAge: 3600 }, change);
      assert.deepEqual(created.identity, { scope: 'site', name: 'Redmond' });
      assert.equal(created.values.OfflineImMaxAge, 3600);
      assert.equal(created.values.EnableOfflineIm, true);
      await assert.rejects(createInstance(sql, IM_CONFIGURATION, { scope: 'site', name: 'redmond' }, {}, change), code('IDENTITY_EXISTS'));
      await assert.rejects(createInstance(sql, IM_CONFIGURATION, { scope: 'site', name: 'Paris' }, {}, change), code('SITE_NOT_FOUND'));
      await assert.rejects(createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'x' }, { NoSuchThing: true }, change), code('BAD_VALUE'));
      await assert.rejects(createInstance(sql, IM_CONFIGURATION, { scope: 'site', name: 'Redmond' }, { OfflineImMaxAge: 1 }, change), code('BAD_TIMESPAN'));
      assert.equal(await countSiteInstances(sql, 'redmond'), 1);
      assert.equal(await countSiteInstances(sql, 'Paris'), 0);
    });

    it('finds a tag in any case, keeps the case it was created with, and lists Global, sites, tags', async () => {
      await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'Sales' }, { DisableSavingIM: true }, change);
      await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'accounts' }, {}, change);
      await createInstance(sql, CLIENT_POLICY, { scope: 'site', name: 'Redmond' }, {}, change);
      assert.deepEqual((await getInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'SALES' }))?.identity, { scope: 'tag', name: 'Sales' });
      assert.deepEqual((await listInstances(sql, CLIENT_POLICY)).map((i) => `${i.identity.scope}:${i.identity.name}`), ['global:', 'site:Redmond', 'tag:accounts', 'tag:Sales']);
      await assert.rejects(requireInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'Nope' }), (e: SettingsError) => e.code === 'UNKNOWN_IDENTITY' && /New-CsClientPolicy -Identity Tag:Nope/.test(e.message));
    });

    it('updates only what is given, audits what changed, and resets Global on remove', async () => {
      const before = await lastAuditId(sql);
      const updated = await updateInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'sales' }, { DisableSavingIM: true, EnableIMAutoArchiving: false }, { ...change, cmdlet: 'Set-CsClientPolicy' });
      assert.deepEqual(updated.values, { EnableIMAutoArchiving: false, DisableSavingIM: true });
      const rows = (await listAudit(sql)).filter((e) => e.id > before);
      assert.deepEqual(rows.map((e) => [e.cmdlet, e.identity, e.property, e.oldValue, e.newValue]), [['Set-CsClientPolicy', 'Tag:Sales', 'EnableIMAutoArchiving', 'True', 'False']], 'an unchanged value is not audited');
      await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false, OfflineImPickupDelay: 5 }, change);
      await removeInstance(sql, IM_CONFIGURATION, GLOBAL, change);
      assert.deepEqual((await requireInstance(sql, IM_CONFIGURATION, GLOBAL)).values.EnableOfflineIm, true);
      await assert.rejects(updateInstance(sql, IM_CONFIGURATION, { scope: 'site', name: 'Nowhere' }, {}, change), code('UNKNOWN_IDENTITY'));
    });

    it('grants a tag policy to a user (any case), refuses an unknown user or tag, and a tag still granted', async () => {
      await createInstance(sql, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'Partners' }, { EnableFederationAccess: true }, change);
      await grantPolicy(sql, EXTERNAL_ACCESS_POLICY, 'sip:Dana@parley.test', 'partners', change);
      assert.equal(await grantedPolicy(sql, 'dana@parley.test', EXTERNAL_ACCESS_POLICY), 'Partners');
      const [grant] = (await listAudit(sql, 1));
      assert.deepEqual([grant?.identity, grant?.property, grant?.oldValue, grant?.newValue], ['dana@parley.test', 'ExternalAccessPolicy', null, 'Tag:Partners']);
      await assert.rejects(grantPolicy(sql, EXTERNAL_ACCESS_POLICY, 'nobody@parley.test', 'Partners', change), code('USER_NOT_FOUND'));
      await assert.rejects(grantPolicy(sql, EXTERNAL_ACCESS_POLICY, 'dana@parley.test', 'Nope', change), code('UNKNOWN_IDENTITY'));
      await assert.rejects(removeInstance(sql, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'PARTNERS' }, change), (e: SettingsError) => e.code === 'POLICY_IN_USE' && /granted to 1 user;/.test(e.message));
      const count = await lastAuditId(sql);
      await grantPolicy(sql, EXTERNAL_ACCESS_POLICY, 'dana@parley.test', 'Partners', change);
      assert.equal(await lastAuditId(sql), count, 'granting what is granted changes nothing');
      await grantPolicy(sql, EXTERNAL_ACCESS_POLICY, 'dana@parley.test', null, change);
      await removeInstance(sql, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'partners' }, change);
      assert.equal(await getInstance(sql, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'Partners' }), undefined);
      assert.deepEqual((await listAudit(sql, 1)).map((e) => [e.identity, e.oldValue, e.newValue]), [['Tag:Partners', 'existed', 'removed']]);
    });

    it('a failed write leaves neither the change nor its audit rows', async () => {
      const before = await lastAuditId(sql);
      await assert.rejects(sql.transaction(async (tx) => {
        await updateInstance(tx, CLIENT_POLICY, GLOBAL, { DisableSavingIM: true }, change);
        throw new Error('the caller fails after the write');
      }), /caller fails/);
      assert.equal((await requireInstance(sql, CLIENT_POLICY, GLOBAL)).values.DisableSavingIM, false);
      assert.equal(await lastAuditId(sql), before);
    });
  });

  describe(`the audit log on ${engine.name}`, () => {
    it('lists the newest N oldest first; retention purges the oldest in batches', async () => {
      const sql = await openSettingsDatabase(engine);
      try {
        assert.equal(await oldestAudit(sql), null);
        assert.equal(await lastAuditId(sql), 0);
        for (let at = 1; at <= 5; at++) await recordAudit(sql, { actor: 'a', cmdlet: 'Test-Audit', now: () => at * 1000 }, `thing-${at}`, at % 2 === 0 ? 'P' : null, null, String(at));
        assert.deepEqual((await listAudit(sql, 2)).map((e) => e.identity), ['thing-4', 'thing-5']);
        const [first] = await listAudit(sql);
        assert.deepEqual(first && { ...first, id: 0 }, { id: 0, at: new Date(1000), actor: 'a', cmdlet: 'Test-Audit', identity: 'thing-1', property: null, oldValue: null, newValue: '1' });
        assert.equal(await oldestAudit(sql), 1000);
        assert.equal(await purgeAuditBatch(sql, 4000, 2), 2);
        assert.equal(await purgeAuditBatch(sql, 4000, 2), 1);
        assert.equal(await purgeAuditBatch(sql, 4000, 2), 0);
        assert.deepEqual((await listAudit(sql)).map((e) => e.identity), ['thing-4', 'thing-5']);
        assert.equal(await oldestAudit(sql), 4000);
      } finally {
        await sql.close();
      }
    });
  });
}
