import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  StorageError,
  appliedMigrations,
  openDatabase,
  openMemoryDatabase,
  runMigrations,
  transaction,
} from '../../src/storage/index.ts';
import type { Database, MigrationSet } from '../../src/storage/index.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-storage-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${++dirs}`, 'nested');

const pragma = (db: Database, name: string): unknown => Object.values(db.prepare(`PRAGMA ${name}`).get() ?? {})[0];
const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof StorageError, `expected a StorageError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
};

describe('openDatabase', () => {
  it('creates the data directory (0700) and parley.db (0600)', () => {
    const dir = freshDir();
    const db = openDatabase(dir);
    db.close();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'parley.db')).mode & 0o777, 0o600);
  });

  it('sets WAL, synchronous=FULL, foreign keys and a busy timeout', () => {
    const db = openDatabase(freshDir());
    try {
      assert.equal(pragma(db, 'journal_mode'), 'wal');
      assert.equal(pragma(db, 'synchronous'), 2); // FULL
      assert.equal(pragma(db, 'foreign_keys'), 1);
      assert.equal(pragma(db, 'busy_timeout'), 5000);
    } finally {
      db.close();
    }
    const quick = openDatabase(freshDir(), { busyTimeoutMs: 250 });
    assert.equal(pragma(quick, 'busy_timeout'), 250);
    quick.close();
  });

  it('enforces foreign keys', () => {
    const db = openMemoryDatabase();
    db.exec('CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (a_id INTEGER REFERENCES a(id))');
    assert.throws(() => db.exec('INSERT INTO b VALUES (42)'), /FOREIGN KEY/);
    db.close();
  });

  it('reopens an existing database', () => {
    const dir = freshDir();
    const first = openDatabase(dir);
    first.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    first.close();
    const second = openDatabase(dir);
    assert.deepEqual(second.prepare('SELECT x FROM t').all().map((r) => r.x), [1]);
    second.close();
  });

  it('says so when the data directory is a file', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    assert.equal(codeOf(() => openDatabase(file)), 'DATA_DIR_UNUSABLE');
    assert.equal(codeOf(() => openDatabase(join(file, 'below'))), 'DATA_DIR_UNUSABLE');
  });
});

describe('transaction', () => {
  const setup = () => {
    const db = openMemoryDatabase();
    db.exec('CREATE TABLE t (x INTEGER)');
    const count = () => Number(db.prepare('SELECT count(*) AS n FROM t').get()?.n);
    return { db, count };
  };

  it('commits and returns the result', () => {
    const { db, count } = setup();
    const result = transaction(db, () => {
      db.exec('INSERT INTO t VALUES (1)');
      return 'done';
    });
    assert.equal(result, 'done');
    assert.equal(count(), 1);
    assert.equal(db.isTransaction, false);
  });

  it('rolls back and rethrows', () => {
    const { db, count } = setup();
    assert.throws(
      () =>
        transaction(db, () => {
          db.exec('INSERT INTO t VALUES (1)');
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(count(), 0);
    assert.equal(db.isTransaction, false);
  });

  it('nests as a savepoint: an inner failure undoes only the inner work', () => {
    const { db, count } = setup();
    transaction(db, () => {
      db.exec('INSERT INTO t VALUES (1)');
      assert.throws(() =>
        transaction(db, () => {
          db.exec('INSERT INTO t VALUES (2)');
          throw new Error('inner');
        }),
      );
      transaction(db, () => db.exec('INSERT INTO t VALUES (3)'));
    });
    assert.deepEqual(db.prepare('SELECT x FROM t ORDER BY x').all().map((r) => r.x), [1, 3]);
    assert.equal(count(), 2);
  });

  it('refuses an asynchronous callback and rolls back', () => {
    const { db, count } = setup();
    const code = codeOf(() =>
      transaction(db, async () => {
        db.exec('INSERT INTO t VALUES (1)');
      }),
    );
    assert.equal(code, 'ASYNC_TRANSACTION');
    assert.equal(count(), 0);
  });
});

describe('migrations', () => {
  const set = (capability: string, ...ups: Array<[string, string]>): MigrationSet => ({ capability, migrations: ups.map(([id, up]) => ({ id, up })) });
  const v1 = set('notes', ['001-notes', 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)']);
  const v2 = set('notes', ['001-notes', 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)'], ['002-author', 'ALTER TABLE notes ADD COLUMN author TEXT']);

  it('applies pending migrations once and records them', () => {
    const db = openMemoryDatabase();
    let clock = 1000;
    const first = runMigrations(db, [v1], () => clock++);
    assert.deepEqual(first.map((m) => `${m.capability}/${m.id}`), ['notes/001-notes']);
    assert.deepEqual(runMigrations(db, [v1]), [], 'idempotent');
    const second = runMigrations(db, [v2], () => clock++);
    assert.deepEqual(second.map((m) => m.id), ['002-author']);
    db.exec("INSERT INTO notes (body, author) VALUES ('hi', 'alice')");
    assert.deepEqual(
      appliedMigrations(db).map((m) => [m.capability, m.id, m.appliedAt.getTime()]),
      [
        ['notes', '001-notes', 1000],
        ['notes', '002-author', 1001],
      ],
    );
  });

  it('keeps capabilities apart', () => {
    const db = openMemoryDatabase();
    runMigrations(db, [v1, set('other', ['001-notes', 'CREATE TABLE other (x)'])]);
    assert.equal(appliedMigrations(db).length, 2);
  });

  it('reports nothing applied on a fresh database', () => {
    assert.deepEqual(appliedMigrations(openMemoryDatabase()), []);
  });

  it('refuses a database migrated by a newer version', () => {
    const db = openMemoryDatabase();
    runMigrations(db, [v2]);
    assert.equal(codeOf(() => runMigrations(db, [v1])), 'MIGRATION_UNKNOWN');
  });

  it('refuses an applied migration whose SQL changed', () => {
    const db = openMemoryDatabase();
    runMigrations(db, [v1]);
    const edited = set('notes', ['001-notes', 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)']);
    assert.equal(codeOf(() => runMigrations(db, [edited])), 'MIGRATION_CHANGED');
  });

  it('refuses a migration inserted before applied ones', () => {
    const db = openMemoryDatabase();
    runMigrations(db, [set('notes', ['001', 'CREATE TABLE a (x)'], ['003', 'CREATE TABLE c (x)'])]);
    const inserted = set('notes', ['001', 'CREATE TABLE a (x)'], ['002', 'CREATE TABLE b (x)'], ['003', 'CREATE TABLE c (x)']);
    assert.equal(codeOf(() => runMigrations(db, [inserted])), 'MIGRATION_INVALID');
  });

  it('refuses ill-formed migration lists', () => {
    const db = openMemoryDatabase();
    assert.equal(codeOf(() => runMigrations(db, [set('notes', ['001', 'SELECT 1'], ['001', 'SELECT 2'])])), 'MIGRATION_INVALID');
    assert.equal(codeOf(() => runMigrations(db, [v1, v1])), 'MIGRATION_INVALID');
    assert.equal(codeOf(() => runMigrations(db, [set('Bad Name', ['001', 'SELECT 1'])])), 'MIGRATION_INVALID');
    assert.equal(codeOf(() => runMigrations(db, [set('notes', ['', 'SELECT 1'])])), 'MIGRATION_INVALID');
  });

  it('applies nothing of a run when one migration fails', () => {
    const db = openMemoryDatabase();
    const broken = set('notes', ['001', 'CREATE TABLE a (x)'], ['002', 'CREATE TABLE oops (']);
    let error: unknown;
    try {
      runMigrations(db, [broken]);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof StorageError && error.code === 'MIGRATION_FAILED');
    assert.match(error.message, /notes\/002/);
    assert.deepEqual(appliedMigrations(db), []);
    assert.equal(db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'a'").get()?.n, 0);
  });

  it('is safe when several processes migrate the same file at once', async () => {
    const dir = freshDir();
    const storage = new URL('../../src/storage/index.ts', import.meta.url).href;
    const script = join(root, 'migrate-race.ts');
    // The first migration is not idempotent (CREATE TABLE without IF NOT EXISTS, INSERT) and slow
    // enough for the processes to overlap.
    writeFileSync(
      script,
      `import { openDatabase, runMigrations } from ${JSON.stringify(storage)};
