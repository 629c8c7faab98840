import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addUser, DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { EmbeddedMailboxConnector, MAILBOX_MIGRATIONS, runMailboxCommand } from '../../src/mailbox/index.ts';
import { migrate } from '../../src/storage/index.ts';
import type { CliStorage } from '../harness/cli-storage.ts';
import { CLI_ENGINES, UNREACHABLE_POSTGRES, withStore } from '../harness/cli-storage.ts';
import { closeTestPostgres } from '../harness/engines.ts';

after(closeTestPostgres);
const DEFAULT_DATA_DIR = '/nonexistent/parley-mailbox-default';

/** `parley mailbox …` with `args` as given (the storage options included). */
async function mailbox(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runMailboxCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, { dataDir: DEFAULT_DATA_DIR, domain: 'parley.test' });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

for (const engine of CLI_ENGINES) describe(`parley mailbox on ${engine.name}`, () => {
  let store: CliStorage;
  before(async () => {
    store = await engine.fresh();
  });
  after(() => store.drop());
  /** on the describe's storage: --data-dir DIR or --database URL after the arguments */
  const run = (...args: string[]) => mailbox([...args, ...store.args]);

  it('lists folders and items and shows one item', async () => {
    const itemId = await withStore(store, async (sql) => {
      await migrate(sql, [DIRECTORY_MIGRATIONS, MAILBOX_MIGRATIONS]);
      await addUser(sql, { address: 'bob@parley.test', password: 'bob-pw' });
      await addUser(sql, { address: 'dave@parley.test', password: 'dave-pw' });
      const delivered = await new EmbeddedMailboxConnector({ sql, userExists: async () => true }).deliver({
        mailbox: 'bob@parley.test', folder: 'conversationhistory', itemClass: 'IPM.Note.Microsoft.Missed', internetMessageId: '<1@p>',
        subject: 'Missed\u001b[31m conversation', from: { address: 'alice@parley.test' }, to: [{ address: 'bob@parley.test' }],
        bodyHtml: '<p>hi</p>', bodyText: 'alice: hi\nalice: are you there?', sentAt: new Date(0), isRead: false,
      });
      return delivered.itemId;
    });
    const tree = await run('ls', 'bob');
    assert.equal(tree.code, 0);
    assert.match(tree.out, /Conversation History \(conversationhistory\)\s+1\s+1/);
    const items = await run('ls', 'bob@parley.test', 'Conversation History');
    assert.equal(items.code, 0);
    assert.match(items.out, /IPM\.Note\.Microsoft\.Missed\s+alice@parley\.test\s+Missed\[31m conversation/);
    const shown = await run('show', itemId);
    assert.equal(shown.code, 0);
    assert.match(shown.out, /Mailbox: +bob@parley\.test/);
    assert.match(shown.out, /alice: are you there\?/);
    assert.ok(!shown.out.includes('\u001b'), 'no terminal escapes from stored mail');
  });

  it('shows the folders of a user nothing was delivered to yet: every user has a mailbox', async () => {
    const fresh = await run('ls', 'dave@parley.test');
    assert.equal(fresh.code, 0);
    assert.match(fresh.out, /Conversation History \(conversationhistory\)\s+0\s+0/);
    assert.match(fresh.out, /Inbox \(inbox\)/);
  });

  it('grants, lists and revokes the impersonation right', async () => {
    assert.match((await run('impersonation', 'list')).out, /no account/);
    assert.equal((await run('impersonation', 'grant', 'gateway')).code, 0);
    assert.equal((await run('impersonation', 'list')).out, 'gateway@parley.test');
    assert.match((await run('impersonation', 'revoke', 'gateway@parley.test')).out, /no longer/);
    assert.equal((await run('impersonation', 'grant')).code, 2);
  });

  it('says what is wrong', async () => {
    assert.equal((await run('ls')).code, 2);
    assert.equal((await run('frobnicate')).code, 2);
    const none = await run('ls', 'carol@parley.test');
    assert.equal(none.code, 1);
    assert.match(none.err, /no user carol@parley\.test/);
    assert.equal((await run('show', 'nope')).code, 1);
    assert.equal((await run('ls', 'bob', 'Nowhere')).code, 1);
  });
});

describe('parley mailbox: --data-dir or --database', () => {
  it('refuses both, or an address that is not PostgreSQL (2); a PostgreSQL it cannot reach is 1, without its password', async () => {
    const both = await mailbox(['impersonation', 'list', '--data-dir', '/tmp/x', '--database', 'postgres://localhost/parley']);
    assert.equal(both.code, 2);
    assert.match(both.err, /^parley mailbox impersonation: give --data-dir DIR \(SQLite in that directory\) or --database postgres:\/\/… \(PostgreSQL\), not both\nusage: /);
    assert.equal((await mailbox(['ls', 'bob', '--database', 'localhost'])).code, 2);
    const unreachable = await mailbox(['ls', 'bob', '--database', UNREACHABLE_POSTGRES]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err, /^parley mailbox ls: cannot connect to PostgreSQL at postgres:\/\/parley:\*\*\*@127\.0\.0\.1:1\/parley: /);
    assert.doesNotMatch(unreachable.err, /s3cret-pw/);
    assert.match((await mailbox(['help'])).out, /usage: parley mailbox ls SIP-ADDRESS \[FOLDER\] \[--data-dir DIR \| --database postgres:\/\/…\]/);
  });
});
