// Conversation History's group commit and recorder: what a batch of recorded MESSAGEs becomes
// (conversations opened, continued, ended by idleness; typing dropped; IMDN displayed reports;
// offline parts noted; nothing for a pair that does not archive), in the loop and in a thread.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { createSite, setUserSite } from '../../src/directory/sites.ts';
import { classify } from '../../src/history/content.ts';
import { MAX_CONVERSATION_MESSAGES, writeHistoryBatch } from '../../src/history/commit.ts';
import { HistoryRecorder } from '../../src/history/recorder.ts';
import { conversationMessages, endForSignOut, listConversations } from '../../src/history/repository.ts';
import { readTrace } from '../../src/observability/trace.ts';
import { CLIENT_POLICY, IM_CONFIGURATION, createInstance, grantClientPolicy } from '../../src/settings/index.ts';
import type { Sql, SqlDatabase } from '../../src/storage/index.ts';
import { DATABASE_FILE, openDatabase, sqliteSql } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { ALICE, BOB, T0, change, asking as cpimAsking, displayedReport, enc, logger, prepareHistoryDatabase as prepare, text } from './history-fixture.ts';

const typing = '<?xml version="1.0"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>';

describe('what a recorded message is', () => {
  it('tells typing, displayed reports, text and display requests apart (bare or in CPIM)', async () => {
    assert.deepEqual(classify('application/im-iscomposing+xml', enc(typing)), { kind: 'typing' });
    assert.deepEqual(classify('message/cpim', enc(`From: <sip:${ALICE}>\r\n\r\nContent-Type: application/im-iscomposing+xml\r\n\r\n${typing}`)), { kind: 'typing' });
    assert.deepEqual(classify('message/cpim', enc(displayedReport('m1'))), { kind: 'report', displayedId: 'm1' });
    assert.deepEqual(classify('message/cpim', enc(displayedReport('m1').replace('<displayed/>', '<forbidden/>'))), { kind: 'report', displayedId: undefined });
    assert.deepEqual(classify('message/cpim', enc(cpimAsking('m2', 'hi'))), { kind: 'text', displayRequestId: 'm2' });
    assert.deepEqual(classify('message/cpim', enc(cpimAsking('m2', 'hi').replace('display\r\n', 'positive-delivery\r\n'))), { kind: 'text', displayRequestId: undefined });
    assert.deepEqual(classify('text/plain', enc('hello')), { kind: 'text', displayRequestId: undefined });
    assert.deepEqual(classify(undefined, enc('hello')), { kind: 'text', displayRequestId: undefined });
    assert.deepEqual(classify('message/cpim', enc('not cpim at all')), { kind: 'text', displayRequestId: undefined });
  });
});

after(() => closeTestPostgres());

