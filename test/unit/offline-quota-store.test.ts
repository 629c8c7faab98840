// What the database holds for the spool's quotas, on both engines: the undelivered totals per pair
// (of the quotas' kinds only), the releases a purge records for the running server, and the
// refusals per user and reason.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { OFFLINE_MIGRATIONS } from '../../src/offline/index.ts';
import { forgetReleases, lastRelease, listRefusals, recordRefusal, recordRelease, releasesAfter, undeliveredTotals } from '../../src/offline/quota-store.ts';
import { markDelivered, spoolMessages } from '../../src/offline/spool.ts';
import type { SpoolRequest } from '../../src/offline/spool.ts';
import { TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

after(() => closeTestPostgres());

const req = (sender: string, recipient: string, bytes: number, over: Partial<SpoolRequest> = {}): SpoolRequest => ({
  sender,
  recipient,
  callId: `c-${Math.random()}`,
  contentType: 'text/plain',
  body: new Uint8Array(bytes).fill(0x61),
  receivedAt: 1_000_000,
  pickupDelayMs: 120_000,
  maxAgeMs: 86_400_000,
  why: 'not signed in',
  gate: {},
  ...over,
});

for (const engine of ENGINES) {
  describe(`the quotas' rows on ${engine.name}`, () => {
    let sql: SqlDatabase;
    beforeEach(async () => {
      sql = await engine.open();
      await migrate(sql, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
    });
    afterEach(() => sql.close());

    it('sums what each pair has undelivered, of the quotas\' kinds only, as integers', async () => {
      const receipts = await sql.transaction((tx) => spoolMessages(tx, [req('a@x', 'b@x', 10), req('a@x', 'b@x', 5), req('a@x', 'c@x', 7), req('a@x', 'b@x', 100, { kind: 'unread' })]));
      await markDelivered(sql, receipts[2]?.entryId ?? '', 2_000_000);
      assert.deepEqual((await undeliveredTotals(sql)).map((r) => ({ ...r })), [{ sender: 'a@x', recipient: 'b@x', messages: 2, bytes: 15 }]);
    });

    it('records releases in order, reads those after a position, forgets those applied', async () => {
      assert.equal(await lastRelease(sql), 0);
      await recordRelease(sql, { sender: 'a@x', recipient: 'b@x', messages: 2, bytes: 20 });
      await recordRelease(sql, { sender: 'c@x', recipient: 'b@x', messages: 1, bytes: 5 });
      const all = await releasesAfter(sql, 0);
      assert.deepEqual(all.map((r) => [r.sender, r.messages, r.bytes]), [['a@x', 2, 20], ['c@x', 1, 5]]);
      const first = all[0]?.seq ?? 0;
      assert.equal(await lastRelease(sql), all[1]?.seq);
      assert.deepEqual((await releasesAfter(sql, first)).map((r) => r.sender), ['c@x']);
      await forgetReleases(sql, first);
      assert.deepEqual((await releasesAfter(sql, 0)).map((r) => r.sender), ['c@x']);
    });

    it('counts refusals per user and reason, keeping the last one\'s details', async () => {
      await recordRefusal(sql, { address: 'a@x', reason: 'sender-bytes', at: 1, peer: 'b@x', warning: 'first' });
      await recordRefusal(sql, { address: 'a@x', reason: 'sender-bytes', at: 2, peer: 'c@x', warning: 'second' });
      await recordRefusal(sql, { address: 'b@x', reason: 'recipient-messages', at: 3, peer: 'a@x', warning: 'third' });
      assert.deepEqual(await listRefusals(sql), [
        { address: 'b@x', reason: 'recipient-messages', count: 1, lastAt: 3, lastPeer: 'a@x', lastWarning: 'third' },
        { address: 'a@x', reason: 'sender-bytes', count: 2, lastAt: 2, lastPeer: 'c@x', lastWarning: 'second' },
      ]);
      assert.deepEqual((await listRefusals(sql, 'a@x')).map((r) => r.count), [2]);
    });
  });
}
