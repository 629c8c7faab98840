// The EWS MailboxConnector against Parley's own EWS endpoint (an in-test node:http server on
// loopback): the same delivery code the offline pipeline uses against an external Exchange. The
// users are in a SQLite directory; the mailboxes on each storage engine.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { BasicSignIn } from '../../src/auth/http-basic.ts';
import { DIRECTORY_MIGRATIONS, addUser, findUser } from '../../src/directory/index.ts';
import { EwsMailboxConnector, MAILBOX_MIGRATIONS, MailboxError, MailboxQuota, createEwsRoute, ensureMailbox, findItems, getDistinguishedFolder, grantImpersonation, missedConversationSummary } from '../../src/mailbox/index.ts';
import type { DeliveryItem } from '../../src/mailbox/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate, openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';

const directory = openMemoryDatabase();
runMigrations(directory, [DIRECTORY_MIGRATIONS]);
const signIn = new BasicSignIn({ sql: sqliteSql(directory), domain: 'parley.test' });
const userExists = async (a: string) => (await findUser(sqliteSql(directory), a)) !== undefined;
before(async () => {
  await addUser(sqliteSql(directory), { address: 'gateway@parley.test', password: 'gw-pw' });
  await addUser(sqliteSql(directory), { address: 'bob@parley.test', password: 'bob-pw' });
});
after(closeTestPostgres);

const item = (over: Partial<DeliveryItem> = {}): DeliveryItem => ({
  mailbox: 'bob@parley.test',
  folder: 'conversationhistory',
  itemClass: 'IPM.Note.Microsoft.Missed',
  internetMessageId: '<spool-42@parley.test>',
  subject: 'Missed conversation with Alice <& friends>',
  from: { address: 'alice@parley.test', name: 'Alice' },
  to: [{ address: 'bob@parley.test' }],
  bodyHtml: '<p>alice: hi &amp; bye</p>',
  bodyText: 'alice: hi & bye',
  sentAt: new Date('2026-01-02T03:04:05Z'),
  isRead: false,
  ...over,
});
const refused = (code: string) => (e: unknown) => e instanceof MailboxError && e.code === code;

