// Items as Internet messages (src/mailbox/mime.ts), and migration 008's folders for existing mailboxes.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ItemRecord } from '../../src/mailbox/items.ts';
import { MAILBOX_MIGRATIONS, ensureMailbox, getDistinguishedFolder, listFolders } from '../../src/mailbox/index.ts';
import { itemToMime, rfc5322Date, unstructured } from '../../src/mailbox/mime.ts';
import { migrate } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';

after(closeTestPostgres);

function item(over: Partial<ItemRecord>): ItemRecord {
  return {
    id: 'AbCdEfGhIjKlMnOpQrStU-', changeKey: 'k', mailboxId: 1, folderId: 'f', itemClass: 'IPM.Note', subject: 'Hello', bodyHtml: null, bodyText: 'hi',
    from: { address: 'alice@parley.test', name: 'Alice' }, to: [{ address: 'bob@parley.test' }], cc: [], sentAt: null, receivedAt: Date.UTC(2026, 0, 2, 3, 4, 5),
    isRead: false, internetMessageId: null, conversationTopic: null, size: 0, createdAt: 0, updatedAt: 0, articleNumber: 1, ...over,
  };
}

const parse = (mime: Buffer) => {
  const text = mime.toString('utf8');
  const at = text.indexOf('\r\n\r\n');
  return { head: text.slice(0, at), body: text.slice(at + 4) };
};
const decodeWords = (value: string) => value.split(/\r\n /).map((w) => Buffer.from(/^=\?UTF-8\?B\?(.*)\?=$/.exec(w)?.[1] ?? '', 'base64').toString('utf8')).join('');

describe('items as MIME messages', () => {
  it('writes the headers, a single text part in base64, and the same bytes each time', () => {
    const { head, body } = parse(itemToMime(item({}), 'parley.test'));
    assert.equal(head, ['From: "Alice" <alice@parley.test>', 'To: <bob@parley.test>', 'Subject: Hello', 'Date: Fri, 02 Jan 2026 03:04:05 +0000', 'Message-ID: <AbCdEfGhIjKlMnOpQrStU-@parley.test>', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64'].join('\r\n'));
    assert.equal(body, 'aGk=\r\n');
    assert.deepEqual(itemToMime(item({}), 'parley.test'), itemToMime(item({}), 'parley.test'));
  });

  it('writes text and HTML as multipart/alternative, keeps a valid Message-ID, and wraps base64 at 76', () => {
    const html = `<p>${'x'.repeat(200)}</p>`;
    const mime = itemToMime(item({ bodyHtml: html, internetMessageId: '<sp-abc@parley.test>' }), 'parley.test').toString('utf8');
    const boundary = /boundary="([^"]+)"/.exec(mime)?.[1] ?? '';
    assert.ok(boundary !== '');
    assert.match(mime, /^Message-ID: <sp-abc@parley\.test>$/m);
    const parts = mime.split(`--${boundary}`);
    assert.equal(parts.length, 4, 'preamble, two parts, the closing delimiter');
    assert.equal(parts[3], '--\r\n');
    const htmlPart = parts[2]!;
    assert.match(htmlPart, /Content-Type: text\/html; charset=utf-8/);
    const lines = htmlPart.split('\r\n\r\n')[1]!.trim().split('\r\n');
    assert.ok(lines.every((l) => l.length <= 76));
    assert.equal(Buffer.from(lines.join(''), 'base64').toString('utf8'), html);
    // a Message-ID that is not one (a line break, no @) is replaced
    assert.match(itemToMime(item({ internetMessageId: '<x\r\nBcc: y>' }), 'parley.test').toString(), /^Message-ID: <AbCdEfGhIjKlMnOpQrStU-@parley\.test>$/m);
  });

  it('encodes header text outside printable ASCII as encoded-words of whole characters, folded, and never a new header', () => {
    const subject = `Grüße ${'€'.repeat(40)}\r\nBcc: evil@example.com`;
    const encoded = unstructured(subject);
    assert.ok(encoded.split('\r\n ').every((w) => w.length <= 75 && /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/.test(w)));
    assert.equal(decodeWords(encoded), subject);
    const { head } = parse(itemToMime(item({ subject, from: { address: 'alice@parley.test', name: 'Ålice' }, to: [{ address: 'bad address@x' }] }), 'parley.test'));
    assert.doesNotMatch(head, /^Bcc:/m);
    assert.match(head, /^From: =\?UTF-8\?B\?w4VsaWNl\?= <alice@parley\.test>$/m);
    assert.match(head, /^To: <invalid@invalid>$/m);
    assert.equal(rfc5322Date(Date.UTC(2024, 11, 31, 23, 59, 59)), 'Tue, 31 Dec 2024 23:59:59 +0000');
  });
});

for (const engine of ENGINES) describe(`migration 008 on ${engine.name}: the distinguished folders EWS clients look up`, () => {
  it('adds Junk Email, Outbox, Calendar and Contacts to mailboxes made before it, beside a user folder of such a name', async () => {
    const sql = await engine.open();
    try {
      await migrate(sql, [{ ...MAILBOX_MIGRATIONS, migrations: MAILBOX_MIGRATIONS.migrations.filter((m) => m.id < '008') }]);
      const a = await ensureMailbox(sql, 'alice@parley.test');
      const b = await ensureMailbox(sql, 'bob@parley.test');
      // as a mailbox made before 008 looked: without the four; bob has a folder of his own called Outbox
      await sql.run("DELETE FROM mail_folders WHERE distinguished IN ('junkemail', 'outbox', 'calendar', 'contacts')");
      await sql.run("INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at) VALUES ('BBBBBBBBBBBBBBBBBBBBBB', ?, ?, NULL, 'outbox', 'IPF.Note', 'k', 0)", [b.id, (await getDistinguishedFolder(sql, b.id, 'msgfolderroot')).id]);
      await migrate(sql, [MAILBOX_MIGRATIONS]);
      const calendar = await getDistinguishedFolder(sql, a.id, 'calendar');
      assert.match(calendar.id, /^[0-9a-f]{22}$/);
      assert.equal(calendar.folderClass, 'IPF.Appointment');
      assert.equal((await getDistinguishedFolder(sql, a.id, 'contacts')).folderClass, 'IPF.Contact');
      const names = async (id: number) => (await listFolders(sql, id, (await getDistinguishedFolder(sql, id, 'msgfolderroot')).id, false)).map((f) => `${f.displayName}${f.distinguished ? '' : ' (own)'}`);
      assert.deepEqual(await names(a.id), ['Calendar', 'Contacts', 'Conversation History', 'Deleted Items', 'Drafts', 'Inbox', 'Junk Email', 'Outbox', 'Sent Items']);
      assert.deepEqual(await names(b.id), ['Calendar', 'Contacts', 'Conversation History', 'Deleted Items', 'Drafts', 'Inbox', 'Junk Email', 'outbox (own)', 'Sent Items']);
    } finally {
      await sql.close();
    }
  });
});
