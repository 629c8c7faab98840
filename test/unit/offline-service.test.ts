// The offline pipeline in process: gate, spool, pickup, delivery into the real embedded mailbox,
// retries and failure, on an in-memory database with a hand-driven clock. A failing connector
// wraps the embedded one to play an unreachable or refusing mailbox server.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import type { DeliveryItem, DeliveryResult, MailboxConnector } from '../../src/mailbox/index.ts';
import { CONVERSATION_CLASS, EmbeddedMailboxConnector, MAILBOX_MIGRATIONS, MISSED_CLASS, MailboxError, ensureMailbox, findItems, getDistinguishedFolder, missedConversationSummary } from '../../src/mailbox/index.ts';
import { OFFLINE_MIGRATIONS, OfflineService, createMailboxRouting, getEntry, listEntries, offlineGate, spoolHistoryEntry, spoolMessages } from '../../src/offline/index.ts';
import type { OfflineMessage, SpoolEntry } from '../../src/offline/index.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import { CLIENT_POLICY, GLOBAL, IM_CONFIGURATION, SETTINGS_MIGRATIONS, createInstance, effectiveSettings, grantClientPolicy, updateInstance } from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { addUserRow } from './presence-database.ts';

const change = { actor: 'test', cmdlet: 'test', now: () => 1 };
const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

after(() => closeTestPostgres());

for (const engine of ENGINES) describe(`on ${engine.name}`, () => {
let sql: SqlDatabase;
let clock: number;
let delivered: SpoolEntry[];

/** The embedded connector, failing on demand. */
class FlakyConnector implements MailboxConnector {
  failWith: MailboxError | undefined;
  calls = 0;
  readonly inner: EmbeddedMailboxConnector;
  constructor(inner: EmbeddedMailboxConnector) {
    this.inner = inner;
  }
  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    this.calls++;
    if (this.failWith) throw this.failWith;
    return this.inner.deliver(item);
  }
  missedSummary(mailbox: string) {
    return this.inner.missedSummary(mailbox);
  }
}

let flaky: FlakyConnector;
let service: OfflineService;

beforeEach(async () => {
  sql = await engine.open();
  await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS, OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
  // scrypt is slow on purpose (addUser): these users need no password, so they are written as rows
  for (const [user, name] of [['alice', 'Alice Example'], ['bob', 'Bob Example'], ['carol', 'Carol']] as const) await addUserRow(sql, { address: `${user}@parley.test`, displayName: name });
  clock = T0;
  delivered = [];
  const embedded = new EmbeddedMailboxConnector({ sql, userExists: async () => true, now: () => clock });
  flaky = new FlakyConnector(embedded);
  service = new OfflineService({
    sql,
    logger,
    domain: 'parley.test',
    routing: createMailboxRouting({ servers: {}, users: {} }, embedded),
    displayName: async (a) => (await sql.get<{ n: string | null }>('SELECT display_name AS n FROM users WHERE address = ?', [a]))?.n ?? null,
    retry: { baseMs: 1000, maxMs: 8000 },
    deliveryBatch: 16,
    commitWindowMs: 0,
    commitMaxBatch: 100,
    timeZone: 'UTC',
    now: () => clock,
    onDelivered: (e) => delivered.push(e),
  });
});
afterEach(async () => {
  await service.close();
  await sql.close();
});

const message = (text: string, over: Partial<OfflineMessage> = {}): OfflineMessage => ({
  sender: 'alice@parley.test',
  recipient: 'bob@parley.test',
  callId: `c-${text}`,
  contentType: 'text/plain;charset=utf-8',
  body: new TextEncoder().encode(text),
  why: 'not signed in',
  ...over,
});

async function items(address: string) {
  const mailbox = await ensureMailbox(sql, address);
  const folder = await getDistinguishedFolder(sql, mailbox.id, 'conversationhistory');
  return (await findItems(sql, mailbox.id, folder.id, {})).items;
}

describe('the offline gate', () => {
  it('names the setting and the scope it came from', async () => {
    await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change);
    const gate = offlineGate('bob@parley.test', await effectiveSettings(sql, 'alice@parley.test'));
    assert.equal(gate.allowed, false);
    assert.match(gate.allowed ? '' : gate.warning, /EnableOfflineIm is False in CsImConfiguration Global/);
  });
});

