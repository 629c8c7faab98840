import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { OFFLINE_MIGRATIONS } from '../../src/offline/index.ts';
import { entryMessages } from '../../src/offline/spool.ts';
import type { SpoolRequest } from '../../src/offline/spool.ts';
import { openSpoolWriter, threadSpoolWriter, writeBatch } from '../../src/offline/spool-writer.ts';
import type { SpoolJob } from '../../src/offline/spool-writer.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import { DATABASE_FILE, migrate, openDatabase, sqliteSql } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-spool-writer-'));
after(() => rmSync(root, { recursive: true, force: true }));
after(() => closeTestPostgres());

function req(over: Partial<SpoolRequest> = {}): SpoolRequest {
  return {
    sender: 'alice@parley.test',
    recipient: 'bob@parley.test',
    callId: 'call-1',
    contentType: 'text/plain',
    body: new TextEncoder().encode('hello'),
    receivedAt: 1_000_000,
    pickupDelayMs: 120_000,
    maxAgeMs: 86_400_000,
    why: 'not signed in',
    gate: { EnableOfflineIm: 'Global', EnableIMAutoArchiving: 'Global' },
    ...over,
  };
}

const refusal: SpoolJob = { kind: 'trace', event: { traceId: null, callId: 'call-x', at: 1_000_000, step: 'gated', detail: { decision: 'refused' } } };

describe('spool writer', () => {
  it('in a thread: receipts in job order, committed before they come back, seen at once by the main connection', async () => {
    const dir = join(root, 'thread');
    const db = sqliteSql(openDatabase(dir));
    await migrate(db, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
    const writer = openSpoolWriter(db);
    assert.equal(db.location, join(dir, DATABASE_FILE));
    // the body is a view of a larger buffer, as a datagram's body is: only its bytes are stored
    const datagram = Buffer.from('MESSAGE …\r\n\r\nhi there');
    const body = datagram.subarray(datagram.length - 8);
    const results = await writer.write([{ kind: 'spool', request: req({ body }) }, refusal, { kind: 'spool', request: req({ callId: 'call-2', body: new TextEncoder().encode('again') }) }]);
    assert.equal(results.length, 3);
    const [first, trace, second] = results;
    assert.ok(first && second);
    assert.equal(trace, null);
    assert.equal(second.entryId, first.entryId, 'the second message joined the first one\'s entry');
    assert.deepEqual([first.seq, second.seq, first.joined, second.joined], [1, 2, false, true]);
    const messages = await entryMessages(db, first.entryId);
    assert.deepEqual(messages.map((m) => Buffer.from(m.body).toString()), ['hi there', 'again']);
    assert.ok((await readTrace(db, first.entryId)).some((step) => step.step === 'received'));
    await writer.close();
    await db.close();
  });

  it('in a thread: a batch that fails is refused with the reason, and the next one is written', async () => {
    const dir = join(root, 'failing');
    const db = sqliteSql(openDatabase(dir));
    await migrate(db, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
    await db.exec('CREATE TRIGGER no_bob BEFORE INSERT ON spool_entries WHEN NEW.recipient = \'bob@parley.test\' BEGIN SELECT RAISE(ABORT, \'bob is full\'); END');
    const writer = openSpoolWriter(db);
    await assert.rejects(writer.write([{ kind: 'spool', request: req() }]), /bob is full/);
    const [receipt] = await writer.write([{ kind: 'spool', request: req({ recipient: 'carol@parley.test' }) }]);
    assert.ok(receipt);
    assert.equal((await entryMessages(db, receipt.entryId)).length, 1);
    await writer.close();
    await db.close();
  });

  it('in a thread that cannot open the database: each write is refused, saying why, and a later one tries again', async () => {
    const dir = join(root, 'late');
    const writer = threadSpoolWriter(join(dir, DATABASE_FILE));
    await assert.rejects(writer.write([{ kind: 'spool', request: req() }]), /spool writer thread failed: .*(unable to open|DATABASE_OPEN_FAILED|cannot open)/);
    await assert.rejects(writer.write([{ kind: 'spool', request: req() }]), /spool writer thread failed/);
    // the directory and the database appear (the operator fixed it): the next write starts a new thread that can
    const db = sqliteSql(openDatabase(dir));
    await migrate(db, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
    const [receipt] = await writer.write([{ kind: 'spool', request: req() }]);
    assert.ok(receipt);
    assert.equal((await entryMessages(db, receipt.entryId)).length, 1);
    await writer.close();
    await assert.rejects(writer.write([{ kind: 'spool', request: req() }]), /closed/);
    await db.close();
  });

});

for (const engine of ENGINES) {
  describe(`spool writer in the loop on ${engine.name}`, () => {
    it('the same batch, the same receipts, committed before they come back', async () => {
      const db = await engine.open();
      await migrate(db, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
      const writer = openSpoolWriter(db);
      const results = await writer.write([{ kind: 'spool', request: req() }, refusal, { kind: 'spool', request: req({ callId: 'call-2' }) }]);
      assert.equal(results[1], null);
      assert.equal(results[2]?.entryId, results[0]?.entryId);
      assert.equal((await entryMessages(db, results[0]?.entryId ?? '')).length, 2);
      assert.deepEqual(await writeBatch(db, [refusal]), [null]);
      assert.equal((await readTrace(db, 'call-x')).length, 2);
      await writer.close();
      await assert.rejects(writer.write([refusal]), /closed/);
      await db.close();
    });
  });
}
