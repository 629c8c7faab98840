// Offline messages across organisations (issue 15) through the offline pipeline in process, on an
// in-memory database with a hand-driven clock: a local user's messages to a partner's user who is
// offline become ONE e-mail in the SMTP outbox (and the sender's Conversation History copy); a
// partner's messages to an offline local user become ONE plain note in the recipient's Inbox. Each
// kind is gated by the local party's settings, counted by the quotas, delivered exactly once (also
// when the process stops between making the item and marking the entry delivered), and shown by
// `parley spooler` and `parley trace`.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import type { DeliveryItem, DeliveryResult, MailboxConnector } from '../../src/mailbox/index.ts';
import { CONVERSATION_CLASS, EmbeddedMailboxConnector, MAILBOX_MIGRATIONS, MailboxError, NOTE_CLASS, PartnerMailConnector, dueOutbound, ensureMailbox, findItems, getDistinguishedFolder, missedConversationSummary } from '../../src/mailbox/index.ts';
import { OFFLINE_MIGRATIONS, OfflineService, SpoolWorker, createMailboxRouting, getEntry, spoolMessages } from '../../src/offline/index.ts';
import type { OfflineMessage, OfflineServiceOptions, SpoolEntry } from '../../src/offline/index.ts';
import { runSpoolerCommand } from '../../src/offline/cli.ts';
import { runTraceCommand } from '../../src/observability/trace-cli.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import { CLIENT_POLICY, GLOBAL, IM_CONFIGURATION, SETTINGS_MIGRATIONS, createInstance, grantClientPolicy, updateInstance } from '../../src/settings/index.ts';
import type { Database, SqlDatabase } from '../../src/storage/index.ts';
import { migrate, openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';
import type { CliStorage } from '../harness/cli-storage.ts';
import { CLI_ENGINES, withStore } from '../harness/cli-storage.ts';
import { closeTestPostgres } from '../harness/engines.ts';

const change = { actor: 'test', cmdlet: 'test', now: () => 1 };
const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 11, 7, 10, 0, 0);
const PICKUP = 120_000;
const DAVE = 'dave@partner.example';
const ROUTES = { domains: { 'partner.example': { host: '127.0.0.1', port: 2525 } } };
after(closeTestPostgres);

let db: Database;
let sql: SqlDatabase;
let clock: number;
let embedded: EmbeddedMailboxConnector;
let missedNotified: SpoolEntry[];
let service: OfflineService;

const displayName = async (a: string) => (db.prepare('SELECT display_name AS n FROM users WHERE address = ?').get(a) as { n: string | null } | undefined)?.n ?? null;

function options(over: Partial<OfflineServiceOptions> = {}): OfflineServiceOptions {
  return {
    sql,
    logger,
    domain: 'parley.test',
    routing: createMailboxRouting({ servers: {}, users: {} }, embedded),
    smtpRoutes: ROUTES,
    displayName,
    retry: { baseMs: 1000, maxMs: 8000 },
    deliveryBatch: 16,
    commitWindowMs: 0,
    commitMaxBatch: 100,
    timeZone: 'UTC',
    now: () => clock,
    onDelivered: (e) => missedNotified.push(e),
    ...over,
  };
}

beforeEach(async () => {
  db = openMemoryDatabase();
  sql = sqliteSql(db);
  runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS, OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
  for (const [user, name] of [['alice', 'Alice Example'], ['bob', 'Bob Example'], ['carol', 'Carol']] as const) {
    db.prepare("INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at) VALUES (?, ?, '-', 'parley.test', '-', '-', 0, 0)").run(`${user}@parley.test`, name);
  }
  clock = T0;
  missedNotified = [];
  embedded = new EmbeddedMailboxConnector({ sql: sqliteSql(db), userExists: async (a) => a.endsWith('@parley.test'), now: () => clock });
  service = new OfflineService(options());
});

