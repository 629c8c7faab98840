import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { closeTestPostgres, freshPostgresDatabase } from '../harness/engines.ts';
import { runCli } from '../harness/server.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-admin-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
after(closeTestPostgres);

describe('parley admin (the real CLI process)', () => {
  it("runs the seed's two commands", async () => {
    // spawned without a shell, so $False reaches Parley as typed (in bash, quote it: '$False')
    const set = await runCli(['admin', '--data-dir', dir, 'Set-CsImConfiguration', '-EnableOfflineIM', '$False']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, '');
    const get = await runCli(['admin', '--data-dir', dir, 'Get-CsImConfiguration']);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^Identity +: Global\nEnableOfflineIm +: False\n/);
    assert.match(get.stdout, /OfflineImPickupDelay +: 00:02:00\nOfflineImMaxAge +: 1\.00:00:00\nConversationIdleTimeout : 00:10:00\nUnreadMissedTimeout +: 00:05:00\n$/);
  });

  it('exits 2 with the closest cmdlet on a typo', async () => {
    const typo = await runCli(['admin', '--data-dir', dir, 'Get-CsImConfigration']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /did you mean Get-CsImConfiguration\?/);
  });
});

describe('the CLIs on a PostgreSQL database (--database, the real processes)', () => {
  it('parley user, admin, mailbox, spooler, history and trace act on the database, and make no data directory', async () => {
    const { url, drop } = await freshPostgresDatabase();
    const unused = path.join(dir, 'never-made');
    try {
      const add = await runCli(['user', 'add', 'alice@parley.test', '--password', 'pw-alice', '--database', url, '--data-dir', unused]);
      assert.equal(add.code, 2, 'not both');
      assert.match(add.stderr, /not both/);
      assert.equal((await runCli(['user', 'add', 'alice@parley.test', '--password', 'pw-alice', '--database', url])).code, 0);
      const set = await runCli(['admin', '--database', url, 'Set-CsImConfiguration', '-EnableOfflineIM', '$False']);
      assert.equal(set.code, 0, set.stderr);
      const users = await runCli(['admin', '--database', url, '--json', 'Get-CsUser']);
      assert.equal(users.code, 0, users.stderr);
      assert.deepEqual((JSON.parse(users.stdout) as Array<{ Identity: string }>).map((u) => u.Identity), ['alice@parley.test']);
      assert.match((await runCli(['admin', '--database', url, 'Get-CsImConfiguration'])).stdout, /EnableOfflineIm +: False/);
      assert.match((await runCli(['user', 'list', '--database', url])).stdout, /^ADDRESS +DISPLAY NAME +CREATED\nalice@parley\.test /);
      assert.match((await runCli(['mailbox', 'ls', 'alice@parley.test', '--database', url])).stdout, /Inbox \(inbox\)/);
      assert.equal((await runCli(['spooler', 'list', '--database', url])).stdout, 'the spool has no such entries\n');
      assert.equal((await runCli(['history', 'list', '--user', 'alice@parley.test', '--database', url])).code, 0);
      assert.equal((await runCli(['trace', 'sp-aaaaaaaaaaaaaaaa', '--database', url])).code, 1);
      const backup = await runCli(['backup', '--to', path.join(dir, 'copy.db'), '--database', url]);
      assert.equal(backup.code, 1);
      assert.match(backup.stderr, /pg_dump/);
      assert.equal(existsSync(unused), false);
    } finally {
      await drop();
    }
  });
});
