// The Sql interface on both engines: parameters, values, transactions and savepoints, the
// serialisation of transactions on SQLite's one connection, and migrations per engine.

import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import type { MigrationSet, SqlDatabase } from '../../src/storage/index.ts';
import { isUniqueViolation, listAppliedMigrations, migrate, openPostgres, StorageError, VersionedCache } from '../../src/storage/index.ts';
import { numberPlaceholders } from '../../src/storage/sql.ts';
import { closeTestPostgres, ENGINES, freshPostgresDatabase } from '../harness/engines.ts';

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

describe('VersionedCache on PostgreSQL', { skip: ENGINES.some((e) => e.name === 'postgres') ? false : 'PostgreSQL is not among PARLEY_TEST_ENGINES' }, () => {
  it('reads the version again as soon as another connection\'s change is NOTIFYed, long before its check interval', async () => {
    const fresh = await freshPostgresDatabase();
    const node = await openPostgres(fresh.url, { max: 2 });
    const other = await openPostgres(fresh.url, { max: 1 });
    try {
      await node.exec(`CREATE TABLE names (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE names_version (v BIGINT NOT NULL); INSERT INTO names_version VALUES (0);
CREATE FUNCTION names_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE names_version SET v = v + 1; PERFORM pg_notify('parley_version', 'names_version'); RETURN NULL; END $$;
CREATE TRIGGER names_bump AFTER INSERT OR UPDATE OR DELETE ON names FOR EACH STATEMENT EXECUTE FUNCTION names_bump();
INSERT INTO names VALUES ('a', 'first');`);
      // an hour between checks: only the notification can make the cache look again
      const cache = new VersionedCache<string | undefined>(node, 'SELECT v FROM names_version', { checkEveryMs: 3_600_000 });
      const lookup = () => cache.get('a', async () => (await node.get<{ v: string }>('SELECT v FROM names WHERE k = ?', ['a']))?.v);
      assert.equal(await lookup(), 'first');
      await new Promise((r) => setTimeout(r, 200)); // the LISTEN is in place
      await other.run('UPDATE names SET v = ? WHERE k = ?', ['second', 'a']);
      const deadline = Date.now() + 10_000;
      let seen = await lookup();
      while (seen !== 'second' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        seen = await lookup();
      }
      assert.equal(seen, 'second');
    } finally {
      await other.close();
      await node.close();
      await fresh.drop();
    }
  });
});