const toPartner = (text: string, over: Partial<OfflineMessage> = {}): OfflineMessage => ({
  sender: 'alice@parley.test',
  recipient: DAVE,
  callId: `c-${text}`,
  contentType: 'text/plain;charset=utf-8',
  body: new TextEncoder().encode(text),
  why: 'the partner answered 480 Temporarily Unavailable',
  delivery: 'email',
  ...over,
});

const fromPartner = (text: string, over: Partial<OfflineMessage> = {}): OfflineMessage => ({
  sender: DAVE,
  recipient: 'bob@parley.test',
  callId: `p-${text}`,
  contentType: 'text/plain;charset=utf-8',
  body: new TextEncoder().encode(text),
  why: 'not signed in',
  delivery: 'inbox-note',
  ...over,
});

async function folder(address: string, name: 'inbox' | 'conversationhistory') {
  const mailbox = await ensureMailbox(sqliteSql(db), address);
  return (await findItems(sqliteSql(db), mailbox.id, (await getDistinguishedFolder(sqliteSql(db), mailbox.id, name)).id, {})).items;
}

const entryIdOf = (d: Awaited<ReturnType<OfflineService['accept']>>): string => (d.kind === 'spooled' ? d.entryId : assert.fail(`not spooled: ${d.kind === 'refused' ? d.warning : ''}`));

/** A connector that makes its item, then never answers: the process "stops" right after the item exists. */
class StopsAfterDelivering implements MailboxConnector {
  readonly inner: MailboxConnector;
  readonly made: Promise<void>;
  #made: () => void = () => undefined;
  constructor(inner: MailboxConnector) {
    this.inner = inner;
    this.made = new Promise((resolve) => {
      this.#made = resolve;
    });
  }
  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    await this.inner.deliver(item);
    this.#made();
    return new Promise<DeliveryResult>(() => undefined);
  }
  missedSummary(mailbox: string) {
    return this.inner.missedSummary(mailbox);
  }
}

/** A connector failing with `failWith` while it is set. */
class Flaky implements MailboxConnector {
  readonly inner: MailboxConnector;
  failWith: Error | undefined;
  calls = 0;
  constructor(inner: MailboxConnector) {
    this.inner = inner;
  }
  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    this.calls++;
    if (this.failWith !== undefined) throw this.failWith;
    return this.inner.deliver(item);
  }
  missedSummary(mailbox: string) {
    return this.inner.missedSummary(mailbox);
  }
}

