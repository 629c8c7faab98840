// `parley backup` and `parley restore` copy the SQLite file of a data directory: on a PostgreSQL
// database (a config's `database`, or --database) they refuse, naming PostgreSQL's own tools. The
// copies themselves are tested end to end (test/e2e/backup-restore.test.ts).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { BackupDefaults } from '../../src/server/backup-cli.ts';
import { EXIT, runBackupCommand, runRestoreCommand } from '../../src/server/backup-cli.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-backup-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
const CLUSTER = 'postgres://parley:s3cret-pw@db.example.com/parley';

function defaults(database: string | null): BackupDefaults & { configs: string[] } {
  const configs: string[] = [];
  return {
    configs,
    dataDir: join(root, 'default'),
    storageOf(file) {
      configs.push(file);
      return { dataDir: join(root, 'configured'), database };
    },
  };
}

async function run(command: typeof runBackupCommand, args: string[], d: BackupDefaults) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await command(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, d);
  return { code, out, error: err.join('\n') };
}

describe('parley backup and restore on a PostgreSQL database', () => {
  it("refuse a config whose database is PostgreSQL's (exit 1), naming pg_dump and pg_restore, never the password", async () => {
    const d = defaults(CLUSTER);
    const backup = await run(runBackupCommand, ['--to', join(root, 'copy.db'), '--config', 'cluster.json'], d);
    assert.equal(backup.code, EXIT.failed);
    assert.equal(backup.error, "parley backup: postgres://parley:***@db.example.com/parley (the database of cluster.json) is a PostgreSQL database, which parley backup (a copy of the SQLite file of a data directory) cannot copy; back it up with PostgreSQL's own tools: pg_dump --format=custom --file=FILE DATABASE-URL");
    assert.deepEqual(backup.out, []);
    assert.equal(existsSync(join(root, 'copy.db')), false);
    const restore = await run(runRestoreCommand, [join(root, 'copy.db'), '--config', 'cluster.json', '--force'], d);
    assert.equal(restore.code, EXIT.failed);
    assert.match(restore.error, /^parley restore: postgres:\/\/parley:\*\*\*@db\.example\.com\/parley \(the database of cluster\.json\) is a PostgreSQL database, .*restore it with PostgreSQL's own tools: pg_restore --dbname=DATABASE-URL FILE/);
    assert.deepEqual(d.configs, ['cluster.json', 'cluster.json']);
    assert.equal(existsSync(join(root, 'configured')), false, 'nothing made in the data directory');
    for (const r of [backup, restore]) assert.doesNotMatch(r.error, /s3cret-pw/);
  });

  it('refuse --database the same way; both --data-dir and --database, or an address that is not PostgreSQL, are usage errors', async () => {
    const d = defaults(null);
    const backup = await run(runBackupCommand, ['--to', join(root, 'copy.db'), '--database', CLUSTER], d);
    assert.equal(backup.code, EXIT.failed);
    assert.match(backup.error, /^parley backup: postgres:\/\/parley:\*\*\*@db\.example\.com\/parley is a PostgreSQL database, .*pg_dump/);
    const restore = await run(runRestoreCommand, [join(root, 'copy.db'), '--database', CLUSTER], d);
    assert.equal(restore.code, EXIT.failed);
    assert.match(restore.error, /pg_restore/);
    const both = await run(runBackupCommand, ['--to', join(root, 'copy.db'), '--data-dir', root, '--database', CLUSTER], d);
    assert.equal(both.code, EXIT.usage);
    assert.match(both.error, /give --data-dir DIR \(SQLite in that directory\) or --database postgres:\/\/… \(PostgreSQL\), not both/);
    const notPostgres = await run(runRestoreCommand, [join(root, 'copy.db'), '--database', 'mysql://db/parley'], d);
    assert.equal(notPostgres.code, EXIT.usage);
    assert.match(notPostgres.error, /--database must be a PostgreSQL address/);
  });
});
