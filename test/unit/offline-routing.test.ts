// The mailbox routing the offline pipeline asks for every offline MESSAGE's sender and recipient
// (createMailboxRouting): the answers agree with mailboxServerOf, address by address.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EmbeddedMailboxConnector, EwsMailboxConnector } from '../../src/mailbox/index.ts';
import { EMBEDDED, createMailboxRouting, mailboxServerOf } from '../../src/offline/index.ts';
import type { MailboxesConfig } from '../../src/offline/index.ts';
import { openMemoryDatabase, sqliteSql } from '../../src/storage/index.ts';

const embedded = new EmbeddedMailboxConnector({ sql: sqliteSql(openMemoryDatabase()), userExists: async () => true });
const exchange = { url: 'https://mail.example.com/EWS/Exchange.asmx', username: 'svc', password: 'pw' };

describe('mailbox routing', () => {
  it('routes a user by name, else by domain, else to the embedded store, as mailboxServerOf says', () => {
    const config: MailboxesConfig = { servers: { ex: exchange, other: exchange }, domains: { 'parley.test': 'ex' }, users: { 'bob@parley.test': 'other', 'carol@parley.test': EMBEDDED, 'dave@elsewhere.test': 'ex' } };
    const routing = createMailboxRouting(config, embedded);
    for (const address of ['alice@parley.test', 'bob@parley.test', 'carol@parley.test', 'dave@elsewhere.test', 'erin@elsewhere.test', 'constructor', 'toString@parley.test']) {
      const { name, connector } = routing.connectorFor(address);
      assert.equal(name, mailboxServerOf(config, address), address);
      if (name === EMBEDDED) assert.equal(connector, embedded, address);
      else assert.ok(connector instanceof EwsMailboxConnector, address);
    }
    // a name every object has is no user's route (it was Object's constructor, and connectorFor threw)
    assert.equal(mailboxServerOf(config, 'constructor'), EMBEDDED);
    assert.notEqual(routing.connectorFor('alice@parley.test').connector, routing.connectorFor('bob@parley.test').connector, 'each server has its own connector');
    assert.equal(routing.connectorFor('alice@parley.test'), routing.connectorFor('dave@elsewhere.test'), 'one answer per server, not one per call');
  });

  it('without users or domains, every address is the embedded store\'s', () => {
    const routing = createMailboxRouting({ servers: {} }, embedded);
    assert.deepEqual({ ...routing.connectorFor('alice@parley.test') }, { name: EMBEDDED, connector: embedded });
  });

  it('a user routed to a server that is not configured is an error that names it', () => {
    const routing = createMailboxRouting({ users: { 'alice@parley.test': 'gone' } }, embedded);
    assert.throws(() => routing.connectorFor('alice@parley.test'), /mailbox server gone is not configured/);
    assert.equal(routing.connectorFor('bob@parley.test').connector, embedded);
  });
});