describe("to a partner's user who is offline: one e-mail", () => {
  it('messages join one email entry; after the pickup delay ONE e-mail is queued (From the sender, Subject, text and HTML, Message-ID from the entry) and the sender gets the usual copy', async () => {
    const ids = [];
    for (const text of ['first', 'second <b>bold?</b>', 'third']) {
      ids.push(entryIdOf(await service.accept(toPartner(text))));
      clock += 1000;
    }
    assert.equal(new Set(ids).size, 1, 'one entry');
    const entryId = ids[0] ?? '';
    assert.equal((await getEntry(sql, entryId)).kind, 'email');
    assert.equal(await service.worker.runOnce(), 0, 'nothing before the pickup delay');
    clock = T0 + PICKUP;
    assert.equal(await service.worker.runOnce(), 1);

    const queued = await dueOutbound(sqliteSql(db), clock);
    assert.equal(queued.length, 1, 'one e-mail');
    const mail = queued[0];
    assert.equal(mail?.sender, 'alice@parley.test');
    assert.deepEqual(mail?.recipients, [DAVE]);
    assert.deepEqual(mail?.message.from, { name: 'Alice Example', address: 'alice@parley.test' });
    assert.deepEqual(mail?.message.to, [{ address: DAVE }]);
    assert.equal(mail?.message.subject, 'Conversation with Alice Example');
    assert.equal(mail?.message.messageId, `<${entryId}@parley.test>`);
    assert.match(mail?.message.text ?? '', /Alice Example: first\n[\s\S]*Alice Example: second <b>bold\?<\/b>\n[\s\S]*Alice Example: third\n/);
    assert.match(mail?.message.text ?? '', /Sent by e-mail to dave@partner\.example, who was offline\./);
    assert.match(mail?.message.html ?? '', /second &lt;b&gt;bold\?&lt;\/b&gt;/);
    assert.equal(mail?.message.date, T0);

    const copy = await folder('alice@parley.test', 'conversationhistory');
    assert.equal(copy.length, 1);
    assert.equal(copy[0]?.itemClass, CONVERSATION_CLASS);
    assert.equal(copy[0]?.subject, 'Conversation with dave@partner.example');
    assert.equal(copy[0]?.isRead, true);

    const entry = await getEntry(sql, entryId);
    assert.equal(entry.state, 'delivered');
    assert.equal(entry.recipientItemId, mail?.id, 'the entry names its outbox entry');
    assert.equal(missedNotified.length, 0, 'no Missed Conversation changed');
    assert.deepEqual(service.quota.waitingFrom('alice@parley.test'), { messages: 0, bytes: 0 }, 'the quota is given back');

    const steps = await readTrace(sql, entryId);
    assert.deepEqual(steps.map((s) => s.step), ['received', 'gated', 'spooled', 'received', 'gated', 'spooled', 'received', 'gated', 'spooled', 'picked-up', 'mail-queued', 'delivered', 'delivered']);
    assert.equal(steps[0]?.detail.kind, 'email');
    assert.equal(steps[2]?.detail.kind, 'email');
    assert.deepEqual(steps[11]?.detail, { to: DAVE, kind: 'email', via: 'smtp outbox', outbox: mail?.id, created: true });
  });

  it("is gated by the SENDER's EnableOfflineIm and EnableIMAutoArchiving (the partner has no settings here)", async () => {
    await createInstance(sqliteSql(db), CLIENT_POLICY, { scope: 'tag', name: 'NoArchive' }, { EnableIMAutoArchiving: false }, change);
    await grantClientPolicy(sqliteSql(db), 'carol@parley.test', 'NoArchive', change);
    const carol = await service.accept(toPartner('hi', { sender: 'carol@parley.test' }));
    assert.equal(carol.kind, 'refused');
    assert.match(carol.kind === 'refused' ? carol.warning : '', /EnableIMAutoArchiving is False in CsClientPolicy Tag:NoArchive/);
    assert.equal((await service.accept(toPartner('hi'))).kind, 'spooled');
    await updateInstance(sqliteSql(db), IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change);
    const off = await service.accept(toPartner('hi again'));
    assert.match(off.kind === 'refused' ? off.warning : '', /dave@partner\.example is offline and offline IM is off: EnableOfflineIm is False in CsImConfiguration Global/);
    await new Promise((r) => setImmediate(r));
    const refusals = (await readTrace(sql, 'c-hi again')).filter((s) => s.step === 'gated');
    assert.equal(refusals[0]?.detail.kind, 'email');
    assert.equal(refusals[0]?.detail.settingsOf, 'alice@parley.test');
  });

  it('with MX routing off, is refused at once when no SMTP route reaches the domain (a domain route or a smarthost)', async () => {
    const noMx = new OfflineService(options({ smtpRoutes: { ...ROUTES, mx: false } }));
    const refused = await noMx.accept(toPartner('hi', { recipient: 'erin@org-c.example' }));
    assert.equal(refused.kind, 'refused');
    assert.match(refused.kind === 'refused' ? refused.warning : '', /no outbound SMTP route for org-c\.example: .*smtpRoutes\.mx is false/);
    const smarthost = new OfflineService(options({ smtpRoutes: { smarthost: { host: '127.0.0.1', port: 2525 }, mx: false } }));
    assert.equal((await smarthost.accept(toPartner('hi', { recipient: 'erin@org-c.example' }))).kind, 'spooled');
    // MX routing (the default) reaches every domain: its mail exchangers are looked up when the e-mail is sent
    assert.equal((await service.accept(toPartner('hi', { recipient: 'erin@org-c.example' }))).kind, 'spooled');
  });

  it('a stop between queueing the e-mail and marking the entry delivered: the next start delivers again, and still ONE e-mail is queued', async () => {
    const entryId = entryIdOf(await service.accept(toPartner('once')));
    clock += PICKUP;
    const stopping = new StopsAfterDelivering(new PartnerMailConnector({ sql: sqliteSql(db), routes: ROUTES, now: () => clock }));
    const first = new SpoolWorker(options({ partnerMail: stopping }));
    void first.runOnce();
    await stopping.made;
    // the "crash": the e-mail is in the outbox, the entry still delivering
    assert.equal((await dueOutbound(sqliteSql(db), clock)).length, 1);
    assert.equal((await getEntry(sql, entryId)).state, 'delivering');

    const restarted = new SpoolWorker(options());
    await restarted.start();
    await restarted.close();
    assert.equal((await getEntry(sql, entryId)).state, 'waiting');
    assert.equal(await restarted.runOnce(), 1);
    const entry = await getEntry(sql, entryId);
    assert.equal(entry.state, 'delivered');
    const queued = await dueOutbound(sqliteSql(db), clock);
    assert.equal(queued.length, 1, 'exactly one e-mail');
    assert.equal(entry.recipientItemId, queued[0]?.id);
    assert.equal((await folder('alice@parley.test', 'conversationhistory')).length, 1, 'one copy');
    const steps = await readTrace(sql, entryId);
    assert.ok(steps.some((s) => s.step === 'recovered'));
    assert.deepEqual(steps.filter((s) => s.step === 'mail-queued').length, 1);
    assert.equal(steps.find((s) => s.step === 'delivered' && s.detail.kind === 'email')?.detail.created, false, 'the second delivery found the queued e-mail');
  });

  it('a failure is retried; a part already made is not made again', async () => {
    const flaky = new Flaky(new PartnerMailConnector({ sql: sqliteSql(db), routes: ROUTES, now: () => clock }));
    flaky.failWith = new MailboxError('REMOTE_UNAVAILABLE', 'the database is busy');
    const retrying = new OfflineService(options({ partnerMail: flaky }));
    const entryId = entryIdOf(await retrying.accept(toPartner('hi')));
    clock += PICKUP;
    await retrying.worker.runOnce();
    let entry = await getEntry(sql, entryId);
    assert.equal(entry.state, 'waiting');
    assert.match(entry.lastError ?? '', /recipient mailbox \(smtp\): the database is busy/);
    assert.notEqual(entry.senderItemId, null, "the sender's copy was made");
    flaky.failWith = undefined;
    clock = entry.nextAttemptAt;
    await retrying.worker.runOnce();
    entry = await getEntry(sql, entryId);
    assert.equal(entry.state, 'delivered');
    assert.equal((await dueOutbound(sqliteSql(db), clock)).length, 1);
    assert.equal((await folder('alice@parley.test', 'conversationhistory')).length, 1);
    assert.ok((await readTrace(sql, entryId)).some((s) => s.step === 'retry-scheduled'));
  });

  it('fails visibly (kept, with its reason) when the route is gone by delivery time', async () => {
    const entryId = entryIdOf(await service.accept(toPartner('hi')));
    clock += PICKUP;
    const noRoute = new SpoolWorker(options({ smtpRoutes: { mx: false } }));
    await noRoute.runOnce();
    const entry = await getEntry(sql, entryId);
    assert.equal(entry.state, 'failed');
    assert.match(entry.lastError ?? '', /no outbound SMTP route for partner\.example/);
    assert.equal((await dueOutbound(sqliteSql(db), clock)).length, 0);
  });
});

