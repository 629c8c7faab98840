import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { addUser, DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { EmbeddedMailboxConnector, MAILBOX_MIGRATIONS, runMailboxCommand } from '../../src/mailbox/index.ts';
import { openDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'parley-mailbox-cli-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runMailboxCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, { dataDir, domain: 'parley.test' });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('parley mailbox', () => {
  it('lists folders and items and shows one item', async () => {
    const db = openDatabase(dataDir);
    runMigrations(db, [DIRECTORY_MIGRATIONS, MAILBOX_MIGRATIONS]);
    await addUser(sqliteSql(db), { address: 'bob@parley.test', password: 'bob-pw' });
    await addUser(sqliteSql(db), { address: 'dave@parley.test', password: 'dave-pw' });
    const { itemId } = await new EmbeddedMailboxConnector({ sql: sqliteSql(db), userExists: async () => true }).deliver({
      mailbox: 'bob@parley.test', folder: 'conversationhistory', itemClass: 'IPM.Note.Microsoft.Missed', internetMessageId: '<1@p>',
      subject: 'Missed\u001b[31m conversation', from: { address: 'alice@parley.test' }, to: [{ address: 'bob@parley.test' }],
      bodyHtml: '<p>hi</p>', bodyText: 'alice: hi\nalice: are you there?', sentAt: new Date(0), isRead: false,
    });
    db.close();
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
