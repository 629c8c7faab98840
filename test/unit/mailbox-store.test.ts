import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EmbeddedMailboxConnector,
  MAILBOX_MIGRATIONS,
  MailboxError,
  createFolder,
  createItem,
  deleteItem,
  ensureMailbox,
  findItems,
  getDistinguishedFolder,
  getFolder,
  getItem,
  listFolders,
  listMissedConversations,
  missedConversationSummary,
  updateItem,
} from '../../src/mailbox/index.ts';
import type { DeliveryItem } from '../../src/mailbox/index.ts';
import { openMemoryDatabase, runMigrations } from '../../src/storage/index.ts';

const fresh = () => {
  const db = openMemoryDatabase();
  runMigrations(db, [MAILBOX_MIGRATIONS]);
  return db;
};
const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MailboxError, `expected a MailboxError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
};

describe('mailbox store', () => {
  it('makes a mailbox once, with the distinguished folders under the root', () => {
    const db = fresh();
    const a = ensureMailbox(db, 'Alice@Parley.Test');
    assert.equal(a.address, 'alice@parley.test');
    assert.deepEqual(ensureMailbox(db, 'sip:alice@parley.test'), a);
    const root = getDistinguishedFolder(db, a.id, 'msgfolderroot');
    const names = listFolders(db, a.id, root.id, false).map((f) => f.displayName);
    assert.deepEqual(names, ['Calendar', 'Contacts', 'Conversation History', 'Deleted Items', 'Drafts', 'Inbox', 'Junk Email', 'Outbox', 'Sent Items']);
    assert.equal(getDistinguishedFolder(db, a.id, 'calendar').folderClass, 'IPF.Appointment');
    assert.equal(getDistinguishedFolder(db, a.id, 'conversationhistory').distinguished, 'conversationhistory');
  });

  it('creates user folders, refuses duplicates, lists deep', () => {
    const db = fresh();
    const a = ensureMailbox(db, 'alice@parley.test');
    const inbox = getDistinguishedFolder(db, a.id, 'inbox');
    const projects = createFolder(db, a.id, inbox.id, 'Projects');
    createFolder(db, a.id, projects.id, 'Parley');
    assert.equal(codeOf(() => createFolder(db, a.id, inbox.id, 'projects')), 'FOLDER_EXISTS');
    const root = getDistinguishedFolder(db, a.id, 'msgfolderroot');
    assert.equal(listFolders(db, a.id, root.id, true).length, 11);
    assert.equal(getFolder(db, a.id, inbox.id).childFolderCount, 1);
  });

  it('keeps items with opaque ids, new change keys on update, counts and filters', () => {
    let t = 1_700_000_000_000;
    const now = () => (t += 1000);
    const db = fresh();
    const a = ensureMailbox(db, 'alice@parley.test');
    const ch = getDistinguishedFolder(db, a.id, 'conversationhistory');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(createItem(db, a.id, ch.id, { itemClass: i % 2 ? 'IPM.Note.Microsoft.Conversation' : 'IPM.Note.Microsoft.Missed', subject: `s${i}`, bodyText: 'hi', internetMessageId: `<m${i}@x>` }, now).id);
    }
    assert.ok(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id)));
    assert.equal(codeOf(() => createItem(db, a.id, ch.id, { internetMessageId: '<m1@x>' })), 'INVALID_REQUEST');
    const missed = findItems(db, a.id, ch.id, { filter: { op: 'eq', field: 'itemClass', value: 'IPM.Note.Microsoft.Missed' }, max: 2 });
    assert.equal(missed.total, 3);
    assert.deepEqual(missed.items.map((i) => i.subject), ['s4', 's2'], 'newest first');
    const asc = findItems(db, a.id, ch.id, { order: 'asc', offset: 1, max: 2 });
    assert.deepEqual(asc.items.map((i) => i.subject), ['s1', 's2']);

    const before = getItem(db, a.id, ids[0]!);
    const after = updateItem(db, a.id, before.id, { isRead: true, subject: 'new' });
    assert.notEqual(after.changeKey, before.changeKey);
    assert.equal(after.isRead, true);
    assert.equal(findItems(db, a.id, ch.id, { filter: { op: 'eq', field: 'isRead', value: false } }).total, 4);
    assert.equal(getFolder(db, a.id, ch.id).unreadCount, 4);
  });

  it('never serves another mailbox and tells malformed ids apart', () => {
    const db = fresh();
    const a = ensureMailbox(db, 'alice@parley.test');
    const b = ensureMailbox(db, 'bob@parley.test');
    const inbox = getDistinguishedFolder(db, a.id, 'inbox');
    const item = createItem(db, a.id, inbox.id, { subject: 'secret' });
    assert.equal(codeOf(() => getItem(db, b.id, item.id)), 'ACCESS_DENIED');
    assert.equal(codeOf(() => updateItem(db, b.id, item.id, { isRead: true })), 'ACCESS_DENIED');
    assert.equal(codeOf(() => deleteItem(db, b.id, item.id, 'HardDelete')), 'ACCESS_DENIED');
    assert.equal(codeOf(() => getFolder(db, b.id, inbox.id)), 'ACCESS_DENIED');
    assert.equal(codeOf(() => createItem(db, b.id, inbox.id, {})), 'ACCESS_DENIED');
    assert.equal(codeOf(() => getItem(db, a.id, 'AAAAAAAAAAAAAAAAAAAAAA')), 'ITEM_NOT_FOUND');
    assert.equal(codeOf(() => getItem(db, a.id, "1' OR 1=1 --")), 'ID_MALFORMED');
  });

  it('deletes hard, soft, and to Deleted Items', () => {
    const db = fresh();
    const a = ensureMailbox(db, 'alice@parley.test');
    const inbox = getDistinguishedFolder(db, a.id, 'inbox');
    const deleted = getDistinguishedFolder(db, a.id, 'deleteditems');
    const [x, y, z] = [1, 2, 3].map(() => createItem(db, a.id, inbox.id, {}));
    deleteItem(db, a.id, x!.id, 'HardDelete');
    deleteItem(db, a.id, y!.id, 'SoftDelete');
    deleteItem(db, a.id, z!.id, 'MoveToDeletedItems');
    assert.equal(codeOf(() => getItem(db, a.id, x!.id)), 'ITEM_NOT_FOUND');
    assert.equal(codeOf(() => getItem(db, a.id, y!.id)), 'ITEM_NOT_FOUND');
    assert.equal(getItem(db, a.id, z!.id).folderId, deleted.id);
    assert.equal(findItems(db, a.id, inbox.id).total, 0);
  });
});

describe('EmbeddedMailboxConnector', () => {
  const item = (over: Partial<DeliveryItem> = {}): DeliveryItem => ({
    mailbox: 'bob@parley.test',
    folder: 'conversationhistory',
    itemClass: 'IPM.Note.Microsoft.Missed',
    internetMessageId: '<spool-1@parley.test>',
    subject: 'Missed conversation with Alice',
    from: { address: 'alice@parley.test', name: 'Alice' },
    to: [{ address: 'bob@parley.test' }],
    bodyHtml: '<p>hello</p>',
    bodyText: 'hello',
    sentAt: new Date(1_700_000_000_000),
    isRead: false,
    ...over,
  });

  it('delivers once per InternetMessageId, into the folder asked, nothing in Drafts', async () => {
    const db = fresh();
    const connector = new EmbeddedMailboxConnector({ db, userExists: (a) => a === 'bob@parley.test' });
    const first = await connector.deliver(item());
    const again = await connector.deliver(item({ subject: 'changed' }));
    assert.deepEqual(again, { itemId: first.itemId, created: false });
    assert.equal(first.created, true);
    const bob = ensureMailbox(db, 'bob@parley.test');
    const ch = getDistinguishedFolder(db, bob.id, 'conversationhistory');
    const stored = findItems(db, bob.id, ch.id);
    assert.equal(stored.total, 1);
    assert.equal(stored.items[0]?.itemClass, 'IPM.Note.Microsoft.Missed');
    assert.equal(stored.items[0]?.sentAt, 1_700_000_000_000);
    assert.equal(findItems(db, bob.id, getDistinguishedFolder(db, bob.id, 'drafts').id).total, 0);
    // still one item after the user deleted it softly: a retried delivery does not bring it back
    deleteItem(db, bob.id, first.itemId, 'SoftDelete');
    assert.equal((await connector.deliver(item())).created, false);
  });

  it('counts Missed Conversations for the message-summary notification', async () => {
    const db = fresh();
    const connector = new EmbeddedMailboxConnector({ db, userExists: () => true });
    assert.deepEqual(missedConversationSummary(db, 'bob@parley.test'), { total: 0, unread: 0 });
    await connector.deliver(item());
    await connector.deliver(item({ internetMessageId: '<spool-2@parley.test>', isRead: true }));
    await connector.deliver(item({ internetMessageId: '<spool-3@parley.test>', itemClass: 'IPM.Note.Microsoft.Conversation' }));
    assert.deepEqual(missedConversationSummary(db, 'bob@parley.test'), { total: 2, unread: 1 });
    assert.equal(listMissedConversations(db, 'bob@parley.test').total, 2);
  });

  it('refuses unknown users and empty ids', async () => {
    const db = fresh();
    const connector = new EmbeddedMailboxConnector({ db, userExists: () => false });
    await assert.rejects(connector.deliver(item()), (e: unknown) => e instanceof MailboxError && e.code === 'MAILBOX_NOT_FOUND');
    await assert.rejects(connector.deliver(item({ internetMessageId: ' ' })), (e: unknown) => e instanceof MailboxError && e.code === 'INVALID_REQUEST');
  });
});

describe('mailbox ids', () => {
  it('are 22 base64url characters, all different, never starting with "-" (a CLI would read an option)', async () => {
    const { isWellFormedId, newId } = await import('../../src/mailbox/ids.ts');
    const ids = new Set(Array.from({ length: 5000 }, newId));
    assert.equal(ids.size, 5000);
    for (const id of ids) {
      assert.ok(isWellFormedId(id), id);
      assert.ok(!id.startsWith('-'), id);
    }
  });
});