describe('from a partner to an offline local user: one note in the Inbox', () => {
  it('messages join one note entry; after the pickup delay ONE unread IPM.Note in the Inbox, never Missed, nothing in Conversation History', async () => {
    const ids = [];
    for (const text of ['are you there?', 'call me']) {
      ids.push(entryIdOf(await service.accept(fromPartner(text))));
      clock += 1000;
    }
    assert.equal(new Set(ids).size, 1);
    const entryId = ids[0] ?? '';
    assert.equal((await getEntry(sql, entryId)).kind, 'note');
    clock = T0 + PICKUP;
    assert.equal(await service.worker.runOnce(), 1);

    const inbox = await folder('bob@parley.test', 'inbox');
    assert.equal(inbox.length, 1);
    const note = inbox[0];
    assert.equal(note?.itemClass, NOTE_CLASS);
    assert.equal(note?.subject, 'Message from dave@partner.example while you were offline');
    assert.equal(note?.isRead, false);
    assert.equal(note?.internetMessageId, `<${entryId}@parley.test>`);
    assert.deepEqual(note?.from, { name: DAVE, address: DAVE });
    assert.match(note?.bodyText ?? '', /dave@partner\.example: are you there\?\n[\s\S]*dave@partner\.example: call me\n/);
    assert.match(note?.bodyHtml ?? '', /call me/);
    assert.equal((await folder('bob@parley.test', 'conversationhistory')).length, 0, 'nothing in Conversation History');
    assert.deepEqual(await missedConversationSummary(sqliteSql(db), 'bob@parley.test'), { total: 0, unread: 0 }, 'not counted as Missed');
    assert.equal(missedNotified.length, 0);
    const entry = await getEntry(sql, entryId);
    assert.equal(entry.state, 'delivered');
    assert.equal(entry.senderItemId, null, 'the partner has no mailbox here');
    assert.deepEqual(service.quota.waitingFor('bob@parley.test'), { messages: 0, bytes: 0 });
    assert.equal((await dueOutbound(sqliteSql(db), clock)).length, 0, 'no e-mail');
    const steps = await readTrace(sql, entryId);
    assert.deepEqual(steps.map((s) => s.step), ['received', 'gated', 'spooled', 'received', 'gated', 'spooled', 'picked-up', 'delivered']);
    assert.equal(steps[0]?.detail.kind, 'note');
    assert.equal(steps[1]?.detail.settingsOf, 'bob@parley.test');
    assert.equal(steps.at(-1)?.detail.folder, 'inbox');
  });

  it("is gated by the local RECIPIENT's settings, in words that name no policy instance to the partner", async () => {
    await createInstance(sqliteSql(db), CLIENT_POLICY, { scope: 'tag', name: 'NoArchive' }, { EnableIMAutoArchiving: false }, change);
    await grantClientPolicy(sqliteSql(db), 'bob@parley.test', 'NoArchive', change);
    const toBob = await service.accept(fromPartner('hi'));
    assert.equal(toBob.kind, 'refused');
    const warning = toBob.kind === 'refused' ? toBob.warning : '';
    assert.equal(warning, 'bob@parley.test is offline and does not take offline messages (EnableIMAutoArchiving is False for them)');
    assert.equal((await service.accept(fromPartner('hi', { recipient: 'carol@parley.test' }))).kind, 'spooled', 'another recipient is not affected');
    await updateInstance(sqliteSql(db), IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change);
    const off = await service.accept(fromPartner('hi', { recipient: 'carol@parley.test' }));
    assert.equal(off.kind === 'refused' ? off.warning : '', 'carol@parley.test is offline and does not take offline messages (EnableOfflineIm is False for them)');
  });

  it('a stop after the note was made: the next start finds it (InternetMessageId) and makes no second one', async () => {
    const entryId = entryIdOf(await service.accept(fromPartner('once')));
    clock += PICKUP;
    const stopping = new StopsAfterDelivering(embedded);
    const first = new SpoolWorker(options({ routing: createMailboxRouting({}, stopping) }));
    void first.runOnce();
    await stopping.made;
    assert.equal((await folder('bob@parley.test', 'inbox')).length, 1);
    assert.equal((await getEntry(sql, entryId)).state, 'delivering');

    const restarted = new SpoolWorker(options());
    await restarted.start();
    await restarted.close();
    assert.equal(await restarted.runOnce(), 1);
    assert.equal((await getEntry(sql, entryId)).state, 'delivered');
    assert.equal((await folder('bob@parley.test', 'inbox')).length, 1, 'exactly one note');
    assert.equal((await readTrace(sql, entryId)).find((s) => s.step === 'delivered')?.detail.created, false);
  });
});

