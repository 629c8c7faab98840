// Mailbox sizes and quotas (issue 18, finding 3): the size counter each item function keeps, the
// Exchange limits applied to it, and EWS answering ErrorQuotaExceeded — in-process, no sockets.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { formatBytes, parseByteSize, UNLIMITED } from '../../src/bytes.ts';
import {
  EmbeddedMailboxConnector,
  MAILBOX_MIGRATIONS,
  MailboxQuota,
  createFolder,
  createItem,
  deleteFolder,
  deleteItem,
  ensureMailbox,
  findItems,
  getDistinguishedFolder,
  mailboxUsage,
  updateItem,
} from '../../src/mailbox/index.ts';
import type { MailboxQuotaLimits } from '../../src/mailbox/index.ts';
import { answerEws } from '../../src/mailbox/ews/service.ts';
import type { Sql, SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import { childElement, childText, parseXml } from '../../src/xml/index.ts';

const S = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';

after(closeTestPostgres);

/** The sums the counter stands for, computed the slow way. */
async function summed(sql: Sql, mailboxId: number) {
  const row = await sql.get<{ size: number; deleted: number }>('SELECT CAST(coalesce(sum(CASE WHEN soft_deleted = 0 THEN size END), 0) AS BIGINT) AS size, CAST(coalesce(sum(CASE WHEN soft_deleted = 1 THEN size END), 0) AS BIGINT) AS deleted FROM mail_items WHERE mailbox_id = ?', [mailboxId]);
  return { size: Number(row?.size), deletedSize: Number(row?.deleted) };
}

const limits = (over: Partial<MailboxQuotaLimits>): MailboxQuotaLimits => ({ issueWarningQuota: UNLIMITED, prohibitSendQuota: UNLIMITED, prohibitSendReceiveQuota: UNLIMITED, recoverableItemsQuota: UNLIMITED, ...over });

describe('byte sizes', () => {
  it('reads numbers, binary units and unlimited; writes them back', async () => {
    assert.equal(parseByteSize(1000), 1000);
    assert.equal(parseByteSize('10MB'), 10 * 1024 * 1024);
    assert.equal(parseByteSize('2.3 GB'), Math.floor(2.3 * 1024 ** 3));
    assert.equal(parseByteSize('512 kb'), 512 * 1024);
    assert.equal(parseByteSize('Unlimited'), UNLIMITED);
    for (const bad of [-1, 1.5, '10 MiB', 'ten', '', null, {}]) assert.equal(parseByteSize(bad), undefined, String(bad));
    assert.equal(formatBytes(10 * 1024 * 1024), '10 MB');
    assert.equal(formatBytes(10 * 1024 * 1024 + 5000), '10.0 MB');
    assert.equal(formatBytes(61_440), '60 KB');
    assert.equal(formatBytes(900), '900 B');
    assert.equal(formatBytes(UNLIMITED), 'unlimited');
  });
});

for (const engine of ENGINES) {
const open: SqlDatabase[] = [];
const blank = async () => {
  const sql = await engine.open();
  open.push(sql);
  return sql;
};
const fresh = async () => {
  const sql = await blank();
  await migrate(sql, [MAILBOX_MIGRATIONS]);
  return sql;
};
afterEach(async () => {
  for (const sql of open.splice(0)) await sql.close();
});

describe(`mailbox size counter on ${engine.name}`, () => {
  it('follows every change of items and folders, soft-deleted items apart', async () => {
    const sql = await fresh();
    const box = await ensureMailbox(sql, 'alice@parley.test');
    const inbox = (await getDistinguishedFolder(sql, box.id, 'inbox')).id;
    const check = async (what: string) => assert.deepEqual(await mailboxUsage(sql, box.id), await summed(sql, box.id), what);
    const a = await createItem(sql, box.id, inbox, { subject: 'a', bodyText: 'x'.repeat(1000) });
    const b = await createItem(sql, box.id, inbox, { subject: 'b', bodyHtml: '<p>hello</p>', bodyText: 'hello' });
    await check('two items');
    assert.equal((await mailboxUsage(sql, box.id)).size, a.size + b.size);
    await updateItem(sql, box.id, a.id, { subject: 'a much longer subject than before' });
    await check('a subject grew');
    await deleteItem(sql, box.id, b.id, 'MoveToDeletedItems');
    await check('moved to Deleted Items: still counted');
    await deleteItem(sql, box.id, b.id, 'MoveToDeletedItems');
    await check('deleted from Deleted Items: soft-deleted');
    assert.equal((await mailboxUsage(sql, box.id)).deletedSize, b.size);
    await deleteItem(sql, box.id, a.id, 'HardDelete');
    await check('hard-deleted');
    const parent = await createFolder(sql, box.id, inbox, 'Projects');
    const child = await createFolder(sql, box.id, parent.id, 'Old');
    await createItem(sql, box.id, parent.id, { subject: 'p', bodyText: 'y'.repeat(300) });
    const old = await createItem(sql, box.id, child.id, { subject: 'c', bodyText: 'z'.repeat(700) });
    await deleteItem(sql, box.id, old.id, 'SoftDelete');
    await check('items in subfolders');
    await deleteFolder(sql, box.id, parent.id, 'HardDelete');
    await check('a folder tree deleted with its items');
    assert.deepEqual(await mailboxUsage(sql, box.id), { size: 0, deletedSize: b.size });
  });

  it('is computed from the items already stored when the migration runs', async () => {
    const sql = await blank();
    await migrate(sql, [{ capability: 'mailbox', migrations: MAILBOX_MIGRATIONS.migrations.filter((m) => m.id < '007') }]);
    const box = await ensureMailbox(sql, 'bob@parley.test');
    const inbox = (await getDistinguishedFolder(sql, box.id, 'inbox')).id;
    const insert = "INSERT INTO mail_items (id, mailbox_id, folder_id, item_class, subject, to_json, cc_json, received_at, is_read, size, change_key, soft_deleted, created_at, updated_at) VALUES (?, ?, ?, 'IPM.Note', '', '[]', '[]', 0, 0, ?, 'k', ?, 0, 0)";
    await sql.run(insert, ['AAAAAAAAAAAAAAAAAAAAAA', box.id, inbox, 1200, 0]);
    await sql.run(insert, ['BBBBBBBBBBBBBBBBBBBBBB', box.id, inbox, 300, 1]);
    await migrate(sql, [MAILBOX_MIGRATIONS]);
    assert.deepEqual(await mailboxUsage(sql, box.id), { size: 1200, deletedSize: 300 });
  });
});

describe(`MailboxQuota on ${engine.name}`, () => {
  it('has Exchange\'s levels, "at or above" each limit', () => {
    const q = new MailboxQuota(limits({ issueWarningQuota: 100, prohibitSendQuota: 200, prohibitSendReceiveQuota: 300 }));
    assert.deepEqual([99, 100, 200, 299, 300].map((s) => q.status(s)), ['BelowLimit', 'IssueWarning', 'ProhibitSend', 'ProhibitSend', 'MailboxDisabled']);
    assert.equal(q.checkReceive('bob@parley.test', 299), undefined);
    const full = q.checkReceive('bob@parley.test', 300);
    assert.equal(full?.limit, 'ProhibitSendReceiveQuota');
    assert.equal(full?.setting, 'mailboxQuota.prohibitSendReceiveQuota');
    assert.match(full?.message ?? '', /bob@parley\.test's mailbox is full: 300 B, at or above its ProhibitSendReceiveQuota of 300 B/);
    assert.equal(q.checkSend('alice@parley.test', 199), undefined);
    assert.equal(q.checkSend('alice@parley.test', 200)?.limit, 'ProhibitSendQuota');
    // a send limit above the receive limit: the mailbox that cannot receive cannot send either
    const upside = new MailboxQuota(limits({ prohibitSendQuota: 500, prohibitSendReceiveQuota: 300 }));
    assert.equal(upside.checkSend('alice@parley.test', 300)?.limit, 'ProhibitSendReceiveQuota');
    assert.equal(new MailboxQuota(limits({})).checkReceive('x@parley.test', Number.MAX_SAFE_INTEGER), undefined, 'unlimited');
  });

  it('the embedded connector tells the spool, counting what is on its way; it delivers whatever the quota', async () => {
    const sql = await fresh();
    const connector = new EmbeddedMailboxConnector({ sql, userExists: async () => true, quota: new MailboxQuota(limits({ prohibitSendQuota: 2000, prohibitSendReceiveQuota: 3000 })) });
    const item = (id: string) => ({
      mailbox: 'bob@parley.test', folder: 'conversationhistory' as const, itemClass: 'IPM.Note.Microsoft.Missed', internetMessageId: `<${id}@parley.test>`,
      subject: 's', from: { address: 'alice@parley.test' }, to: [{ address: 'bob@parley.test' }], bodyHtml: '', bodyText: 'x'.repeat(1999), sentAt: new Date(0), isRead: false,
    });
    assert.equal(connector.checkQuota('bob@parley.test', 'receive', 2999), undefined, 'no mailbox yet: 0 bytes plus what waits');
    assert.equal(connector.checkQuota('bob@parley.test', 'receive', 3000)?.limit, 'ProhibitSendReceiveQuota');
    await connector.deliver(item('one'));
    await connector.deliver(item('two'));
    assert.equal((await mailboxUsage(sql, (await ensureMailbox(sql, 'bob@parley.test')).id)).size, 4000, 'admitted deliveries are stored even past the quota');
    await connector.loadQuota(['bob@parley.test']);
    assert.equal(connector.checkQuota('bob@parley.test', 'receive', 0)?.limit, 'ProhibitSendReceiveQuota');
    assert.equal(connector.checkQuota('bob@parley.test', 'send', 0)?.limit, 'ProhibitSendQuota');
  });
});

describe(`EWS and the quotas on ${engine.name}`, () => {
  async function setup(over: Partial<MailboxQuotaLimits>) {
    const sql = await fresh();
    const quota = new MailboxQuota(limits(over));
    const opts = { sql, domain: 'parley.test', userExists: async (a: string) => ['alice@parley.test', 'bob@parley.test', 'carol@parley.test'].includes(a), quota };
    const call = async (user: string, op: string) => {
      const xml = `<soap:Envelope xmlns:soap="${S}" xmlns:m="${M}" xmlns:t="${T}"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body>${op}</soap:Body></soap:Envelope>`;
      const answer = await answerEws(opts, user, parseXml(xml));
      const message = childElement(parseXml(answer.xml), S, 'Body')?.children[0]?.children[0]?.children[0];
      assert.ok(message, answer.xml);
      return { code: childText(message, M, 'ResponseCode'), text: childText(message, M, 'MessageText') ?? '', message };
    };
    const fill = async (address: string, bytes: number) => {
      const box = await ensureMailbox(sql, address);
      await createItem(sql, box.id, (await getDistinguishedFolder(sql, box.id, 'inbox')).id, { subject: '', bodyText: 'f'.repeat(bytes) });
    };
    const inboxCount = async (address: string) => {
      const box = await ensureMailbox(sql, address);
      return (await findItems(sql, box.id, (await getDistinguishedFolder(sql, box.id, 'inbox')).id, { max: 0 })).total;
    };
    return { sql, quota, call, fill, inboxCount };
  }
  const send = (disposition: string, to: string[]) =>
    `<m:CreateItem MessageDisposition="${disposition}"><m:Items><t:Message><t:Subject>hello</t:Subject><t:Body BodyType="Text">hi</t:Body><t:ToRecipients>${to.map((a) => `<t:Mailbox><t:EmailAddress>${a}</t:EmailAddress></t:Mailbox>`).join('')}</t:ToRecipients></t:Message></m:Items></m:CreateItem>`;

  it('SendOnly to a local user whose mailbox is full: ErrorQuotaExceeded naming the limit, stored nowhere', async () => {
    const { call, fill, inboxCount, quota } = await setup({ prohibitSendReceiveQuota: 10_000 });
    await fill('bob@parley.test', 10_000);
    const r = await call('alice@parley.test', send('SendOnly', ['carol@parley.test', 'bob@parley.test']));
    assert.equal(r.message.attrs.get('ResponseClass'), 'Error');
    assert.equal(r.code, 'ErrorQuotaExceeded');
    assert.match(r.text, /bob@parley\.test's mailbox is full: .*ProhibitSendReceiveQuota.*mailboxQuota\.prohibitSendReceiveQuota/);
    assert.equal(await inboxCount('carol@parley.test'), 0, 'the send fails whole, before anything is stored');
    assert.equal(quota.refusals.ProhibitSendReceiveQuota, 1);
    assert.equal((await call('alice@parley.test', send('SendOnly', ['carol@parley.test']))).code, 'NoError', 'others still receive');
    assert.equal(await inboxCount('carol@parley.test'), 1);
  });

  it('a sender at ProhibitSendQuota sends nothing; at ProhibitSendReceiveQuota saves nothing either', async () => {
    const { call, fill } = await setup({ prohibitSendQuota: 5_000, prohibitSendReceiveQuota: 8_000 });
    await fill('alice@parley.test', 5_000);
    const sent = await call('alice@parley.test', send('SendAndSaveCopy', ['bob@parley.test']));
    assert.equal(sent.code, 'ErrorQuotaExceeded');
    assert.match(sent.text, /ProhibitSendQuota .*mailboxQuota\.prohibitSendQuota/);
    const draft = `<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>draft</t:Subject></t:Message></m:Items></m:CreateItem>`;
    assert.equal((await call('alice@parley.test', draft)).code, 'NoError', 'below ProhibitSendReceiveQuota a draft is still saved');
    await fill('alice@parley.test', 3_000);
    assert.equal((await call('alice@parley.test', draft)).code, 'ErrorQuotaExceeded');
  });

  it('SoftDelete past RecoverableItemsQuota is refused; HardDelete frees the space', async () => {
    const { sql, call, fill } = await setup({ recoverableItemsQuota: 1_000, prohibitSendReceiveQuota: 3_000 });
    const box = await ensureMailbox(sql, 'alice@parley.test');
    await fill('alice@parley.test', 1_000);
    await fill('alice@parley.test', 1_000);
    const [first, second] = (await findItems(sql, box.id, (await getDistinguishedFolder(sql, box.id, 'inbox')).id)).items;
    const del = async (id: string, type: string) => call('alice@parley.test', `<m:DeleteItem DeleteType="${type}"><m:ItemIds><t:ItemId Id="${id}"/></m:ItemIds></m:DeleteItem>`);
    assert.equal((await del(first!.id, 'SoftDelete')).code, 'NoError');
    const refused = await del(second!.id, 'SoftDelete');
    assert.equal(refused.code, 'ErrorQuotaExceeded');
    assert.match(refused.text, /RecoverableItemsQuota .*HardDelete/);
    assert.equal((await del(second!.id, 'HardDelete')).code, 'NoError');
    assert.deepEqual(await mailboxUsage(sql, box.id), { size: 0, deletedSize: 1_000 });
  });
});
}