describe('OfflineService', () => {
  it('three messages → three receipts of one entry → after the pickup delay one Missed Conversation and one Conversation copy', async () => {
    const receipts = [];
    for (const text of ['first', 'second <b>bold?</b>', 'third']) {
      receipts.push(await service.accept(message(text)));
      clock += 1000;
    }
    assert.ok(receipts.every((r) => r.kind === 'spooled'));
    const ids = new Set(receipts.map((r) => (r.kind === 'spooled' ? r.entryId : '')));
    assert.equal(ids.size, 1);
    const [entryId] = ids;

    assert.equal(await service.worker.runOnce(), 0, 'nothing before the pickup delay (2 minutes)');
    clock = T0 + 120_000;
    assert.equal(await service.worker.runOnce(), 1);

    const missed = await items('bob@parley.test');
    assert.equal(missed.length, 1);
    const item = missed[0];
    assert.equal(item?.itemClass, MISSED_CLASS);
    assert.equal(item?.subject, 'Missed conversation with Alice Example');
    assert.equal(item?.isRead, false);
    assert.equal(item?.internetMessageId, `<${entryId}@parley.test>`);
    assert.equal(item?.from?.address, 'alice@parley.test');
    const text = item?.bodyText ?? '';
    assert.ok(text.indexOf('first') < text.indexOf('second') && text.indexOf('second') < text.indexOf('third'), text);
    assert.ok(!(item?.bodyHtml ?? '').includes('<b>bold?</b>'), 'plain text is escaped, never injected');

    const copy = await items('alice@parley.test');
    assert.equal(copy.length, 1);
    assert.equal(copy[0]?.itemClass, CONVERSATION_CLASS);
    assert.equal(copy[0]?.subject, 'Conversation with Bob Example');
    assert.equal((await items('bob@parley.test')).filter((i) => i.itemClass === CONVERSATION_CLASS).length, 0);

    const entry = await getEntry(sql, entryId ?? '');
    assert.equal(entry.state, 'delivered');
    assert.equal(entry.recipientItemId, item?.id);
    assert.deepEqual(await missedConversationSummary(sql, 'bob@parley.test'), { total: 1, unread: 1 });
    assert.deepEqual(delivered.map((e) => e.id), [entryId]);
    assert.deepEqual((await readTrace(sql, entryId ?? '')).map((s) => s.step), ['received', 'gated', 'spooled', 'received', 'gated', 'spooled', 'received', 'gated', 'spooled', 'picked-up', 'delivered', 'delivered']);
  });

  it('refuses (480 material) when the sender may not: EnableOfflineIm, EnableIMAutoArchiving, typing, empty', async () => {
    await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'NoArchive' }, { EnableIMAutoArchiving: false }, change);
    await grantClientPolicy(sql, 'carol@parley.test', 'NoArchive', change);
    const carol = await service.accept(message('hi', { sender: 'carol@parley.test' }));
    assert.equal(carol.kind, 'refused');
    assert.match(carol.kind === 'refused' ? carol.warning : '', /EnableIMAutoArchiving is False in CsClientPolicy Tag:NoArchive/);
    assert.equal((await service.accept(message('hi'))).kind, 'spooled', 'other senders are not affected');
    const typing = await service.accept(message('<isComposing/>', { contentType: 'application/im-iscomposing+xml' }));
    assert.match(typing.kind === 'refused' ? typing.warning : '', /typing/);
    // RFC 5438 read receipts come in CPIM; a CPIM-wrapped isComposing is still typing
    const cpim = (type: string, content: string) => `From: <sip:alice@parley.test>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: n1\r\n\r\nContent-Type: ${type}\r\n\r\n${content}`;
    const receipt = await service.accept(message(cpim('message/imdn+xml', '<imdn xmlns="urn:ietf:params:xml:ns:imdn"/>'), { contentType: 'message/cpim' }));
    assert.match(receipt.kind === 'refused' ? receipt.warning : '', /read receipts \(message disposition notifications\) are not kept for later/);
    const wrappedTyping = await service.accept(message(cpim('application/im-iscomposing+xml', '<isComposing/>'), { contentType: 'Message/CPIM' }));
    assert.match(wrappedTyping.kind === 'refused' ? wrappedTyping.warning : '', /typing notifications are not kept/);
    assert.equal((await service.accept(message(cpim('text/plain', 'a real message'), { contentType: 'message/cpim' }))).kind, 'spooled', 'CPIM text is kept');
    const empty = await service.accept(message('', { body: new Uint8Array() }));
    assert.match(empty.kind === 'refused' ? empty.warning : '', /empty/);
    await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change);
    const off = await service.accept(message('hi'));
    assert.match(off.kind === 'refused' ? off.warning : '', /EnableOfflineIm is False/);
    // the refusals' trace rows go with the next batch: closing commits it
    await service.close();
    assert.equal((await readTrace(sql, 'c-hi')).filter((s) => s.step === 'gated' && s.detail.decision === 'refused').length, 2);
  });

  it('a delivery interrupted after the item was made (crash) is delivered again without a second item', async () => {
    const r = await service.accept(message('once'));
    const entryId = r.kind === 'spooled' ? r.entryId : '';
    clock += 120_000;
    await service.worker.runOnce();
    // play the crash: the items exist, but the entry is back to `delivering` as if never settled
    await sql.run("UPDATE spool_entries SET state = 'delivering', recipient_item_id = NULL, sender_item_id = NULL WHERE id = ?", [entryId]);
    await service.worker.start();
    await service.worker.close();
    assert.equal((await getEntry(sql, entryId)).state, 'waiting');
    await service.worker.runOnce();
    assert.equal((await getEntry(sql, entryId)).state, 'delivered');
    assert.equal((await items('bob@parley.test')).length, 1);
    assert.equal((await items('alice@parley.test')).length, 1);
    assert.ok((await readTrace(sql, entryId)).some((s) => s.step === 'recovered'));
  });
});