describe('quotas: email and note entries count as offline ones', () => {
  it("a sender's and a recipient's limits apply, and what waits is counted again after a restart", async () => {
    const limited = new OfflineService(options({ quota: { sender: { maxBytes: 1_000_000, maxMessages: 2, perMinute: 60 }, recipient: { maxBytes: 1_000_000, maxMessages: 3 } } }));
    assert.equal((await limited.accept(toPartner('one'))).kind, 'spooled');
    assert.equal((await limited.accept(toPartner('two'))).kind, 'spooled');
    const third = await limited.accept(toPartner('three'));
    assert.equal(third.kind === 'refused' ? third.quota : '', 'sender-messages');
    // a partner's user is a sender like any other; the local recipient's limit bounds many of them
    assert.equal((await limited.accept(fromPartner('a'))).kind, 'spooled');
    assert.equal((await limited.accept(fromPartner('b', { sender: 'erin@partner.example' }))).kind, 'spooled');
    assert.equal((await limited.accept(fromPartner('c', { sender: 'frank@partner.example' }))).kind, 'spooled');
    const fourth = await limited.accept(fromPartner('d', { sender: 'gina@partner.example' }));
    assert.equal(fourth.kind === 'refused' ? fourth.quota : '', 'recipient-messages');

    const restarted = new OfflineService(options());
    await restarted.start();
    await restarted.close();
    assert.equal(restarted.quota.waitingFrom('alice@parley.test').messages, 2);
    assert.equal(restarted.quota.waitingFor(DAVE).messages, 2);
    assert.equal(restarted.quota.waitingFor('bob@parley.test').messages, 3);
  });
});