for (const engine of ENGINES) describe(`EwsMailboxConnector on ${engine.name}`, () => {
  let sql: SqlDatabase;
  let server: http.Server;
  let url = '';
  before(async () => {
    sql = await engine.open();
    await migrate(sql, [MAILBOX_MIGRATIONS]);
    const route = createEwsRoute({ sql, signIn, userExists, logger: pino({ level: 'silent' }), domain: 'parley.test', product: 'Parley/test' });
    server = http.createServer((req, res) => void route.handle(req, res, new URL(req.url ?? '/', 'http://localhost')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/EWS/Exchange.asmx`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sql.close();
  });

  it('needs the impersonation right', async () => {
    const connector = new EwsMailboxConnector({ url, username: 'gateway', password: 'gw-pw' });
    await assert.rejects(connector.deliver(item()), refused('REMOTE_REFUSED'));
  });

  it('delivers exactly once per InternetMessageId, as a received (not draft) item', async () => {
    await grantImpersonation(sql, 'gateway@parley.test');
    const connector = new EwsMailboxConnector({ url, username: 'gateway@parley.test', password: 'gw-pw' });
    const first = await connector.deliver(item());
    assert.equal(first.created, true);
    assert.deepEqual(await connector.deliver(item()), { itemId: first.itemId, created: false });
    const bob = await ensureMailbox(sql, 'bob@parley.test');
    const stored = await findItems(sql, bob.id, (await getDistinguishedFolder(sql, bob.id, 'conversationhistory')).id);
    assert.equal(stored.total, 1);
    const [it0] = stored.items;
    assert.equal(it0?.id, first.itemId);
    assert.equal(it0?.itemClass, 'IPM.Note.Microsoft.Missed');
    assert.equal(it0?.subject, 'Missed conversation with Alice <& friends>');
    assert.equal(it0?.bodyHtml, '<p>alice: hi &amp; bye</p>');
    assert.equal(it0?.internetMessageId, '<spool-42@parley.test>');
    assert.equal(it0?.sentAt, Date.parse('2026-01-02T03:04:05Z'));
    assert.equal(it0?.from?.address, 'alice@parley.test');
    assert.equal(it0?.isRead, false);
    assert.equal((await findItems(sql, bob.id, (await getDistinguishedFolder(sql, bob.id, 'drafts')).id)).total, 0);
    const gateway = await ensureMailbox(sql, 'gateway@parley.test');
    assert.equal((await findItems(sql, gateway.id, (await getDistinguishedFolder(sql, gateway.id, 'conversationhistory')).id)).total, 0);
  });

  it('counts the Missed Conversations, read and unread, for message-summary', async () => {
    await grantImpersonation(sql, 'gateway@parley.test');
    const connector = new EwsMailboxConnector({ url, username: 'gateway@parley.test', password: 'gw-pw' });
    await connector.deliver(item({ internetMessageId: '<count-1@parley.test>' }));
    await connector.deliver(item({ internetMessageId: '<count-2@parley.test>', isRead: true }));
    await connector.deliver(item({ internetMessageId: '<count-3@parley.test>', itemClass: 'IPM.Note.Microsoft.Conversation' }));
    const expected = await missedConversationSummary(sql, 'bob@parley.test');
    assert.ok(expected.total >= 2 && expected.unread >= 1);
    assert.deepEqual(await connector.missedSummary('bob@parley.test'), expected);
  });

  it("retries a full mailbox (ErrorQuotaExceeded): it changes when its owner makes room, like SMTP's 452 4.2.2", async () => {
    // the same mailboxes behind an EWS endpoint whose quota every mailbox with an item is past
    const tiny = new MailboxQuota({ issueWarningQuota: 1, prohibitSendQuota: 1, prohibitSendReceiveQuota: 1, recoverableItemsQuota: 1 });
    const full = createEwsRoute({ sql, signIn, userExists, logger: pino({ level: 'silent' }), domain: 'parley.test', product: 'Parley/test', quota: tiny });
    const fullServer = http.createServer((req, res) => void full.handle(req, res, new URL(req.url ?? '/', 'http://localhost')));
    await new Promise<void>((resolve) => fullServer.listen(0, '127.0.0.1', resolve));
    try {
      const fullUrl = `http://127.0.0.1:${(fullServer.address() as AddressInfo).port}/EWS/Exchange.asmx`;
      const connector = new EwsMailboxConnector({ url: fullUrl, username: 'gateway', password: 'gw-pw' });
      await connector.deliver(item({ internetMessageId: '<quota-first@parley.test>' })).catch(() => undefined); // bob holds an item now, whatever came before
      await assert.rejects(connector.deliver(item({ internetMessageId: '<quota-second@parley.test>' })), (e: unknown) => e instanceof MailboxError && e.code === 'REMOTE_UNAVAILABLE' && /ErrorQuotaExceeded/.test(e.message));
    } finally {
      await new Promise<void>((resolve) => fullServer.close(() => resolve()));
    }
  });

  it('tells refusals from outages', async () => {
    await assert.rejects(new EwsMailboxConnector({ url, username: 'gateway', password: 'wrong' }).deliver(item()), refused('REMOTE_REFUSED'));
    await assert.rejects(new EwsMailboxConnector({ url, username: 'gateway', password: 'gw-pw' }).deliver(item({ mailbox: 'nobody@parley.test' })), refused('REMOTE_REFUSED'));
    await assert.rejects(new EwsMailboxConnector({ url: 'http://127.0.0.1:1/EWS/Exchange.asmx', username: 'g', password: 'p', timeoutMs: 2000 }).deliver(item()), refused('REMOTE_UNAVAILABLE'));
    await assert.rejects(new EwsMailboxConnector({ url, username: 'gateway', password: 'gw-pw', access: 'delegate' }).deliver(item()), refused('REMOTE_REFUSED'));
  });
});
