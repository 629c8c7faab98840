// insertRows: many rows to a statement, in order; an `INSERT OR ROLLBACK` head (SQLite: a conflict
// ends the whole transaction) must leave nothing behind, not even the chunks after the failed one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { insertRows, openMemoryDatabase, sqliteSql } from '../../src/storage/index.ts';

function table() {
  const sql = sqliteSql(openMemoryDatabase());
  sql.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  return sql;
}
const rowsOf = (ids: number[]) => ids.map((id) => [id, `v${id}`]);

describe('insertRows', () => {
  it('inserts every row in order, 32 to a statement and the rest in a shorter one', async () => {
    const sql = table();
    const ids = Array.from({ length: 70 }, (_, i) => i + 1);
    await sql.transaction((tx) => insertRows(tx, 'INSERT INTO t (id, v)', rowsOf(ids)));
    const got = sql.db.prepare('SELECT id, v FROM t ORDER BY rowid').all() as Array<{ id: number; v: string }>;
    assert.deepEqual(got.map((r) => r.id), ids);
    assert.equal(got[69]?.v, 'v70');
  });

  it('with INSERT OR ROLLBACK, a conflict in the first chunk leaves no row of the later chunks', async () => {
    const sql = table();
    sql.db.exec("INSERT INTO t (id, v) VALUES (5, 'before')");
    const ids = Array.from({ length: 70 }, (_, i) => i + 1); // 5 conflicts, in the first chunk of 32
    await assert.rejects(sql.transaction(async (tx) => {
      await tx.run("INSERT INTO t (id, v) VALUES (1000, 'same transaction')");
      await insertRows(tx, 'INSERT OR ROLLBACK INTO t (id, v)', rowsOf(ids));
    }));
    const got = sql.db.prepare('SELECT id, v FROM t').all() as Array<{ id: number; v: string }>;
    assert.deepEqual(got.map((r) => [r.id, r.v]), [[5, 'before']], 'the transaction undone, nothing committed on its own afterwards');
    assert.equal(sql.db.isTransaction, false);
  });
});