for (const engine of CLI_ENGINES) describe(`administration shows the kinds, on ${engine.name}`, () => {
  let store: CliStorage;
  beforeEach(async () => {
    store = await engine.fresh();
  });
  afterEach(() => store.drop());

  it('parley spooler list and show name kind email and note; parley trace shows the steps with kind', async () => {
    const request = { callId: 'c-1', contentType: 'text/plain', body: new TextEncoder().encode('hello'), receivedAt: T0, pickupDelayMs: PICKUP, maxAgeMs: 86_400_000, why: 'offline', gate: { EnableOfflineIm: 'Global', EnableIMAutoArchiving: 'Global' } };
    const [email, note] = await withStore(store, async (file) => {
      await migrate(file, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS, OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
      return file.transaction((tx) =>
        spoolMessages(tx, [
          { ...request, sender: 'alice@parley.test', recipient: DAVE, kind: 'email' },
          { ...request, callId: 'c-2', sender: DAVE, recipient: 'bob@parley.test', kind: 'note' },
        ]),
      );
    });
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(`ERR ${l}`) };
    const defaults = { dataDir: store.dataDir, domain: 'parley.test' };
    assert.equal(await runSpoolerCommand(['list', ...store.args], io, defaults), 0);
    const row = (id: string) => out.find((l) => l.startsWith(id)) ?? '';
    assert.match(row(email?.entryId ?? '-'), /^sp-\w+\s+email\s+waiting\s+alice@parley\.test\s+dave@partner\.example/);
    assert.match(row(note?.entryId ?? '-'), /^sp-\w+\s+note\s+waiting\s+dave@partner\.example\s+bob@parley\.test/);
    out.length = 0;
    assert.equal(await runSpoolerCommand(['show', email?.entryId ?? '', ...store.args], io, defaults), 0);
    assert.ok(out.some((l) => /^kind:\s+email$/.test(l)), out.join('\n'));
    out.length = 0;
    assert.equal(await runTraceCommand([note?.entryId ?? '', ...store.args], io, defaults), 0);
    assert.match(out[0] ?? '', /received\s+call-id=c-2 from=dave@partner\.example to=bob@parley\.test why=offline kind=note/);
    assert.match(out[2] ?? '', /spooled\s+.*kind=note/);
  });
});

