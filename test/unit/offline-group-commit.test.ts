import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../src/offline/group-commit.ts';

describe('GroupCommit', () => {
  it('commits what arrives within the window as one batch, results in order', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, string>({ windowMs: 5, maxBatch: 100, commit: (items) => (batches.push([...items]), items.map((i) => `r${i}`)) });
    const results = await Promise.all([1, 2, 3].map((i) => gc.submit(i)));
    assert.deepEqual(results, ['r1', 'r2', 'r3']);
    assert.deepEqual(batches, [[1, 2, 3]]);
    assert.deepEqual(gc.stats, { batches: 1, items: 3 });
  });

  it('a full batch is committed at once', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>({ windowMs: 10_000, maxBatch: 2, commit: (items) => (batches.push([...items]), [...items]) });
    const a = gc.submit(1);
    const b = gc.submit(2);
    assert.deepEqual(await Promise.all([a, b]), [1, 2]);
    assert.deepEqual(batches, [[1, 2]]);
    gc.close();
  });

  it('nobody hears "stored" when the commit fails: every submitter of the batch is rejected', async () => {
    const gc = new GroupCommit<number, number>({ windowMs: 0, maxBatch: 10, commit: () => { throw new Error('disk full'); } });
    const outcomes = await Promise.allSettled([gc.submit(1), gc.submit(2)]);
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected']);
  });

  it('close commits what is pending, then refuses', async () => {
    const gc = new GroupCommit<number, number>({ windowMs: 10_000, maxBatch: 10, commit: (items) => [...items] });
    const pending = gc.submit(7);
    gc.close();
    assert.equal(await pending, 7);
    await assert.rejects(gc.submit(8), /closed/);
  });
});
