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
    assert.deepEqual({ ...gc.stats, commitMs: 0, maxCommitMs: 0 }, { batches: 1, items: 3, maxBatch: 3, commitMs: 0, maxCommitMs: 0, sizes: { '2-3': 1 } });
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

  it('with a commit that finishes later: one batch at a time, and what arrives meanwhile is the next batch', async () => {
    const batches: number[][] = [];
    const landings: Array<() => void> = [];
    const gc = new GroupCommit<number, number>({
      windowMs: 0,
      maxBatch: 3,
      commit: (items) => new Promise<number[]>((resolve) => {
        batches.push([...items]);
        landings.push(() => resolve(items.map((i) => i * 10)));
      }),
    });
    const first = gc.submit(1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1]], 'the first batch is being written');
    const later = [2, 3, 4, 5].map((i) => gc.submit(i));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1]], 'nothing else is written while it is');
    landings.shift()?.();
    assert.equal(await first, 10);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1], [2, 3, 4]], 'the waiting ones go next, a full batch at most');
    landings.shift()?.();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1], [2, 3, 4], [5]]);
    const closed = gc.close();
    landings.shift()?.();
    await closed;
    assert.deepEqual(await Promise.all(later), [20, 30, 40, 50]);
    assert.deepEqual([gc.stats.batches, gc.stats.items, gc.stats.maxBatch, gc.stats.sizes], [3, 5, 3, { '1': 2, '2-3': 1 }]);
    assert.ok(gc.stats.commitMs >= gc.stats.maxCommitMs && gc.stats.maxCommitMs > 0, 'commit times are from hand-over to landing');
    await assert.rejects(gc.submit(6), /closed/);
  });

  it('with a commit that fails later: that batch is refused, the next is still written', async () => {
    let calls = 0;
    const gc = new GroupCommit<number, number>({
      windowMs: 0,
      maxBatch: 1,
      commit: async (items) => {
        calls++;
        if (calls === 1) throw new Error('disk full');
        return [...items];
      },
    });
    const outcomes = await Promise.allSettled([gc.submit(1), gc.submit(2)]);
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'fulfilled']);
    await gc.close();
  });
});
