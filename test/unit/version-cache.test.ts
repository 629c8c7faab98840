import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NOT_KEPT, openDatabase, sqliteSql, VersionedCache } from '../../src/storage/index.ts';

describe('VersionedCache.peek on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'version-cache-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('gives a kept answer at once, reading the version itself when the interval is over, and leaves it to get while a transaction holds the connection', async () => {
    const sql = sqliteSql(openDatabase(dir));
    const other = sqliteSql(openDatabase(dir));
    try {
      await sql.exec('CREATE TABLE things_version (v INTEGER NOT NULL); INSERT INTO things_version VALUES (0)');
      let clock = 0;
      let loads = 0;
      const cache = new VersionedCache<string>(sql, 'SELECT v FROM things_version', { clock: () => clock, checkEveryMs: 1 });
      const load = async () => `answer ${++loads}`;
      assert.equal(cache.peek('k'), NOT_KEPT, 'nothing kept yet');
      assert.equal(await cache.get('k', load), 'answer 1');
      assert.equal(cache.peek('k'), 'answer 1');
      clock += 5;
      assert.equal(cache.peek('k'), 'answer 1', 'the version read at once, unchanged');
      // another process's change counts from the next look after the interval
      await other.run('UPDATE things_version SET v = v + 1');
      assert.equal(cache.peek('k'), 'answer 1', 'within the interval: the kept answer');
      clock += 5;
      assert.equal(cache.peek('k'), NOT_KEPT, 'the version moved: forgotten');
      assert.equal(await cache.get('k', load), 'answer 2');
      // a transaction of this process holds the connection: its calls wait for it, peek does not read
      clock += 5;
      let commit!: () => void;
      const open = sql.transaction(() => new Promise<void>((resolve) => (commit = resolve)));
      assert.equal(cache.peek('k'), NOT_KEPT, 'no read while the transaction is open');
      const answer = cache.get('k', load);
      commit();
      await open;
      assert.equal(await answer, 'answer 2', 'get read the version once the transaction ended');
    } finally {
      await other.close();
      await sql.close();
    }
  });
});
