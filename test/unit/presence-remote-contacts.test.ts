// Partners' users on contact lists (issue 15): the repository keeps them beside users, and adding
// one is allowed only where the federation decision lets the owner go.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIRECTORY_MIGRATIONS, DirectoryError, addUser, removeUser } from '../../src/directory/index.ts';
import { getContact, listContacts, MAX_CONTACTS, removeContact } from '../../src/presence/contacts.ts';
import { PRESENCE_MIGRATIONS, PresenceError, databaseContactLists } from '../../src/presence/index.ts';
import { addToContacts } from '../../src/presence/policy.ts';
import { openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';

const D = 'org-a.test';
const T0 = 1_700_000_000_000;
const allowOrgB = { domain: D, outboundRefusal: (_sender: string, domain: string) => (domain === 'org-b.test' ? null : { code: 'DOMAIN_NOT_ALLOWED', warning: `${domain} is not an allowed domain (New-CsAllowedDomain)` }) };

async function database() {
  const db = openMemoryDatabase();
  runMigrations(db, [DIRECTORY_MIGRATIONS, PRESENCE_MIGRATIONS]);
  for (const u of ['alice', 'bob']) await addUser(sqliteSql(db), { address: `${u}@${D}`, password: 'pw', displayName: u === 'bob' ? 'Bob Builder' : null });
  return db;
}

describe('contact lists with partners\' users', () => {
  it('adds a partner\'s user when the decision allows, lists both kinds, removes either', async () => {
    const db = await database();
    assert.equal(addToContacts(db, `alice@${D}`, 'dave@org-b.test', T0, allowOrgB).created, true);
    assert.equal(addToContacts(db, `alice@${D}`, 'dave@org-b.test', T0, allowOrgB).created, false);
    addToContacts(db, `alice@${D}`, `bob@${D}`, T0, allowOrgB);
    assert.deepEqual(listContacts(db, `alice@${D}`).map((c) => [c.member, c.displayName, c.remote]), [[`bob@${D}`, 'Bob Builder', false], ['dave@org-b.test', null, true]]);
    assert.deepEqual(databaseContactLists(db).membersOf(`alice@${D}`).map((c) => c.member), [`bob@${D}`, 'dave@org-b.test']);
    assert.equal(getContact(db, `alice@${D}`, 'dave@org-b.test')?.remote, true);
    assert.equal(removeContact(db, `alice@${D}`, 'dave@org-b.test'), true);
    assert.equal(removeContact(db, `alice@${D}`, 'dave@org-b.test'), false);
    assert.deepEqual(listContacts(db, `alice@${D}`).map((c) => c.member), [`bob@${D}`]);
  });

  it('refuses with the decision\'s reason (403 PARTNER_REFUSED); without a link, other domains are no users (404)', async () => {
    const db = await database();
    assert.throws(() => addToContacts(db, `alice@${D}`, 'erin@org-c.test', T0, allowOrgB), (err: unknown) => err instanceof PresenceError && err.code === 'PARTNER_REFUSED' && err.httpStatus === 403 && /not an allowed domain.*DOMAIN_NOT_ALLOWED/.test(err.message));
    // no federation link: an address of another domain is no user, as before issue 15
    assert.throws(() => addToContacts(db, `alice@${D}`, 'dave@org-b.test', T0, { domain: D }), (err: unknown) => err instanceof DirectoryError && err.code === 'USER_NOT_FOUND' && /federation link/.test(err.message));
    assert.throws(() => addToContacts(db, `alice@${D}`, `ghost@${D}`, T0, allowOrgB), (err: unknown) => err instanceof DirectoryError && err.code === 'USER_NOT_FOUND');
    assert.deepEqual(listContacts(db, `alice@${D}`), []);
  });

  it('remote entries count against the list\'s limit and go with their owner', async () => {
    const db = await database();
    for (let i = 0; i < MAX_CONTACTS; i++) db.prepare('INSERT INTO presence_remote_contacts (owner, member, created_at) VALUES (?, ?, ?)').run(`bob@${D}`, `u${i}@org-b.test`, T0);
    assert.throws(() => addToContacts(db, `bob@${D}`, `alice@${D}`, T0, allowOrgB), (err: unknown) => err instanceof PresenceError && err.code === 'CONTACT_LIST_FULL');
    await removeUser(sqliteSql(db), `bob@${D}`);
    assert.equal((db.prepare('SELECT count(*) AS n FROM presence_remote_contacts').get() as { n: number }).n, 0);
  });
});