for (const engine of ENGINES) describe(`on ${engine.name}`, () => {
describe('the group commit', () => {
  let sql: SqlDatabase;
  beforeEach(async () => {
    sql = await engine.open();
    await prepare(sql);
  });
  afterEach(() => sql.close());

  it('writers of several nodes (a cluster) add to one conversation without colliding on its message numbers', async () => {
    // another node's writer: the same database through another handle, so with a memory of its own
    const otherNode: Sql = { engine: sql.engine, get inTransaction() { return sql.inTransaction; }, all: (q, p) => sql.all(q, p), get: (q, p) => sql.get(q, p), run: (q, p) => sql.run(q, p), exec: (q) => sql.exec(q), transaction: (fn, o) => sql.transaction(fn, o) };
    await writeHistoryBatch(sql, [text('one', T0)]);
    await writeHistoryBatch(otherNode, [text('two', T0 + 1000, { sender: BOB, recipient: ALICE })]);
    // this node remembers the conversation it opened; its next message must not take number 2 again
    await writeHistoryBatch(sql, [text('three', T0 + 2000)]);
    await writeHistoryBatch(otherNode, [text('four', T0 + 3000, { sender: BOB, recipient: ALICE })]);
    const conversations = await listConversations(sql, ALICE, 0);
    assert.equal(conversations.length, 1, 'one conversation for the pair');
    assert.deepEqual((await conversationMessages(sql, conversations[0]?.id ?? '')).map((m) => Buffer.from(m.body ?? []).toString()), ['one', 'two', 'three', 'four']);
  });

  it('keeps both directions in one conversation until the idle timeout, then opens a new one', async () => {
    const summary = await writeHistoryBatch(sql, [text('hi bob', T0), text('typing…', T0 + 1, { contentType: 'application/im-iscomposing+xml', body: enc(typing) }), text('hi alice', T0 + 2000, { sender: BOB, recipient: ALICE })]);
    assert.deepEqual(summary, { recorded: 2, displayed: 0, opened: 1 });
    const [first] = await listConversations(sql, ALICE, 0);
    assert.ok(first);
    assert.equal(first.state, 'open');
    assert.equal(first.endsAt, T0 + 2000 + 60_000);
    assert.deepEqual((await conversationMessages(sql, first.id)).map((m) => [m.sender, Buffer.from(m.body ?? []).toString()]), [[ALICE, 'hi bob'], [BOB, 'hi alice']]);
    // after the idle timeout, a message opens a new conversation (the old one waits for the worker)
    await writeHistoryBatch(sql, [text('back again', T0 + 2000 + 60_001)]);
    const list = await listConversations(sql, BOB, 0);
    assert.equal(list.length, 2);
    assert.notEqual(list[0]?.id, first.id);
    assert.ok((await readTrace(sql, first.id)).some((e) => e.step === 'opened'));
  });

  it('the shorter idle timeout of the two applies', async () => {
    await createSite(sql, 'short');
    await createInstance(sql, IM_CONFIGURATION, { scope: 'site', name: 'short' }, { ConversationIdleTimeout: 5 }, change);
    await setUserSite(sql, BOB, 'short');
    await writeHistoryBatch(sql, [text('hi', T0)]);
    assert.equal((await listConversations(sql, ALICE, 0))[0]?.endsAt, T0 + 5000);
  });

  it('marks messages displayed from the reader\'s report, even one refused (480) because the sender went offline', async () => {
    await writeHistoryBatch(sql, [text('read me', T0, { contentType: 'message/cpim', body: enc(cpimAsking('m1', 'read me')) }), text('and me', T0 + 1, { contentType: 'message/cpim', body: enc(cpimAsking('m2', 'and me')) })]);
    const id = (await listConversations(sql, ALICE, 0))[0]?.id ?? '';
    const due = () => sql.all<{ id: string; due: number; displayed: number }>('SELECT imdn_message_id AS id, display_due_at AS due, displayed FROM history_messages WHERE conversation_id = ? ORDER BY seq', [id]);
    assert.deepEqual((await due()).map((r) => ({ ...r })), [{ id: 'm1', due: T0 + 30_000, displayed: 0 }, { id: 'm2', due: T0 + 1 + 30_000, displayed: 0 }]);
    // a report from someone else does not count; bob's does
    const summary = (await writeHistoryBatch(sql, [
      text('', T0 + 5, { sender: 'carol@parley.test', recipient: ALICE, contentType: 'message/cpim', body: enc(displayedReport('m1')) }),
      text('', T0 + 6, { sender: BOB, recipient: ALICE, contentType: 'message/cpim', body: enc(displayedReport('m1')), outcome: 'undelivered' }),
    ]));
    assert.equal(summary.displayed, 1);
    assert.deepEqual((await due()).map((r) => r.displayed), [1, 0]);
    assert.equal((await listConversations(sql, ALICE, 0))[0]?.messageCount, 2, 'reports are not messages of the conversation');
  });

  it('a pair that never pauses goes on in a new conversation once one holds MAX_CONVERSATION_MESSAGES', async () => {
    const flood = Array.from({ length: MAX_CONVERSATION_MESSAGES + 5 }, (_, i) => text(`m${i}`, T0 + i));
    assert.equal((await writeHistoryBatch(sql, flood)).opened, 2);
    const counts = (await listConversations(sql, ALICE, 0)).map((c) => c.messageCount).sort((a, b) => a - b);
    assert.deepEqual(counts, [5, MAX_CONVERSATION_MESSAGES]);
    assert.equal((await writeHistoryBatch(sql, [text('next', T0 + 2000)])).opened, 0, 'the new one goes on');
  });

  it('a batch continuing conversations the writer knows: each pair\'s messages in order, its end and count moved by all of them; one ending within the batch, or filling up, goes on in a new one', async () => {
    const CAROL = 'carol@parley.test';
    await writeHistoryBatch(sql, [text('open ab', T0), text('open ac', T0 + 1, { recipient: CAROL })]);
    const ids = async (address: string) => (await listConversations(sql, address, 0)).map((c) => c.id);
    const [ab] = await ids(BOB);
    const [ac] = await ids(CAROL);
    assert.ok(ab !== undefined && ac !== undefined);
    // seq and text (a CPIM body's last line)
    const bodies = async (id: string) => (await conversationMessages(sql, id)).map((m) => `${m.seq} ${Buffer.from(m.body ?? []).toString().split('\n').at(-1)}`);
    // both known: interleaved, both directions, a displayed report between them
    const summary = await writeHistoryBatch(sql, [
      text('ab 2', T0 + 10),
      text('ac 2', T0 + 11, { sender: CAROL, recipient: ALICE }),
      text('ab 3', T0 + 12, { sender: BOB, recipient: ALICE, contentType: 'message/cpim', body: enc(cpimAsking('m3', 'ab 3').replace(`From: <sip:${ALICE}>\r\nTo: <sip:${BOB}>`, `From: <sip:${BOB}>\r\nTo: <sip:${ALICE}>`)) }),
      text('', T0 + 13, { sender: ALICE, recipient: BOB, contentType: 'message/cpim', body: enc(displayedReport('m3')) }),
      text('ab 4', T0 + 14),
    ]);
    assert.deepEqual(summary, { recorded: 4, displayed: 1, opened: 0 });
    assert.deepEqual(await bodies(ab), ['1 open ab', '2 ab 2', '3 ab 3', '4 ab 4']);
    assert.deepEqual(await bodies(ac), ['1 open ac', '2 ac 2']);
    const conversation = (await listConversations(sql, BOB, 0))[0];
    assert.deepEqual([conversation?.messageCount, conversation?.lastAt, conversation?.endsAt], [4, T0 + 14, T0 + 14 + 60_000]);
    // alice-carol's end passes between two messages of one batch: the later one opens a new conversation
    assert.equal((await writeHistoryBatch(sql, [text('ac 3', T0 + 20, { recipient: CAROL }), text('ac later', T0 + 20 + 60_001, { recipient: CAROL })])).opened, 1);
    assert.deepEqual(await bodies(ac), ['1 open ac', '2 ac 2', '3 ac 3']);
    const [newer] = await ids(CAROL);
    assert.ok(newer !== undefined && newer !== ac);
    assert.deepEqual(await bodies(newer), ['1 ac later']);
    // alice-bob fills up within a batch: the messages that fit stay, the rest open the next one
    await sql.run('UPDATE history_conversations SET message_count = ? WHERE id = ?', [MAX_CONVERSATION_MESSAGES - 2, ab]);
    assert.equal((await writeHistoryBatch(sql, [text('x', T0 + 30), text('y', T0 + 31), text('z', T0 + 32)])).opened, 1);
    assert.deepEqual((await bodies(ab)).slice(-2), [`${MAX_CONVERSATION_MESSAGES - 1} x`, `${MAX_CONVERSATION_MESSAGES} y`]);
    const next = (await ids(BOB)).find((id) => id !== ab);
    assert.ok(next !== undefined);
    assert.deepEqual(await bodies(next), ['1 z']);
  });

  it('notes offline messages without their body; ignores refused ones', async () => {
    await writeHistoryBatch(sql, [text('online', T0), text('offline', T0 + 10, { outcome: 'spooled', entryId: 'sp-aaaaaaaaaaaaaaaa' }), text('refused', T0 + 20, { outcome: 'undelivered' })]);
    const id = (await listConversations(sql, ALICE, 0))[0]?.id ?? '';
    assert.deepEqual((await conversationMessages(sql, id)).map((m) => [m.kind, m.body === null, m.spoolEntryId]), [['relayed', false, null], ['offline', true, 'sp-aaaaaaaaaaaaaaaa']]);
  });

  it('an offline message alone opens no conversation (its Missed item and the copy are its record), and takes no write', async () => {
    // the handle, counting the transactions opened on it
    let transactions = 0;
    const watched = new Proxy(sql, {
      get(target, name) {
        if (name === 'transaction') transactions++;
        const value: unknown = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Sql;
    assert.equal((await writeHistoryBatch(watched, [text('offline only', T0, { outcome: 'spooled', entryId: 'sp-bbbbbbbbbbbbbbbb' })])).recorded, 0);
    assert.equal(transactions, 0, 'no transaction, no write lock');
    assert.equal((await listConversations(sql, ALICE, 0)).length, 0);
    // once the two are talking, it is noted in their conversation
    await writeHistoryBatch(sql, [text('online', T0 + 10)]);
    assert.equal((await writeHistoryBatch(sql, [text('offline later', T0 + 20, { outcome: 'spooled', entryId: 'sp-cccccccccccccccc' })])).recorded, 1);
  });

  it('keeps nothing for a pair where neither archives, unless a display is tracked', async () => {
    await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'NoArchive' }, { EnableIMAutoArchiving: false }, change);
    await grantClientPolicy(sql, ALICE, 'NoArchive', change);
    await grantClientPolicy(sql, BOB, 'NoArchive', change);
    assert.equal((await writeHistoryBatch(sql, [text('not kept', T0), text('offline, not kept', T0 + 1, { outcome: 'spooled', entryId: 'sp-x' })])).recorded, 0);
    assert.equal((await listConversations(sql, ALICE, 0)).length, 0);
    assert.equal((await writeHistoryBatch(sql, [text('tracked', T0 + 2, { contentType: 'message/cpim', body: enc(cpimAsking('m9', 'tracked')) })])).recorded, 1);
    // one of the two archiving is enough
    await grantClientPolicy(sql, BOB, null, change);
    assert.equal((await writeHistoryBatch(sql, [text('kept for bob', T0 + 3)])).recorded, 1);
  });

  it('a sign-out ends the user\'s open conversations now and makes their unread messages due', async () => {
    await writeHistoryBatch(sql, [text('hi', T0, { contentType: 'message/cpim', body: enc(cpimAsking('m1', 'hi')) })]);
    const [c] = await listConversations(sql, BOB, 0);
    assert.deepEqual((await endForSignOut(sql, BOB, T0 + 1000)), [c?.id]);
    const after = (await listConversations(sql, BOB, 0))[0];
    assert.equal(after?.endsAt, T0 + 1000);
    assert.equal(after?.closeReason, 'signed-out');
    assert.equal((await sql.get<{ due: number }>('SELECT display_due_at AS due FROM history_messages'))?.due, T0 + 1000);
  });
});

describe('the recorder', () => {
  it('in the loop: record() only queues; the window\'s batch is committed at once', async () => {
    const sql = await engine.open();
    await prepare(sql);
    const recorder = new HistoryRecorder({ sql, logger, commitWindowMs: 10 });
    recorder.record(text('one', T0));
    recorder.record(text('two', T0 + 1, { sender: BOB, recipient: ALICE }));
    assert.equal((await listConversations(sql, ALICE, 0)).length, 0, 'nothing written on the relay path');
    await recorder.settled();
    assert.equal((await listConversations(sql, ALICE, 0))[0]?.messageCount, 2);
    assert.deepEqual({ batches: recorder.stats.batches, recorded: recorder.stats.recorded }, { batches: 1, recorded: 2 });
    await recorder.close();
    await sql.close();
  });

  it('in the loop: what is recorded while a batch is written goes in the next batch, which settled() writes without waiting for the window', async () => {
    const sql = await engine.open();
    await prepare(sql);
    const recorder = new HistoryRecorder({ sql, logger, commitWindowMs: 10 });
    recorder.record(text('one', T0));
    recorder.flush();
    recorder.record(text('two', T0 + 1, { sender: BOB, recipient: ALICE }));
    recorder.record(text('three', T0 + 2));
    await recorder.settled();
    const [conversation] = await listConversations(sql, ALICE, 0);
    assert.deepEqual((await conversationMessages(sql, conversation?.id ?? '')).map((m) => Buffer.from(m.body ?? []).toString()), ['one', 'two', 'three']);
    assert.deepEqual({ batches: recorder.stats.batches, recorded: recorder.stats.recorded }, { batches: 2, recorded: 3 });
    await recorder.close();
    await sql.close();
  });

  it('sends the commit no plain text between two users of whom neither archives; a display request, a report or one archiving party still goes', async () => {
    const sql = await engine.open();
    await prepare(sql);
    await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'NoArchive' }, { EnableIMAutoArchiving: false }, change);
    await grantClientPolicy(sql, ALICE, 'NoArchive', change);
    await grantClientPolicy(sql, BOB, 'NoArchive', change);
    const recorder = new HistoryRecorder({ sql, logger, commitWindowMs: 10 });
    recorder.record(text('not kept', T0));
    recorder.record(text('offline, not kept', T0 + 1, { outcome: 'spooled', entryId: 'sp-x' }));
    await recorder.settled();
    assert.deepEqual({ received: recorder.stats.received, batches: recorder.stats.batches }, { received: 2, batches: 0 }, 'no batch for what the commit would drop');
    recorder.record(text('tracked', T0 + 2, { contentType: 'message/cpim', body: enc(cpimAsking('m9', 'tracked')) }));
    recorder.record(text('not kept either', T0 + 3));
    await recorder.settled();
    assert.deepEqual({ batches: recorder.stats.batches, recorded: recorder.stats.recorded }, { batches: 1, recorded: 1 });
    // one of the two archiving is enough (the settings cache sees the change)
    await grantClientPolicy(sql, BOB, null, change);
    recorder.record(text('kept for bob', T0 + 4));
    await recorder.settled();
    assert.deepEqual({ batches: recorder.stats.batches, recorded: recorder.stats.recorded }, { batches: 2, recorded: 2 });
    // and back: what the recorder remembers of bob's archiving goes with the change
    await grantClientPolicy(sql, BOB, 'NoArchive', change);
    recorder.record(text('not kept again', T0 + 5));
    await recorder.settled();
    assert.deepEqual({ received: recorder.stats.received, batches: recorder.stats.batches, recorded: recorder.stats.recorded }, { received: 6, batches: 2, recorded: 2 });
    await recorder.close();
    await sql.close();
  });
});
});

describe('the recorder on SQLite', () => {
  it('in a thread (a database file): the same, on its own connection; a body that is a view of a larger buffer is stored alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-history-recorder-'));
    const db = openDatabase(dir);
    const sql = sqliteSql(db);
    await prepare(sql);
    const recorder = new HistoryRecorder({ sql, logger, commitWindowMs: 10 });
    assert.equal(db.location(), join(dir, DATABASE_FILE));
    const datagram = Buffer.from('MESSAGE …\r\n\r\nhi there');
    recorder.record(text('', T0, { body: datagram.subarray(datagram.length - 8) }));
    for (let i = 1; i <= 50; i++) recorder.record(text(`m${i}`, T0 + i));
    await recorder.settled();
    const [c] = await listConversations(sql, ALICE, 0);
    assert.equal(c?.messageCount, 51);
    assert.equal(Buffer.from((await conversationMessages(sql, c?.id ?? ''))[0]?.body ?? []).toString(), 'hi there');
    await recorder.close();
    db.close();
  });
});
