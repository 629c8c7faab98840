// Partners' users on contact lists (issue 15): the repository keeps them beside users, and adding
// one is allowed only where the federation decision lets the owner go.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { DirectoryError } from '../../src/directory/index.ts';
import { getContact, listContacts, MAX_CONTACTS, removeContact } from '../../src/presence/contacts.ts';
import { PresenceError, databaseContactLists } from '../../src/presence/index.ts';
import { addToContacts } from '../../src/presence/policy.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { closePresenceDatabases, presenceDatabase, removeUserRow } from './presence-database.ts';

const D = 'org-a.test';
const T0 = 1_700_000_000_000;
const USERS = [`alice@${D}`, `bob@${D}`];
const userExists = async (address: string) => USERS.includes(address);
/** a federation decision that allows org-b.test only (asynchronous, as the gate's is) */
const allowOrgB = {
  userExists,
  federation: { domain: D, outboundRefusal: async (_sender: string, domain: string) => (domain === 'org-b.test' ? null : { code: 'DOMAIN_NOT_ALLOWED', warning: `${domain} is not an allowed domain (New-CsAllowedDomain)` }) },
};

afterEach(closePresenceDatabases);
after(closeTestPostgres);

for (const engine of ENGINES) {
const database = () => presenceDatabase(engine, [{ address: `alice@${D}`, displayName: null }, { address: `bob@${D}`, displayName: 'Bob Builder' }]);

describe(`contact lists with partners' users on ${engine.name}`, () => {
  it('adds a partner\'s user when the decision allows, lists both kinds, removes either', async () => {
    const db = await database();
    assert.equal((await addToContacts(db, `alice@${D}`, 'dave@org-b.test', T0, allowOrgB)).created, true);
    assert.equal((await addToContacts(db, `alice@${D}`, 'dave@org-b.test', T0, allowOrgB)).created, false);
    await addToContacts(db, `alice@${D}`, `bob@${D}`, T0, allowOrgB);
    assert.deepEqual((await listContacts(db, `alice@${D}`)).map((c) => [c.member, c.displayName, c.remote]), [[`bob@${D}`, 'Bob Builder', false], ['dave@org-b.test', null, true]]);
    assert.deepEqual((await databaseContactLists(db).membersOf(`alice@${D}`)).map((c) => c.member), [`bob@${D}`, 'dave@org-b.test']);
    assert.equal((await getContact(db, `alice@${D}`, 'dave@org-b.test'))?.remote, true);
    assert.equal(await removeContact(db, `alice@${D}`, 'dave@org-b.test'), true);
    assert.equal(await removeContact(db, `alice@${D}`, 'dave@org-b.test'), false);
    assert.deepEqual((await listContacts(db, `alice@${D}`)).map((c) => c.member), [`bob@${D}`]);
  });

  it('refuses with the decision\'s reason (403 PARTNER_REFUSED); without a link, other domains are no users (404)', async () => {
    const db = await database();
    await assert.rejects(addToContacts(db, `alice@${D}`, 'erin@org-c.test', T0, allowOrgB), (err: unknown) => err instanceof PresenceError && err.code === 'PARTNER_REFUSED' && err.httpStatus === 403 && /not an allowed domain.*DOMAIN_NOT_ALLOWED/.test(err.message));
    // no federation link: an address of another domain is no user, as before issue 15
    await assert.rejects(addToContacts(db, `alice@${D}`, 'dave@org-b.test', T0, { userExists, federation: { domain: D } }), (err: unknown) => err instanceof DirectoryError && err.code === 'USER_NOT_FOUND' && /federation link/.test(err.message));
    await assert.rejects(addToContacts(db, `alice@${D}`, `ghost@${D}`, T0, allowOrgB), (err: unknown) => err instanceof DirectoryError && err.code === 'USER_NOT_FOUND');
    assert.deepEqual(await listContacts(db, `alice@${D}`), []);
  });

  it('remote entries count against the list\'s limit and go with their owner', async () => {
    const db = await database();
    await db.run(`WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
      INSERT INTO presence_remote_contacts (owner, member, created_at) SELECT ?, 'u' || i || '@org-b.test', ? FROM k`, [MAX_CONTACTS - 1, `bob@${D}`, T0]);
    await assert.rejects(addToContacts(db, `bob@${D}`, `alice@${D}`, T0, allowOrgB), (err: unknown) => err instanceof PresenceError && err.code === 'CONTACT_LIST_FULL');
    await removeUserRow(db, `bob@${D}`);
    assert.equal(Number((await db.get<{ n: number }>('SELECT count(*) AS n FROM presence_remote_contacts'))?.n), 0);
  });
});
}
