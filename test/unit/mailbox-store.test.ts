import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import {
  EmbeddedMailboxConnector,
  MAILBOX_MIGRATIONS,
  MailboxError,
  createFolder,
  createItem,
  deleteItem,
  distinguishedFolderId,
  ensureMailbox,
  findConversations,
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
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';

after(closeTestPostgres);

const codeOf = async (fn: () => Promise<unknown>): Promise<string> => {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof MailboxError, `expected a MailboxError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
};

for (const engine of ENGINES) describe(`mailbox store on ${engine.name}`, () => {
  const open: SqlDatabase[] = [];
  const fresh = async () => {
    const sql = await engine.open();
    open.push(sql);
    await migrate(sql, [MAILBOX_MIGRATIONS]);
    return sql;
  };
  afterEach(async () => {
    for (const sql of open.splice(0)) await sql.close();
  });

  it('makes a mailbox once, with the distinguished folders under the root', async () => {
    const sql = await fresh();
    const a = await ensureMailbox(sql, 'Alice@Parley.Test');
    assert.equal(a.address, 'alice@parley.test');
    assert.deepEqual(await ensureMailbox(sql, 'sip:alice@parley.test'), a);
    const root = await getDistinguishedFolder(sql, a.id, 'msgfolderroot');
    const names = (await listFolders(sql, a.id, root.id, false)).map((f) => f.displayName);
    assert.deepEqual(names, ['Calendar', 'Contacts', 'Conversation History', 'Deleted Items', 'Drafts', 'Inbox', 'Junk Email', 'Outbox', 'Sent Items']);
    assert.equal((await getDistinguishedFolder(sql, a.id, 'calendar')).folderClass, 'IPF.Appointment');
    assert.equal((await getDistinguishedFolder(sql, a.id, 'conversationhistory')).distinguished, 'conversationhistory');
  });

  it('creates user folders, refuses duplicates, lists deep', async () => {
    const sql = await fresh();
    const a = await ensureMailbox(sql, 'alice@parley.test');
    const inbox = await getDistinguishedFolder(sql, a.id, 'inbox');
    const projects = await createFolder(sql, a.id, inbox.id, 'Projects');
    await createFolder(sql, a.id, projects.id, 'Parley');
    assert.equal(await codeOf(() => createFolder(sql, a.id, inbox.id, 'projects')), 'FOLDER_EXISTS');
    const root = await getDistinguishedFolder(sql, a.id, 'msgfolderroot');
    assert.equal((await listFolders(sql, a.id, root.id, true)).length, 11);
    assert.equal((await getFolder(sql, a.id, inbox.id)).childFolderCount, 1);
  });

  it('keeps items with opaque ids, new change keys on update, counts and filters', async () => {
    let t = 1_700_000_000_000;
    const now = () => (t += 1000);
    const sql = await fresh();
    const a = await ensureMailbox(sql, 'alice@parley.test');
    const ch = await getDistinguishedFolder(sql, a.id, 'conversationhistory');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await createItem(sql, a.id, ch.id, { itemClass: i % 2 ? 'IPM.Note.Microsoft.Conversation' : 'IPM.Note.Microsoft.Missed', subject: `s${i}`, bodyText: 'hi', internetMessageId: `<m${i}@x>` }, now)).id);
    }
    assert.ok(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id)));
    assert.equal(await codeOf(() => createItem(sql, a.id, ch.id, { internetMessageId: '<m1@x>' })), 'INVALID_REQUEST');
    const missed = await findItems(sql, a.id, ch.id, { filter: { op: 'eq', field: 'itemClass', value: 'IPM.Note.Microsoft.Missed' }, max: 2 });
    assert.equal(missed.total, 3);
    assert.deepEqual(missed.items.map((i) => i.subject), ['s4', 's2'], 'newest first');
    const asc = await findItems(sql, a.id, ch.id, { order: 'asc', offset: 1, max: 2 });
    assert.deepEqual(asc.items.map((i) => i.subject), ['s1', 's2']);

    const before = await getItem(sql, a.id, ids[0]!);
    const after = await updateItem(sql, a.id, before.id, { isRead: true, subject: 'new' });
    assert.notEqual(after.changeKey, before.changeKey);
    assert.equal(after.isRead, true);
    assert.equal((await findItems(sql, a.id, ch.id, { filter: { op: 'eq', field: 'isRead', value: false } })).total, 4);
    assert.equal((await getFolder(sql, a.id, ch.id)).unreadCount, 4);
  });

  it('searches Conversation History case-insensitively, taking % and _ literally, and compares missing values as unequal', async () => {
    const sql = await fresh();
    const a = await ensureMailbox(sql, 'alice@parley.test');
    const ch = await distinguishedFolderId(sql, a.id, 'conversationhistory');
    await createItem(sql, a.id, ch, { itemClass: 'IPM.Note.Microsoft.Missed', subject: 'Budget 100% done', bodyText: 'see you' });
    await createItem(sql, a.id, ch, { itemClass: 'IPM.Note.Microsoft.Conversation', subject: 'lunch', bodyText: 'THE_PLAN is set', internetMessageId: '<x@y>' });
    await createItem(sql, a.id, ch, { itemClass: 'IPM.Note.Microsoft.Conversation', subject: 'Budget 1000 done', bodyText: 'theXplan' });
    const subjects = async (kind: 'missed' | 'history' | 'all', text: string) => (await findConversations(sql, 'alice@parley.test', { kind, text, offset: 0, max: 10 })).items.map((i) => i.subject).sort();
    assert.deepEqual(await subjects('all', '100%'), ['Budget 100% done']);
    assert.deepEqual(await subjects('all', 'the_plan'), ['lunch']);
    assert.deepEqual(await subjects('all', 'BUDGET'), ['Budget 100% done', 'Budget 1000 done']);
    assert.deepEqual(await subjects('history', 'budget'), ['Budget 1000 done']);
    assert.deepEqual(await subjects('missed', ''), ['Budget 100% done']);
    const noId = await findItems(sql, a.id, ch, { filter: { op: 'ne', field: 'internetMessageId', value: '<x@y>' } });
    assert.equal(noId.total, 2, 'an item without an InternetMessageId is not equal to one');
  });

  it('never serves another mailbox and tells malformed ids apart', async () => {
    const sql = await fresh();
    const a = await ensureMailbox(sql, 'alice@parley.test');
    const b = await ensureMailbox(sql, 'bob@parley.test');
    const inbox = await getDistinguishedFolder(sql, a.id, 'inbox');
    const item = await createItem(sql, a.id, inbox.id, { subject: 'secret' });
    assert.equal(await codeOf(() => getItem(sql, b.id, item.id)), 'ACCESS_DENIED');
    assert.equal(await codeOf(() => updateItem(sql, b.id, item.id, { isRead: true })), 'ACCESS_DENIED');
    assert.equal(await codeOf(() => deleteItem(sql, b.id, item.id, 'HardDelete')), 'ACCESS_DENIED');
    assert.equal(await codeOf(() => getFolder(sql, b.id, inbox.id)), 'ACCESS_DENIED');
    assert.equal(await codeOf(() => createItem(sql, b.id, inbox.id, {})), 'ACCESS_DENIED');
    assert.equal(await codeOf(() => getItem(sql, a.id, 'AAAAAAAAAAAAAAAAAAAAAA')), 'ITEM_NOT_FOUND');
    assert.equal(await codeOf(() => getItem(sql, a.id, "1' OR 1=1 --")), 'ID_MALFORMED');
  });

  it('numbers changes in commit order: a reader that follows the log misses none of many concurrent writers', async () => {
    const sql = await fresh();
    const boxes = [];
    for (const name of ['a', 'b', 'c', 'd']) boxes.push(await ensureMailbox(sql, `${name}@parley.test`));
    const inboxes = await Promise.all(boxes.map((b) => distinguishedFolderId(sql, b.id, 'inbox')));
    const seen = new Set<number>();
    let position = 0;
    const follow = async () => {
      for (const row of await sql.all<{ seq: number }>('SELECT seq FROM mail_changes WHERE seq > ? ORDER BY seq', [position])) {
        seen.add(Number(row.seq));
        position = Number(row.seq);
      }
    };
    let writing = true;
    const reader = (async () => {
      while (writing) await follow();
    })();
    // and batches of deliveries that make new mailboxes, in opposite orders
    const note = (mailbox: string, n: number): DeliveryItem => ({
      mailbox, folder: 'inbox', itemClass: 'IPM.Note', internetMessageId: `<${n}@batch>`, subject: 'note', from: { address: 'x@parley.test' }, to: [], bodyHtml: '', bodyText: 'hi', sentAt: new Date(0), isRead: false,
    });
    const connector = new EmbeddedMailboxConnector({ sql, userExists: async () => true });
    const batches = [0, 1, 2, 3].map((k) => connector.deliverMany(k % 2 === 0 ? [note('e@parley.test', k), note('f@parley.test', k)] : [note('f@parley.test', k), note('e@parley.test', k)]));
    await Promise.all(boxes.map(async (box, i) => {
      for (let n = 0; n < 10; n++) await createItem(sql, box.id, inboxes[i]!, { subject: `${i}.${n}` });
    }));
    for (const outcomes of await Promise.all(batches)) assert.deepEqual(outcomes.map((o) => o.ok), [true, true]);
    writing = false;
    await reader;
    await follow();
    const all = (await sql.all<{ seq: number }>('SELECT seq FROM mail_changes ORDER BY seq')).map((r) => Number(r.seq));
    assert.equal(all.length, 48);
    assert.deepEqual([...seen].sort((x, y) => x - y), all, 'every change was seen by the reader that moved past it');
  });

  it('deletes hard, soft, and to Deleted Items', async () => {
    const sql = await fresh();
    const a = await ensureMailbox(sql, 'alice@parley.test');
    const inbox = await getDistinguishedFolder(sql, a.id, 'inbox');
    const deleted = await getDistinguishedFolder(sql, a.id, 'deleteditems');
    const [x, y, z] = [await createItem(sql, a.id, inbox.id, {}), await createItem(sql, a.id, inbox.id, {}), await createItem(sql, a.id, inbox.id, {})];
    await deleteItem(sql, a.id, x!.id, 'HardDelete');
    await deleteItem(sql, a.id, y!.id, 'SoftDelete');
    await deleteItem(sql, a.id, z!.id, 'MoveToDeletedItems');
    assert.equal(await codeOf(() => getItem(sql, a.id, x!.id)), 'ITEM_NOT_FOUND');
    assert.equal(await codeOf(() => getItem(sql, a.id, y!.id)), 'ITEM_NOT_FOUND');
    assert.equal((await getItem(sql, a.id, z!.id)).folderId, deleted.id);
    assert.equal((await findItems(sql, a.id, inbox.id)).total, 0);
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
    const sql = await fresh();
    const connector = new EmbeddedMailboxConnector({ sql, userExists: async (a) => a === 'bob@parley.test' });
    const first = await connector.deliver(item());
    const again = await connector.deliver(item({ subject: 'changed' }));
    assert.deepEqual(again, { itemId: first.itemId, created: false });
    assert.equal(first.created, true);
    const bob = await ensureMailbox(sql, 'bob@parley.test');
    const ch = await getDistinguishedFolder(sql, bob.id, 'conversationhistory');
    const stored = await findItems(sql, bob.id, ch.id);
    assert.equal(stored.total, 1);
    assert.equal(stored.items[0]?.itemClass, 'IPM.Note.Microsoft.Missed');
    assert.equal(stored.items[0]?.sentAt, 1_700_000_000_000);
    assert.equal((await findItems(sql, bob.id, (await getDistinguishedFolder(sql, bob.id, 'drafts')).id)).total, 0);
    // still one item after the user deleted it softly: a retried delivery does not bring it back
    await deleteItem(sql, bob.id, first.itemId, 'SoftDelete');
    assert.equal((await connector.deliver(item())).created, false);
  });

  it('counts Missed Conversations for the message-summary notification', async () => {
    const sql = await fresh();
    const connector = new EmbeddedMailboxConnector({ sql, userExists: async () => true });
    assert.deepEqual(await missedConversationSummary(sql, 'bob@parley.test'), { total: 0, unread: 0 });
    await connector.deliver(item());
    await connector.deliver(item({ internetMessageId: '<spool-2@parley.test>', isRead: true }));
    await connector.deliver(item({ internetMessageId: '<spool-3@parley.test>', itemClass: 'IPM.Note.Microsoft.Conversation' }));
    assert.deepEqual(await missedConversationSummary(sql, 'bob@parley.test'), { total: 2, unread: 1 });
    assert.equal((await listMissedConversations(sql, 'bob@parley.test')).total, 2);
  });

  it('makes one item of deliveries of one id at the same moment, through one or several connectors (nodes)', async () => {
    const sql = await fresh();
    const nodes = [1, 2, 3].map(() => new EmbeddedMailboxConnector({ sql, userExists: async () => true }));
    const results = await Promise.all([...nodes.map((c) => c.deliver(item())), nodes[0]!.deliverMany([item(), item({ internetMessageId: '<spool-2@parley.test>' }), item()])]);
    const singles = results.slice(0, 3) as Array<{ itemId: string; created: boolean }>;
    const batch = results[3] as Array<{ ok: boolean; result?: { itemId: string; created: boolean } }>;
    const ids = new Set([...singles.map((r) => r.itemId), batch[0]?.result?.itemId, batch[2]?.result?.itemId]);
    assert.equal(ids.size, 1, 'every delivery of <spool-1> names the same item');
    assert.equal([...singles, batch[0]?.result, batch[2]?.result].filter((r) => r?.created === true).length, 1, 'one of them made it');
    assert.equal(batch[1]?.ok, true);
    const bob = await ensureMailbox(sql, 'bob@parley.test');
    assert.equal((await findItems(sql, bob.id, await distinguishedFolderId(sql, bob.id, 'conversationhistory'))).total, 2);
  });

  it('refuses unknown users and empty ids', async () => {
    const sql = await fresh();
    const connector = new EmbeddedMailboxConnector({ sql, userExists: async () => false });
    await assert.rejects(connector.deliver(item()), (e: unknown) => e instanceof MailboxError && e.code === 'MAILBOX_NOT_FOUND');
    await assert.rejects(connector.deliver(item({ internetMessageId: ' ' })), (e: unknown) => e instanceof MailboxError && e.code === 'INVALID_REQUEST');
  });
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
