import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HISTORY_MIGRATIONS } from '../../src/history/index.ts';
import { OFFLINE_MIGRATIONS } from '../../src/offline/index.ts';
import { threadSpoolWriter } from '../../src/offline/spool-writer.ts';
import type { SpoolJob } from '../../src/offline/spool-writer.ts';
import { TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import { DATABASE_FILE, migrate, openDatabase, sqliteSql } from '../../src/storage/index.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-batch-writer-'));
after(() => rmSync(root, { recursive: true, force: true }));

const trace = (callId: string): SpoolJob => ({ kind: 'trace', event: { traceId: null, callId, at: 1_000_000, step: 'gated', detail: { decision: 'refused' } } });

describe('batch writers of one database file (one thread)', () => {
  it('each keeps writing while another leaves; after the last one left, a new writer starts the thread again', async () => {
    const dir = join(root, 'shared');
    const db = sqliteSql(openDatabase(dir));
    await migrate(db, [OFFLINE_MIGRATIONS, TRACE_MIGRATIONS, HISTORY_MIGRATIONS]);
    const file = join(dir, DATABASE_FILE);
    const first = threadSpoolWriter(file);
    const second = threadSpoolWriter(file);
    assert.deepEqual(await Promise.all([first.write([trace('a')]), second.write([trace('b')])]), [[null], [null]]);
    // the first leaves with a batch still in flight: it is answered before the close completes
    const inFlight = first.write([trace('c')]);
    await first.close();
    assert.deepEqual(await inFlight, [null]);
    assert.equal(first.running, false);
    await assert.rejects(first.write([trace('x')]), /spool writer is closed/);
    assert.deepEqual(await second.write([trace('d')]), [null]);
    assert.equal(second.running, true);
    await second.close();
    const third = threadSpoolWriter(file);
    assert.deepEqual(await third.write([trace('e')]), [null]);
    await third.close();
    const rows = await db.all<{ call_id: string }>("SELECT call_id FROM trace_events WHERE step = 'gated' ORDER BY call_id");
    assert.deepEqual(rows.map((r) => r.call_id), ['a', 'b', 'c', 'd', 'e']);
    await db.close();
  });
});