const db = openDatabase(process.argv[2] ?? '');
const applied = runMigrations(db, [{ capability: 'race', migrations: [
  { id: '001', up: 'CREATE TABLE t (x INTEGER); CREATE TABLE filler (x INTEGER); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) INSERT INTO filler SELECT x FROM c; INSERT INTO t VALUES (1);' },
  { id: '002', up: 'INSERT INTO t VALUES (2);' },
] }]);
db.close();
process.stdout.write(String(applied.length));
`,
    );
    // schema_migrations exists already, so each run starts by reading it: without BEGIN IMMEDIATE
    // the processes would all read, then fail to upgrade to a write (SQLITE_BUSY)
    const seed = openDatabase(dir);
    runMigrations(seed, [{ capability: 'seed', migrations: [{ id: '001', up: 'CREATE TABLE seed (x)' }] }]);
    seed.close();
    const runs = Array.from({ length: 5 }, () => run(process.execPath, [script, dir]));
    const results = await Promise.all(runs);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.equal(results.reduce((sum, r) => sum + Number(r.stdout), 0), 2, 'each migration applied by exactly one process');
    const db = openDatabase(dir);
    assert.deepEqual(db.prepare('SELECT x FROM t ORDER BY x').all().map((r) => r.x), [1, 2]);
    db.close();
  });
});

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
