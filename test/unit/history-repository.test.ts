// Conversation History's repository on both engines: the rows a round reads and writes (due
// unread messages, closable conversations, sign-outs, closing, forgetting), inserted directly as
// the group commit would have made them.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { closable, conversationMessages, dueUnread, endForSignOut, forgetClosed, hasDueWork, listConversations, markClosed, markMissed, stopAwaitingDisplay } from '../../src/history/repository.ts';
import { HISTORY_MIGRATIONS } from '../../src/history/schema.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

const T0 = Date.UTC(2026, 11, 6, 10, 0, 0);
const ALICE = 'alice@parley.test';
const BOB = 'bob@parley.test';

after(() => closeTestPostgres());

for (const engine of ENGINES) {
  describe(`the history repository on ${engine.name}`, () => {
    let sql: SqlDatabase;
    beforeEach(async () => {
      sql = await engine.open();
      await migrate(sql, [HISTORY_MIGRATIONS]);
    });
    afterEach(() => sql.close());

    const conversation = (id: string, endsAt: number) =>
      sql.run("INSERT INTO history_conversations (id, user_a, user_b, state, started_at, last_at, ends_at, message_count) VALUES (?, ?, ?, 'open', ?, ?, ?, 0)", [id, ALICE, BOB, T0, T0, endsAt]);
    const message = (conversationId: string, seq: number, dueAt: number | null, body = 'hi') =>
      sql.run(
        "INSERT INTO history_messages (conversation_id, seq, sender, recipient, call_id, received_at, content_type, body, kind, imdn_message_id, display_due_at) VALUES (?, ?, ?, ?, ?, ?, 'text/plain', ?, 'relayed', ?, ?)",
        [conversationId, seq, ALICE, BOB, `call-${seq}`, T0 + seq, Buffer.from(body), `m${seq}`, dueAt],
      );

    it('finds unread messages once due, and closable conversations only when none awaits its display', async () => {
      await conversation('cv-1', T0 + 60_000);
      await message('cv-1', 1, T0 + 30_000);
      await message('cv-1', 2, null);
      assert.equal(await hasDueWork(sql, T0 + 29_999), false);
      assert.equal(await hasDueWork(sql, T0 + 30_000), true);
      assert.deepEqual((await dueUnread(sql, T0 + 30_000, 10)).map((m) => [m.seq, Buffer.from(m.body ?? []).toString()]), [[1, 'hi']]);
      assert.deepEqual(await closable(sql, T0 + 60_000, 10), [], 'a message still awaits its display');
      await markMissed(sql, 'cv-1', 1, 'sp-x');
      const [closing] = await closable(sql, T0 + 60_000, 10);
      assert.equal(closing?.id, 'cv-1');
      assert.deepEqual((await conversationMessages(sql, 'cv-1')).map((m) => [m.seq, m.kind, m.spoolEntryId, m.body === null]), [[1, 'missed', 'sp-x', true], [2, 'relayed', null, false]]);
    });

    it('a sign-out ends the conversations now and makes the unread messages due; closing keeps the entries and drops the bodies; old closed ones are forgotten', async () => {
      await conversation('cv-1', T0 + 60_000);
      await message('cv-1', 1, T0 + 30_000);
      assert.deepEqual(await endForSignOut(sql, BOB, T0 + 1000), ['cv-1']);
      assert.equal((await dueUnread(sql, T0 + 1000, 10)).length, 1);
      await stopAwaitingDisplay(sql, 'cv-1', 1);
      const [ended] = await listConversations(sql, ALICE, 0);
      assert.deepEqual([ended?.endsAt, ended?.closeReason], [T0 + 1000, 'signed-out']);
      await markClosed(sql, 'cv-1', T0 + 2000, 'idle', [{ owner: ALICE, entry: 'sp-a' }]);
      const [closed] = await listConversations(sql, BOB, 0);
      assert.deepEqual([closed?.state, closed?.closeReason, closed?.entries], ['closed', 'signed-out', [{ owner: ALICE, entry: 'sp-a' }]]);
      assert.equal((await conversationMessages(sql, 'cv-1'))[0]?.body, null);
      assert.equal(await forgetClosed(sql, T0 + 2000, 10), 0);
      assert.equal(await forgetClosed(sql, T0 + 2001, 10), 1);
      assert.deepEqual(await listConversations(sql, ALICE, 0), []);
      assert.deepEqual(await conversationMessages(sql, 'cv-1'), []);
    });
  });
}