describe('migration offline/005 (the kinds of partner organisations)', () => {
  it('keeps every entry and message of a spool made before it, with the messages still cascading from their entry', async () => {
    const old = openMemoryDatabase();
    runMigrations(old, [{ ...OFFLINE_MIGRATIONS, migrations: OFFLINE_MIGRATIONS.migrations.filter((m) => m.id < '005') }]);
    old.exec(`INSERT INTO spool_entries (id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, attempts, message_count, bytes, last_error, conversation_id, notes)
      VALUES ('sp-old1', 'unread', 'alice@parley.test', 'bob@parley.test', 'failed', 1, 2, 3, 4, 5, 1, 2, 'why', 'cv-1', '["a note"]'),
             ('sp-old2', 'history', 'bob@parley.test', 'alice@parley.test', 'delivered', 1, 1, 1, 9, 1, 1, 2, NULL, 'cv-2', '[]')`);
    old.exec("INSERT INTO spool_messages (entry_id, seq, call_id, received_at, content_type, body, sender) VALUES ('sp-old1', 1, 'c1', 1, 'text/plain', x'6869', NULL), ('sp-old2', 1, 'c2', 1, 'text/plain', x'6869', 'alice@parley.test')");
    runMigrations(old, [OFFLINE_MIGRATIONS]);
    const one = await getEntry(sqliteSql(old), 'sp-old1');
    assert.deepEqual([one.kind, one.state, one.attempts, one.lastError, one.conversationId, one.notes, one.bytes], ['unread', 'failed', 5, 'why', 'cv-1', ['a note'], 2]);
    assert.equal((await getEntry(sqliteSql(old), 'sp-old2')).kind, 'history');
    assert.equal((old.prepare('SELECT count(*) AS n FROM spool_messages').get() as { n: number }).n, 2);
    old.exec("INSERT INTO spool_entries (id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at) VALUES ('sp-new', 'email', 'a', 'b', 'waiting', 1, 1, 1, 1)");
    assert.throws(() => old.exec("INSERT INTO spool_entries (id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at) VALUES ('sp-bad', 'fax', 'a', 'b', 'waiting', 1, 1, 1, 1)"), /CHECK constraint/);
    old.exec("DELETE FROM spool_entries WHERE id = 'sp-old1'");
    assert.equal((old.prepare('SELECT count(*) AS n FROM spool_messages').get() as { n: number }).n, 1, 'ON DELETE CASCADE still holds');
    assert.throws(() => old.exec("INSERT INTO spool_messages (entry_id, seq, call_id, received_at, content_type, body) VALUES ('sp-none', 1, 'c', 1, 't', x'00')"), /FOREIGN KEY/);
    const indexes = (old.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('spool_entries', 'spool_messages') AND sql IS NOT NULL ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
    // (007 drops spool_messages_call_id)
    assert.deepEqual(indexes, ['spool_entries_delivered', 'spool_entries_due', 'spool_entries_open', 'spool_entries_recipient']);
  });
});

describe('without the SMTP routes (smtpRoutes not given to the pipeline)', () => {
  it('spools and queues the e-mail; SmtpOutbound decides by its own routes', async () => {
    const unrouted = new OfflineService(options({ smtpRoutes: undefined }));
    const entryId = entryIdOf(await unrouted.accept(toPartner('hi', { recipient: 'erin@org-c.example' })));
    clock += PICKUP;
    await unrouted.worker.runOnce();
    assert.equal((await getEntry(sql, entryId)).state, 'delivered');
    assert.deepEqual((await dueOutbound(sqliteSql(db), clock)).map((m) => m.recipients), [['erin@org-c.example']]);
  });
});
