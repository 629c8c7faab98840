// The mailbox side of offline messages across organisations (issue 15): the connector that queues
// an e-mail for a partner's user exactly once per delivery key, the message SmtpOutbound writes for
// it (multipart/alternative, From with display name, Message-ID), the trace of its sending, and the
// rule every connector keeps — an Inbox takes only a plain IPM.Note, Conversation History only the
// IM classes — for the embedded store and for EWS (Parley's own EWS answering in process: no socket).
// On each storage engine.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { simpleParser } from 'mailparser';
import pino from 'pino';
import {
  CONVERSATION_CLASS,
  EmbeddedMailboxConnector,
  EwsMailboxConnector,
  MAILBOX_MIGRATIONS,
  MISSED_CLASS,
  MailboxError,
  NOTE_CLASS,
  PartnerMailConnector,
  SmtpOutbound,
  dueOutbound,
  ensureMailbox,
  findItems,
  getDistinguishedFolder,
  getOutbound,
  grantImpersonation,
  missedConversationSummary,
} from '../../src/mailbox/index.ts';
import type { DeliveryItem } from '../../src/mailbox/index.ts';
import { answerEws } from '../../src/mailbox/ews/service.ts';
import { mailOf } from '../../src/mailbox/smtp/outbound.ts';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import type { Sql, SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { parseXml } from '../../src/xml/index.ts';

const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const SETS = [DIRECTORY_MIGRATIONS, MAILBOX_MIGRATIONS, TRACE_MIGRATIONS];
after(() => closeTestPostgres());
let sql: SqlDatabase;

const email = (over: Partial<DeliveryItem> = {}): DeliveryItem => ({
  mailbox: 'dave@partner.example',
  folder: 'inbox',
  itemClass: NOTE_CLASS,
  internetMessageId: '<sp-test1@parley.test>',
  subject: 'Conversation with Alice Example',
  from: { name: 'Alice Example', address: 'alice@parley.test' },
  to: [{ address: 'dave@partner.example' }],
  bodyHtml: '<html><body><p>hello <b>Dave</b></p></body></html>',
  bodyText: 'hello Dave\n',
  sentAt: new Date(T0),
  isRead: false,
  traceId: 'sp-test1',
  ...over,
});
const routes = { domains: { 'partner.example': { host: '127.0.0.1', port: 2525 } } };
const refused = (code: string) => (e: unknown) => e instanceof MailboxError && e.code === code;

for (const engine of ENGINES) {
  describe(`partner mail on ${engine.name}`, () => {
  beforeEach(async () => {
    sql = await engine.open();
    await migrate(sql, SETS);
  });
  afterEach(() => sql.close());

  describe('PartnerMailConnector', () => {
    it('queues one e-mail per delivery key: a repeated delivery finds the queued one', async () => {
      const connector = new PartnerMailConnector({ sql, routes, now: () => T0 });
      const first = await connector.deliver(email());
      assert.equal(first.created, true);
      assert.deepEqual(await connector.deliver(email()), { itemId: first.itemId, created: false });
      const queued = await dueOutbound(sql, T0);
      assert.equal(queued.length, 1);
      const entry = queued[0];
      assert.equal(entry?.id, first.itemId);
      assert.equal(entry?.sender, 'alice@parley.test');
      assert.deepEqual(entry?.recipients, ['dave@partner.example']);
      assert.equal(entry?.deliveryKey, '<sp-test1@parley.test>');
      assert.equal(entry?.traceId, 'sp-test1');
      assert.deepEqual(entry?.message, {
        from: { name: 'Alice Example', address: 'alice@parley.test' },
        to: [{ address: 'dave@partner.example' }],
        cc: [],
        subject: 'Conversation with Alice Example',
        html: '<html><body><p>hello <b>Dave</b></p></body></html>',
        text: 'hello Dave\n',
        messageId: '<sp-test1@parley.test>',
        date: T0,
      });
      assert.deepEqual((await readTrace(sql, 'sp-test1')).map((s) => s.step), ['mail-queued']);
    });

    it('refuses what is not a plain note, and, with MX routing off, a domain no route reaches (nothing queued)', async () => {
      const connector = new PartnerMailConnector({ sql, routes: { ...routes, mx: false }, now: () => T0 });
      await assert.rejects(connector.deliver(email({ itemClass: MISSED_CLASS })), refused('INVALID_REQUEST'));
      await assert.rejects(connector.deliver(email({ internetMessageId: ' ' })), refused('INVALID_REQUEST'));
      await assert.rejects(connector.deliver(email({ mailbox: 'erin@elsewhere.example' })), (e: unknown) => refused('REMOTE_REFUSED')(e) && /no outbound SMTP route for elsewhere\.example: .*smtpRoutes\.mx is false/.test((e as Error).message));
      assert.equal((await dueOutbound(sql, T0)).length, 0);
      // the smarthost carries every domain
      const viaSmarthost = new PartnerMailConnector({ sql, routes: { smarthost: { host: '127.0.0.1', port: 2525 }, mx: false }, now: () => T0 });
      assert.equal((await viaSmarthost.deliver(email({ mailbox: 'erin@elsewhere.example' }))).created, true);
    });

    it('queues for any domain with MX routing (the default): its mail exchangers are looked up when it is sent', async () => {
      const connector = new PartnerMailConnector({ sql, routes, now: () => T0 });
      assert.equal((await connector.deliver(email({ mailbox: 'erin@elsewhere.example' }))).created, true);
      assert.deepEqual((await dueOutbound(sql, T0)).map((e) => e.recipients), [['erin@elsewhere.example']]);
    });

    it('counts no Missed Conversations (a partner mailbox is not ours)', async () => {
      assert.deepEqual(await new PartnerMailConnector({ sql, routes }).missedSummary('dave@partner.example'), { total: 0, unread: 0 });
    });
  });

  describe('the e-mail SmtpOutbound writes for a queued entry', () => {
    it('is multipart/alternative text/plain then text/html, From the sender with display name, Message-ID from the entry', async () => {
      await new PartnerMailConnector({ sql, routes, now: () => T0 }).deliver(email({ bodyText: 'hello Dave, été\n', bodyHtml: '<p>hello <b>Dave</b>, été</p>' }));
      const [entry] = await dueOutbound(sql, T0);
      assert.ok(entry);
      // nodemailer's stream transport writes the message SMTP would carry, without a socket
      const written = await nodemailer.createTransport({ streamTransport: true, buffer: true }).sendMail(mailOf(entry));
      assert.deepEqual(written.envelope, { from: 'alice@parley.test', to: ['dave@partner.example'] });
      const raw = String(written.message);
      assert.match(raw, /^From: Alice Example <alice@parley\.test>\r?$/m);
      assert.match(raw, /^To: dave@partner\.example\r?$/m);
      assert.match(raw, /^Message-ID: <sp-test1@parley\.test>\r?$/m);
      assert.match(raw, /^Content-Type: multipart\/alternative;/m);
      assert.ok(raw.indexOf('Content-Type: text/plain') < raw.indexOf('Content-Type: text/html'), 'the plain text first, the HTML last (RFC 2046 §5.1.4)');
      const parsed = await simpleParser(raw);
      assert.equal(parsed.subject, 'Conversation with Alice Example');
      assert.equal(parsed.text, 'hello Dave, été\n');
      assert.equal(parsed.html, '<p>hello <b>Dave</b>, été</p>');
      assert.equal(parsed.date?.getTime(), T0);
    });

    it('a send that cannot leave (no route any more) fails the outbox entry, and the sender\'s trace says so', async () => {
      await new PartnerMailConnector({ sql, routes, now: () => T0 }).deliver(email());
      // the routes changed since it was queued: SmtpOutbound decides without opening a connection
      const outbound = new SmtpOutbound({ sql, logger, domain: 'parley.test', routes: { mx: false }, now: () => T0 + 1000 });
      assert.equal(await outbound.runOnce(), 0);
      const [entry] = await sql.all<{ id: string }>('SELECT id FROM mail_outbox');
      assert.equal((await getOutbound(sql, entry?.id ?? ''))?.state, 'failed');
      const steps = await readTrace(sql, 'sp-test1');
      assert.deepEqual(steps.map((s) => s.step), ['mail-queued', 'mail-failed']);
      assert.match(String(steps[1]?.detail.reason), /no outbound SMTP route for partner\.example/);
      assert.equal(steps[1]?.detail.outbox, entry?.id);
    });
  });
  });
}

const note = (over: Partial<DeliveryItem> = {}): DeliveryItem => ({
  mailbox: 'bob@parley.test',
  folder: 'inbox',
  itemClass: NOTE_CLASS,
  internetMessageId: '<sp-note1@parley.test>',
  subject: 'Message from Dave Partner while you were offline',
  from: { name: 'Dave Partner', address: 'dave@partner.example' },
  to: [{ name: 'bob@parley.test', address: 'bob@parley.test' }],
  bodyHtml: '<p>are you there?</p>',
  bodyText: 'are you there?\n',
  sentAt: new Date(T0),
  isRead: false,
  ...over,
});

async function folderItems(sql: Sql, address: string, folder: 'inbox' | 'conversationhistory') {
  const mailbox = await ensureMailbox(sql, address);
  return (await findItems(sql, mailbox.id, (await getDistinguishedFolder(sql, mailbox.id, folder)).id)).items;
}

for (const engine of ENGINES) describe(`a plain note in the Inbox, through each mailbox connector, on ${engine.name}`, () => {
  let sql: SqlDatabase;
  beforeEach(async () => {
    sql = await engine.open();
    await migrate(sql, [MAILBOX_MIGRATIONS]);
  });
  afterEach(() => sql.close());

  it('embedded: one unread IPM.Note per InternetMessageId, nothing in Conversation History, not counted as Missed', async () => {
    const connector = new EmbeddedMailboxConnector({ sql: sql, userExists: async () => true, now: () => T0 });
    const first = await connector.deliver(note());
    assert.deepEqual(await connector.deliver(note()), { itemId: first.itemId, created: false });
    const inbox = await folderItems(sql, 'bob@parley.test', 'inbox');
    assert.equal(inbox.length, 1);
    assert.equal(inbox[0]?.itemClass, NOTE_CLASS);
    assert.equal(inbox[0]?.isRead, false);
    assert.equal(inbox[0]?.internetMessageId, '<sp-note1@parley.test>');
    assert.equal((await folderItems(sql, 'bob@parley.test', 'conversationhistory')).length, 0);
    assert.deepEqual(await missedConversationSummary(sql, 'bob@parley.test'), { total: 0, unread: 0 });
    assert.deepEqual(await connector.missedSummary('bob@parley.test'), { total: 0, unread: 0 });
  });

  it('embedded: refuses an IM class in the Inbox and a plain note in Conversation History, writing nothing', async () => {
    const connector = new EmbeddedMailboxConnector({ sql: sql, userExists: async () => true, now: () => T0 });
    await assert.rejects(connector.deliver(note({ itemClass: MISSED_CLASS })), refused('INVALID_REQUEST'));
    await assert.rejects(connector.deliver(note({ itemClass: CONVERSATION_CLASS })), refused('INVALID_REQUEST'));
    await assert.rejects(connector.deliver(note({ folder: 'conversationhistory' })), refused('INVALID_REQUEST'));
    assert.equal((await folderItems(sql, 'bob@parley.test', 'inbox')).length, 0);
    assert.equal((await folderItems(sql, 'bob@parley.test', 'conversationhistory')).length, 0);
  });

  it('EWS: FindItem in the Inbox first, CreateItem there once; the note is a received plain note', async () => {
    await grantImpersonation(sql, 'gateway@parley.test');
    const operations: string[] = [];
    // Parley's own EWS, answered in process: the request the connector would send to Exchange
    const fetchInProcess = (async (_url: string | URL | Request, init?: RequestInit) => {
      const root = parseXml(String(init?.body));
      const answer = await answerEws({ sql: sql, domain: 'parley.test', userExists: async (a) => a === 'bob@parley.test', now: () => T0 }, 'gateway@parley.test', root);
      operations.push(`${answer.operation}:${/DistinguishedFolderId Id="(\w+)"/.exec(String(init?.body))?.[1] ?? '-'}`);
      return new Response(answer.xml, { status: answer.status, headers: { 'content-type': 'text/xml; charset=utf-8' } });
    }) as typeof fetch;
    const connector = new EwsMailboxConnector({ url: 'https://exchange.invalid/EWS/Exchange.asmx', username: 'gateway@parley.test', password: '-', fetch: fetchInProcess });
    const first = await connector.deliver(note());
    assert.equal(first.created, true);
    assert.deepEqual(await connector.deliver(note()), { itemId: first.itemId, created: false });
    assert.deepEqual(operations, ['FindItem:inbox', 'CreateItem:inbox', 'FindItem:inbox']);
    const inbox = await folderItems(sql, 'bob@parley.test', 'inbox');
    assert.equal(inbox.length, 1);
    assert.equal(inbox[0]?.itemClass, NOTE_CLASS);
    assert.equal(inbox[0]?.subject, 'Message from Dave Partner while you were offline');
    assert.equal(inbox[0]?.isRead, false);
    assert.equal(inbox[0]?.internetMessageId, '<sp-note1@parley.test>');
    assert.equal((await folderItems(sql, 'bob@parley.test', 'conversationhistory')).length, 0);
    assert.deepEqual(await connector.missedSummary('bob@parley.test'), { total: 0, unread: 0 });
    // the same rule before any request: an IM class never goes to an Inbox
    const before = operations.length;
    await assert.rejects(connector.deliver(note({ itemClass: MISSED_CLASS, internetMessageId: '<sp-other@parley.test>' })), refused('INVALID_REQUEST'));
    assert.equal(operations.length, before);
  });
});
