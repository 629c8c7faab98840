// The history worker on an in-memory database with a hand-driven clock: ended conversations become
// one 'history' spool entry per archiving participant (once), unread messages one 'unread' entry
// per direction, sign-outs end conversations early.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { writeHistoryBatch } from '../../src/history/commit.ts';
import { conversationMessages, listConversations } from '../../src/history/repository.ts';
import { HistoryWorker } from '../../src/history/worker.ts';
import { readTrace } from '../../src/observability/trace.ts';
import { entryMessages, getEntry, listEntries } from '../../src/offline/index.ts';
import { CLIENT_POLICY, createInstance, grantClientPolicy } from '../../src/settings/index.ts';
import type { Database } from '../../src/storage/index.ts';
import { openMemoryDatabase, sqliteSql } from '../../src/storage/index.ts';
import { ALICE, BOB, T0, asking, change, displayedReport, enc, logger, prepareHistoryDatabase, text } from './history-fixture.ts';

let db: Database;
let worker: HistoryWorker;
let kicked: number[];
let clock: number;

beforeEach(async () => {
  db = openMemoryDatabase();
  await prepareHistoryDatabase(db);
  kicked = [];
  clock = T0;
  worker = new HistoryWorker({ db, logger, now: () => clock, displayName: (a) => (a === ALICE ? 'Alice Example' : 'Bob Example'), onSpooled: (at) => kicked.push(at) });
});

const entriesOf = (kind: string) => listEntries(db, {}).filter((e) => e.kind === kind);
const bodies = (id: string) => entryMessages(db, id).map((m) => Buffer.from(m.body).toString());

describe('the history worker', () => {
  it('closes an ended conversation into one history entry per participant, both directions in order, once', () => {
    writeHistoryBatch(db, [text('hi bob', T0), text('hi alice', T0 + 1000, { sender: BOB, recipient: ALICE }), text('lunch?', T0 + 2000)]);
    assert.deepEqual(worker.round(T0 + 2000 + 59_999), { missed: 0, closed: 0, entries: 0 }, 'not yet idle long enough');
    assert.deepEqual(worker.round(T0 + 2000 + 60_000), { missed: 0, closed: 1, entries: 2 });
    const entries = entriesOf('history');
    assert.deepEqual(entries.map((e) => e.sender).sort(), [ALICE, BOB]);
    for (const e of entries) assert.deepEqual(bodies(e.id), ['hi bob', 'hi alice', 'lunch?']);
    assert.deepEqual(kicked, [T0 + 62_000]);
    const [c] = listConversations(db, ALICE, 0);
    assert.equal(c?.state, 'closed');
    assert.equal(c?.entries.length, 2);
    assert.ok(conversationMessages(db, c?.id ?? '').every((m) => m.body === null), 'bodies go once spooled');
    // another round (a restart) makes nothing more
    assert.deepEqual(worker.round(T0 + 100_000), { missed: 0, closed: 0, entries: 0 });
    assert.equal(entriesOf('history').length, 2);
    const trace = readTrace(db, c?.id ?? '');
    assert.deepEqual([...new Set(trace.map((e) => e.step))].sort(), ['closed', 'opened', 'spooled'], 'the conversation\'s rows and its entries\'');
  });

  it('a participant who does not archive gets nothing; the other does', async () => {
    await createInstance(sqliteSql(db), CLIENT_POLICY, { scope: 'tag', name: 'NoArchive' }, { EnableIMAutoArchiving: false }, change);
    await grantClientPolicy(sqliteSql(db), ALICE, 'NoArchive', change);
    writeHistoryBatch(db, [text('hi', T0), text('yo', T0 + 1, { sender: BOB, recipient: ALICE })]);
    worker.round(T0 + 61_000);
    assert.deepEqual(entriesOf('history').map((e) => e.sender), [BOB]);
  });

  it('unread messages become one unread entry for their direction, and leave the history item, which says so', () => {
    writeHistoryBatch(db, [
      text('', T0, { contentType: 'message/cpim', body: enc(asking('m1', 'are you there?')) }),
      text('', T0 + 1, { contentType: 'message/cpim', body: enc(asking('m2', 'hello?')) }),
      text('I was away', T0 + 40_000, { sender: BOB, recipient: ALICE }),
    ]);
    assert.deepEqual(worker.round(T0 + 30_001), { missed: 2, closed: 0, entries: 0 });
    const unread = entriesOf('unread');
    assert.equal(unread.length, 1, 'one Missed item for both');
    assert.equal(unread[0]?.messageCount, 2);
    worker.round(T0 + 40_000 + 60_000);
    const history = entriesOf('history');
    assert.equal(history.length, 2);
    for (const e of history) assert.deepEqual(bodies(e.id), ['I was away']);
    assert.deepEqual(getEntry(db, history[0]?.id ?? '').notes, ['2 messages Alice Example sent that Bob Example did not read are in the missed conversation']);
  });

  it('a displayed report in time: nothing missed, the message stays in the transcript', () => {
    writeHistoryBatch(db, [text('', T0, { contentType: 'message/cpim', body: enc(asking('m1', 'seen?')) })]);
      writeHistoryBatch(db, [text('', T0 + 5, { sender: BOB, recipient: ALICE, contentType: 'message/cpim', body: enc(displayedReport('m1')) })]);
    worker.round(T0 + 61_000);
    assert.equal(entriesOf('unread').length, 0);
    assert.equal(entriesOf('history').length, 2);
  });

  it('a sign-out ends the conversation at the next round; a later message is a new conversation, a second item', () => {
    writeHistoryBatch(db, [text('first', T0)]);
    clock = T0 + 1000;
    worker.signedOut(BOB);
    assert.equal(entriesOf('history').length, 2);
    writeHistoryBatch(db, [text('second', T0 + 2000)]);
    worker.round(T0 + 120_000);
    assert.equal(entriesOf('history').length, 4);
    assert.deepEqual(listConversations(db, ALICE, 0).map((c) => c.closeReason).sort(), ['idle', 'signed-out']);
  });
});