describe('the spool for Conversation History (kinds)', () => {
  const text = (t: string) => new TextEncoder().encode(t);
  const history = (owner: string, peer: string, notes: string[] = []) =>
    sql.transaction((tx) =>
      spoolHistoryEntry(tx, {
        owner,
        peer,
        conversationId: 'cv-TEST',
        createdAt: clock,
        maxAgeMs: 86_400_000,
        messages: [
          { sender: 'alice@parley.test', callId: 'h1', receivedAt: T0 - 60_000, contentType: 'text/plain', body: text('are you there?') },
          { sender: 'bob@parley.test', callId: 'h2', receivedAt: T0 - 50_000, contentType: 'text/html', body: text('<b>yes</b> <script>x()</script>') },
          { sender: 'alice@parley.test', callId: 'h3', receivedAt: T0 - 40_000, contentType: 'text/plain', body: text('good') },
        ],
        notes,
      }),
    );

  it('a history entry is due at once and makes one read Conversation item for its owner, both directions in order, with its notes', async () => {
    const id = await history('bob@parley.test', 'alice@parley.test', ['1 message Alice sent while you were offline is in your missed conversation.']);
    assert.equal(await service.worker.runOnce(), 1);
    assert.equal((await items('alice@parley.test')).length, 0, 'only the owner gets it');
    const [item, ...more] = await items('bob@parley.test');
    assert.equal(more.length, 0);
    assert.equal(item?.itemClass, CONVERSATION_CLASS);
    assert.equal(item?.subject, 'Conversation with Alice Example');
    assert.equal(item?.isRead, true);
    assert.equal(item?.internetMessageId, `<${id}@parley.test>`);
    assert.equal(item?.from?.address, 'alice@parley.test', 'From is whoever opened the conversation');
    const lines = (item?.bodyText ?? '').split('\n');
    assert.deepEqual(lines.filter((l) => l.startsWith('[')).map((l) => l.replace(/^\[[^\]]*\] /, '')), ['Alice Example: are you there?', 'Bob Example: yes', 'Alice Example: good']);
    assert.ok(lines.includes('1 message Alice sent while you were offline is in your missed conversation.'));
    assert.ok(!(item?.bodyHtml ?? '').includes('<script'), 'HTML is sanitised');
    assert.match(item?.bodyHtml ?? '', /<i>1 message Alice sent/);
    assert.deepEqual(delivered, [], 'no Missed item, so no message-summary change');
    const entry = await getEntry(sql, id);
    assert.equal(entry.state, 'delivered');
    assert.equal(entry.kind, 'history');
    assert.equal(entry.conversationId, 'cv-TEST');
    assert.ok((await readTrace(sql, 'cv-TEST')).some((s) => s.traceId === id && s.step === 'delivered'), 'the conversation id finds the entry');
  });

  it('a history entry delivered again (crash after the item was made) finds its item', async () => {
    const id = await history('alice@parley.test', 'bob@parley.test');
    await service.worker.runOnce();
    await sql.run("UPDATE spool_entries SET state = 'waiting', sender_item_id = NULL, next_attempt_at = ? WHERE id = ?", [clock, id]);
    await service.worker.runOnce();
    assert.equal((await items('alice@parley.test')).length, 1);
    assert.equal((await getEntry(sql, id)).state, 'delivered');
  });

  it('unread messages wait for their own pickup from when they are spooled, join only unread entries, and count in no quota', async () => {
    const offline = await service.accept(message('offline one'));
    assert.equal(offline.kind, 'spooled');
    const unread = (t: string) => ({
      sender: 'alice@parley.test',
      recipient: 'bob@parley.test',
      callId: `u-${t}`,
      contentType: 'text/plain',
      body: text(t),
      receivedAt: T0 - 300_000,
      pickupFrom: clock,
      pickupDelayMs: 60_000,
      maxAgeMs: 86_400_000,
      why: 'not displayed',
      gate: {},
      kind: 'unread' as const,
    });
    const [a, b] = await sql.transaction((tx) => spoolMessages(tx, [unread('u1'), unread('u2')]));
    assert.equal(a?.entryId, b?.entryId, 'the second joins the first');
    assert.notEqual(a?.entryId, offline.kind === 'spooled' ? offline.entryId : '', 'never joins an offline entry');
    assert.equal(a?.pickupAt, clock + 60_000, 'the pickup delay counts from the spooling');
    assert.deepEqual((await listEntries(sql)).map((e) => e.kind).sort(), ['offline', 'unread']);
    assert.deepEqual(service.quota.tallies().senders.get('alice@parley.test')?.messages, 1, 'the quota counts the offline message only');
    clock += 60_000;
    assert.equal(await service.worker.runOnce(), 1, 'the unread entry, before the offline one');
    const missed = (await items('bob@parley.test')).filter((i) => i.itemClass === MISSED_CLASS);
    assert.equal(missed.length, 1);
    assert.ok(missed[0]?.bodyText?.includes('u1') && missed[0]?.bodyText?.includes('u2'));
    assert.equal(missed[0]?.isRead, false);
    assert.equal((await items('alice@parley.test')).filter((i) => i.itemClass === CONVERSATION_CLASS).length, 1, 'and the sender copy, as offline');
    assert.equal(service.quota.tallies().senders.get('alice@parley.test')?.messages, 1, 'delivering the unread entry released nothing: the offline message still holds its place');
  });
});

