// Conversation History with a partner organisation's user as the peer (issue 15): the local side
// only gets the conversation, by its own settings; the partner's user (no settings here, no
// mailbox) gets nothing, is never looked up in a way that throws, and no display is tracked for
// them. In-memory database, hand-driven clock.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { acrossOrganisations, writeHistoryBatch } from '../../src/history/commit.ts';
import { listConversations } from '../../src/history/repository.ts';
import { HistoryWorker } from '../../src/history/worker.ts';
import { entryMessages, getEntry, listEntries } from '../../src/offline/index.ts';
import { CLIENT_POLICY, createInstance, grantClientPolicy } from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { ALICE, T0, asking, change, enc, logger, prepareHistoryDatabase, text } from './history-fixture.ts';

const DAVE = 'dave@org-b.test';

after(() => closeTestPostgres());

for (const engine of ENGINES) describe(`on ${engine.name}`, () => {
let sql: SqlDatabase;
let worker: HistoryWorker;

beforeEach(async () => {
  sql = await engine.open();
  await prepareHistoryDatabase(sql);
  worker = new HistoryWorker({ sql, logger, now: () => T0, displayName: async (a) => (a === ALICE ? 'Alice Example' : '') });
});
afterEach(() => sql.close());

const entriesOf = async (kind: string) => (await listEntries(sql, {})).filter((e) => e.kind === kind);
const bodies = async (id: string) => (await entryMessages(sql, id)).map((m) => Buffer.from(m.body).toString());

describe('Conversation History with a partner organisation\'s user', () => {
  it('keeps the conversation both ways and gives the local user alone its history item', async () => {
    const summary = await writeHistoryBatch(sql, [text('hi dave', T0, { recipient: DAVE }), text('hi alice', T0 + 1000, { sender: DAVE, recipient: ALICE })]);
    assert.deepEqual(summary, { recorded: 2, displayed: 0, opened: 1 });
    const [c] = await listConversations(sql, ALICE, 0);
    assert.ok(c);
    assert.equal(c.endsAt, T0 + 1000 + 60_000, "the local user's idle timeout alone");
    assert.deepEqual((await worker.round(T0 + 61_000)), { missed: 0, closed: 1, entries: 1 });
    const entries = await entriesOf('history');
    assert.deepEqual(entries.map((e) => [e.sender, e.recipient]), [[ALICE, DAVE]], 'owner alice, peer dave; nothing spooled for dave');
    assert.deepEqual((await bodies(entries[0]?.id ?? '')), ['hi dave', 'hi alice']);
  });

  it('tracks no display for a partner: no unread entry, ever', async () => {
    await writeHistoryBatch(sql, [text('read me', T0, { recipient: DAVE, contentType: 'message/cpim', body: enc(asking('m1', 'read me')) })]);
    const [c] = await listConversations(sql, ALICE, 0);
    const due = await sql.all<{ due: number | null }>('SELECT display_due_at AS due FROM history_messages WHERE conversation_id = ?', [c?.id ?? '']);
    assert.deepEqual(due.map((r) => r.due), [null]);
    assert.deepEqual((await worker.round(T0 + 31_000)), { missed: 0, closed: 0, entries: 0 }, 'past UnreadMissedTimeout (30 s), before the idle end');
    await worker.round(T0 + 61_000);
    assert.equal((await entriesOf('unread')).length, 0);
    assert.equal((await entriesOf('history')).length, 1);
  });

  it('a message kept for e-mail opens nothing alone, and is a note in a conversation going on', async () => {
    await writeHistoryBatch(sql, [text('are you there?', T0, { recipient: DAVE, outcome: 'spooled', entryId: 'sp-email1' })]);
    assert.equal((await listConversations(sql, ALICE, 0)).length, 0, 'alone: the e-mail and its copy are its record');
    await writeHistoryBatch(sql, [text('hi dave', T0 + 1000, { recipient: DAVE }), text('gone?', T0 + 2000, { recipient: DAVE, outcome: 'spooled', entryId: 'sp-email2' })]);
    await worker.round(T0 + 63_000);
    const [entry] = await entriesOf('history');
    assert.ok(entry);
    assert.deepEqual((await bodies(entry.id)), ['hi dave']);
    assert.deepEqual((await getEntry(sql, entry.id)).notes, [`1 message Alice Example sent while ${DAVE} was offline was sent to ${DAVE} as an e-mail`]);
  });

  it('the local user\'s settings alone decide: one who does not archive keeps nothing', async () => {
    await createInstance(sql, CLIENT_POLICY, { scope: 'tag', name: 'NoArchive' }, { EnableIMAutoArchiving: false }, change);
    await grantClientPolicy(sql, ALICE, 'NoArchive', change);
    const summary = await writeHistoryBatch(sql, [text('hi dave', T0, { recipient: DAVE }), text('hi alice', T0 + 1, { sender: DAVE, recipient: ALICE })]);
    assert.deepEqual(summary, { recorded: 0, displayed: 0, opened: 0 });
  });

  it('a removed user of this domain is still no partner: nothing kept', async () => {
    const summary = await writeHistoryBatch(sql, [text('hi', T0, { sender: 'gone@parley.test', recipient: ALICE })]);
    assert.deepEqual(summary, { recorded: 0, displayed: 0, opened: 0 });
    assert.equal(acrossOrganisations('gone@parley.test', ALICE), false);
    assert.equal(acrossOrganisations(DAVE, ALICE), true);
  });
});
});
