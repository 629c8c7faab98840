// The Sql interface on both engines: parameters, values, transactions and savepoints, the
// serialisation of transactions on SQLite's one connection, and migrations per engine.

import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import type { MigrationSet, SqlDatabase } from '../../src/storage/index.ts';
import { isUniqueViolation, listAppliedMigrations, migrate, StorageError } from '../../src/storage/index.ts';
import { numberPlaceholders } from '../../src/storage/sql.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

const TABLE: MigrationSet = {
  capability: 'sample',
  migrations: [
    {
      id: '001-items',
      up: {
        sqlite: 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, body BLOB) STRICT;',
        postgres: 'CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, size BIGINT NOT NULL, body BYTEA);',
      },
    },
    { id: '002-index', up: 'CREATE INDEX items_size ON items (size);' },
  ],
};

describe('numberPlaceholders', () => {
  it('numbers ? outside quotes and comments', () => {
    assert.equal(numberPlaceholders("SELECT ?, '?', \"a?\", ? -- ?\n, /* ? */ ?"), "SELECT $1, '?', \"a?\", $2 -- ?\n, /* ? */ $3");
    assert.equal(numberPlaceholders("WHERE a = 'it''s ?' AND b = ?"), "WHERE a = 'it''s ?' AND b = $1");
  });
});

after(() => closeTestPostgres());

for (const engine of ENGINES) {
  describe(`Sql on ${engine.name}`, () => {
    let sql: SqlDatabase;
    beforeEach(async () => {
      sql = await engine.open();
      await migrate(sql, [TABLE]);
    });
    afterEach(() => sql.close());

    it('binds and reads integers beyond 32 bits, text and bytes; counts changes', async () => {
      await sql.run('INSERT INTO items (id, name, size, body) VALUES (?, ?, ?, ?)', [1, 'a?b', 2 ** 41, Buffer.from('hi')]);
      const row = await sql.get<{ id: number; name: string; size: number; body: Uint8Array }>('SELECT id, name, size, body FROM items WHERE name = ?', ['a?b']);
      assert.equal(row?.size, 2 ** 41);
      assert.equal(typeof row?.id, 'number');
      assert.equal(Buffer.from(row?.body ?? []).toString(), 'hi');
      assert.equal((await sql.get<{ n: number }>('SELECT count(*) AS n FROM items'))?.n, 1);
      assert.deepEqual(await sql.run('UPDATE items SET size = size + 1 WHERE id > ?', [0]), { changes: 1 });
      assert.equal(await sql.get('SELECT id FROM items WHERE id = ?', [2]), undefined);
    });

    it('commits a transaction, rolls one back on a throw, and a savepoint alone', async () => {
      await sql.transaction(async (tx) => {
        assert.equal(tx.inTransaction, true);
        await tx.run('INSERT INTO items (id, name, size) VALUES (?, ?, ?)', [1, 'kept', 1]);
        await assert.rejects(
          tx.transaction(async (sp) => {
            await sp.run('INSERT INTO items (id, name, size) VALUES (?, ?, ?)', [2, 'dropped', 1]);
            throw new Error('undo the savepoint');
          }),
        );
      });
      await assert.rejects(
        sql.transaction(async (tx) => {
          await tx.run('INSERT INTO items (id, name, size) VALUES (?, ?, ?)', [3, 'lost', 1]);
          throw new Error('undo all');
        }),
        /undo all/,
      );
      assert.deepEqual((await sql.all<{ name: string }>('SELECT name FROM items ORDER BY id')).map((r) => r.name), ['kept']);
    });

    it('tells a unique violation apart', async () => {
      await sql.run('INSERT INTO items (id, name, size) VALUES (?, ?, ?)', [1, 'x', 1]);
      const error = await sql.run('INSERT INTO items (id, name, size) VALUES (?, ?, ?)', [2, 'x', 1]).then(() => undefined, (e: unknown) => e);
      assert.equal(isUniqueViolation(error), true);
      assert.equal(isUniqueViolation(new Error('other')), false);
    });

    it('refuses a transaction handle used after its transaction ended', async () => {
      let kept: SqlDatabase | undefined;
      await sql.transaction(async (tx) => {
        kept = tx as SqlDatabase;
      });
      await assert.rejects(kept!.get('SELECT 1 AS x'), (e: unknown) => e instanceof StorageError && e.code === 'TRANSACTION_ENDED');
    });

    it('runs concurrent transactions one after the other, each seeing the last one committed', async () => {
      await sql.run('INSERT INTO items (id, name, size) VALUES (?, ?, ?)', [1, 'counter', 0]);
      await Promise.all(
        Array.from({ length: 5 }, () =>
          sql.transaction(async (tx) => {
            const row = await tx.get<{ size: number }>('SELECT size FROM items WHERE id = 1');
            await new Promise((r) => setTimeout(r, 5));
            await tx.run('UPDATE items SET size = ? WHERE id = 1', [(row?.size ?? 0) + 1]);
          }),
        ),
      );
      assert.equal((await sql.get<{ size: number }>('SELECT size FROM items WHERE id = 1'))?.size, 5);
    });

    it('applies migrations once, records them, and refuses a changed one', async () => {
      assert.deepEqual(await migrate(sql, [TABLE]), []);
      assert.deepEqual((await listAppliedMigrations(sql)).map((m) => `${m.capability}/${m.id}`), ['sample/001-items', 'sample/002-index']);
      const changed: MigrationSet = { capability: 'sample', migrations: [TABLE.migrations[0]!, { id: '002-index', up: 'CREATE INDEX items_name ON items (name);' }] };
      await assert.rejects(migrate(sql, [changed]), (e: unknown) => e instanceof StorageError && e.code === 'MIGRATION_CHANGED');
    });

    it('applies none of a run whose last migration fails', async () => {
      const more: MigrationSet = { capability: 'more', migrations: [{ id: '001', up: 'CREATE TABLE more (x INTEGER);' }, { id: '002', up: 'CREATE TABLE broken (;' }] };
      await assert.rejects(migrate(sql, [more]), (e: unknown) => e instanceof StorageError && e.code === 'MIGRATION_FAILED' && /more\/002/.test(e.message));
      assert.deepEqual((await listAppliedMigrations(sql)).map((m) => m.capability), ['sample', 'sample']);
    });
  });
}
