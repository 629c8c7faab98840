// The history worker on an in-memory database with a hand-driven clock: ended conversations become
// one 'history' spool entry per archiving participant (once), unread messages one 'unread' entry
// per direction, sign-outs end conversations early.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { writeHistoryBatch } from '../../src/history/commit.ts';
import { conversationMessages, listConversations } from '../../src/history/repository.ts';
import { HistoryWorker } from '../../src/history/worker.ts';
import { readTrace } from '../../src/observability/trace.ts';
import { entryMessages, getEntry, listEntries } from '../../src/offline/index.ts';
import { CLIENT_POLICY, createInstance, grantClientPolicy } from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { ALICE, BOB, T0, asking, change, displayedReport, enc, logger, prepareHistoryDatabase, text } from './history-fixture.ts';

after(() => closeTestPostgres());

for (const engine of ENGINES) describe(`on ${engine.name}`, () => {
let sql: SqlDatabase;
let worker: HistoryWorker;
let kicked: number[];
let clock: number;

beforeEach(async () => {
  sql = await engine.open();
  await prepareHistoryDatabase(sql);
  kicked = [];
  clock = T0;
  worker = new HistoryWorker({ sql, logger, now: () => clock, displayName: async (a) => (a === ALICE ? 'Alice Example' : 'Bob Example'), onSpooled: (at) => kicked.push(at) });
});
afterEach(() => sql.close());

const entriesOf = async (kind: string) => (await listEntries(sql, {})).filter((e) => e.kind === kind);
const bodies = async (id: string) => (await entryMessages(sql, id)).map((m) => Buffer.from(m.body).toString());

describe('the history worker', () => {
  it('closes an ended conversation into one history entry per participant, both directions in order, once', async () => {
    await writeHistoryBatch(sql, [text('hi bob', T0), text('hi alice', T0 + 1000, { sender: BOB, recipient: ALICE }), text('lunch?', T0 + 2000)]);
    assert.deepEqual((await worker.round(T0 + 2000 + 59_999)), { missed: 0, closed: 0, entries: 0 }, 'not yet idle long enough');
    assert.deepEqual((await worker.round(T0 + 2000 + 60_000)), { missed: 0, closed: 1, entries: 2 });
    const entries = await entriesOf('history');
    assert.deepEqual(entries.map((e) => e.sender).sort(), [ALICE, BOB]);
    for (const e of entries) assert.deepEqual((await bodies(e.id)), ['hi bob', 'hi alice', 'lunch?']);
    assert.deepEqual(kicked, [T0 + 62_000]);
    const [c] = await listConversations(sql, ALICE, 0);
    assert.equal(c?.state, 'closed');
    assert.equal(c?.entries.length, 2);
    assert.ok((await conversationMessages(sql, c?.id ?? '')).every((m) => m.body === null), 'bodies go once spooled');
    // another round (a restart) makes nothing more
    assert.deepEqual((await worker.round(T0 + 100_000)), { missed: 0, closed: 0, entries: 0 });
    assert.equal((await entriesOf('history')).length, 2);
    const trace = await readTrace(sql, c?.id ?? '');
    assert.deepEqual([...new Set(trace.map((e) => e.step))].sort(), ['closed', 'opened', 'spooled'], 'the conversation\'s rows and its entries\'');
  });

  it('a participant who does not archive gets nothing; the other does', async () => {
    await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'NoArchive' }, { EnableIMAutoArchiving: false }, change);
    await grantClientPolicy(sql, ALICE, 'NoArchive', change);
    await writeHistoryBatch(sql, [text('hi', T0), text('yo', T0 + 1, { sender: BOB, recipient: ALICE })]);
    await worker.round(T0 + 61_000);
    assert.deepEqual((await entriesOf('history')).map((e) => e.sender), [BOB]);
  });

  it('unread messages become one unread entry for their direction, and leave the history item, which says so', async () => {
    (await writeHistoryBatch(sql, [
      text('', T0, { contentType: 'message/cpim', body: enc(asking('m1', 'are you there?')) }),
      text('', T0 + 1, { contentType: 'message/cpim', body: enc(asking('m2', 'hello?')) }),
      text('I was away', T0 + 40_000, { sender: BOB, recipient: ALICE }),
    ]));
    assert.deepEqual((await worker.round(T0 + 30_001)), { missed: 2, closed: 0, entries: 0 });
    const unread = await entriesOf('unread');
    assert.equal(unread.length, 1, 'one Missed item for both');
    assert.equal(unread[0]?.messageCount, 2);
    await worker.round(T0 + 40_000 + 60_000);
    const history = await entriesOf('history');
    assert.equal(history.length, 2);
    for (const e of history) assert.deepEqual((await bodies(e.id)), ['I was away']);
    assert.deepEqual((await getEntry(sql, history[0]?.id ?? '')).notes, ['2 messages Alice Example sent that Bob Example did not read are in the missed conversation']);
  });

  it('a displayed report in time: nothing missed, the message stays in the transcript', async () => {
    await writeHistoryBatch(sql, [text('', T0, { contentType: 'message/cpim', body: enc(asking('m1', 'seen?')) })]);
      await writeHistoryBatch(sql, [text('', T0 + 5, { sender: BOB, recipient: ALICE, contentType: 'message/cpim', body: enc(displayedReport('m1')) })]);
    await worker.round(T0 + 61_000);
    assert.equal((await entriesOf('unread')).length, 0);
    assert.equal((await entriesOf('history')).length, 2);
  });

  it('a sign-out ends the conversation at the next round; a later message is a new conversation, a second item', async () => {
    await writeHistoryBatch(sql, [text('first', T0)]);
    clock = T0 + 1000;
    await worker.signedOut(BOB);
    assert.equal((await entriesOf('history')).length, 2);
    await writeHistoryBatch(sql, [text('second', T0 + 2000)]);
    await worker.round(T0 + 120_000);
    assert.equal((await entriesOf('history')).length, 4);
    assert.deepEqual((await listConversations(sql, ALICE, 0)).map((c) => c.closeReason).sort(), ['idle', 'signed-out']);
  });

  it('a sign-out with nothing to end writes nothing (no trace, no transaction); one with something still does', async () => {
    await writeHistoryBatch(sql, [text('first', T0)]);
    clock = T0 + 1000;
    const traceRows = async () => ((await sql.get<{ n: number | string }>('SELECT count(*) AS n FROM trace_events')) as { n: number | string }).n;
    await worker.round(clock); // the first round's housekeeping (forgetting closed conversations) done
    const before = Number(await traceRows());
    const transaction = sql.transaction.bind(sql);
    let transactions = 0;
    sql.transaction = ((fn: Parameters<typeof transaction>[0], options?: Parameters<typeof transaction>[1]) => {
      transactions++;
      return transaction(fn, options);
    }) as typeof sql.transaction;
    await worker.signedOut('carol@example.com'); // in no conversation
    assert.equal(transactions, 0, 'no write transaction');
    assert.equal(Number(await traceRows()), before);
    assert.deepEqual((await listConversations(sql, ALICE, 0)).map((c) => c.state), ['open']);
    await worker.signedOut(BOB);
    assert.equal(transactions, 1);
    assert.ok(Number(await traceRows()) > before, 'the signed-out step is traced');
    assert.equal((await entriesOf('history')).length, 2);
  });
});
});