describe('retries', () => {
  let failing: OfflineService;
  beforeEach(async () => {
    failing = new OfflineService({
      sql,
      logger,
      domain: 'parley.test',
      routing: { connectorFor: () => ({ name: 'exchange', connector: flaky }) },
      displayName: async () => null,
      retry: { baseMs: 1000, maxMs: 4000 },
      deliveryBatch: 16,
      commitWindowMs: 0,
      commitMaxBatch: 100,
      timeZone: 'UTC',
      now: () => clock,
    });
  });

  it('an unreachable mailbox is retried with doubling, bounded waits, then delivered exactly once', async () => {
    await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { OfflineImPickupDelay: 0 }, change);
    const r = await failing.accept(message('x'));
    const id = r.kind === 'spooled' ? r.entryId : '';
    flaky.failWith = new MailboxError('REMOTE_UNAVAILABLE', 'connection refused');
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      await failing.worker.runOnce();
      const e = await getEntry(sql, id);
      assert.equal(e.state, 'waiting');
      assert.match(e.lastError ?? '', /recipient mailbox \(exchange\): connection refused/);
      waits.push(e.nextAttemptAt - clock);
      clock = e.nextAttemptAt;
    }
    assert.deepEqual(waits, [1000, 2000, 4000, 4000, 4000]);
    flaky.failWith = undefined;
    await failing.worker.runOnce();
    assert.equal((await getEntry(sql, id)).state, 'delivered');
    assert.equal((await items('bob@parley.test')).length, 1);
  });

  it('still failing when OfflineImMaxAge ends: failed with its reason, kept; an administrator retry delivers it', async () => {
    await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { OfflineImPickupDelay: 0, OfflineImMaxAge: 60 }, change);
    const r = await failing.accept(message('x'));
    const id = r.kind === 'spooled' ? r.entryId : '';
    flaky.failWith = new MailboxError('REMOTE_UNAVAILABLE', 'HTTP 503');
    for (let i = 0; i < 100 && (await getEntry(sql, id)).state === 'waiting'; i++) {
      await failing.worker.runOnce();
      clock = Math.max(clock, (await getEntry(sql, id)).nextAttemptAt);
    }
    const failed = await getEntry(sql, id);
    assert.equal(failed.state, 'failed');
    assert.match(failed.lastError ?? '', /still failing when OfflineImMaxAge ended, after \d+ attempts: .*HTTP 503/);
    assert.ok(clock <= T0 + 60_000, 'the last attempt is at the end of the max age, not after');
    flaky.failWith = undefined;
    const { retrySpoolEntry } = await import('../../src/offline/admin.ts');
    await retrySpoolEntry(sql, id, clock, 'test');
    await failing.worker.runOnce();
    assert.equal((await getEntry(sql, id)).state, 'delivered');
    assert.equal((await items('bob@parley.test')).length, 1);
  });

  it('a refusal retrying cannot cure fails at once', async () => {
    await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { OfflineImPickupDelay: 0 }, change);
    const r = await failing.accept(message('x'));
    flaky.failWith = new MailboxError('REMOTE_REFUSED', 'ErrorImpersonateUserDenied');
    await failing.worker.runOnce();
    const e = await getEntry(sql, r.kind === 'spooled' ? r.entryId : '');
    assert.equal(e.state, 'failed');
    assert.match(e.lastError ?? '', /ErrorImpersonateUserDenied/);
  });
});
});
