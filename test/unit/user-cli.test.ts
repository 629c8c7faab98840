import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runUserCommand } from '../../src/admin/index.ts';
import { findUser, verifyPassword } from '../../src/directory/index.ts';
import { listAudit } from '../../src/settings/index.ts';
import { openDatabase, sqliteSql } from '../../src/storage/index.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-user-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A fresh data directory and a `parley user …` runner capturing its output. */
function cli() {
  const dataDir = join(root, `data-${++dirs}`);
  const defaults = { dataDir, domain: 'parley.local' };
  return {
    dataDir,
    async run(...args: string[]) {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runUserCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, defaults);
      return { code, out, err, all: [...out, ...err].join('\n') };
    },
  };
}

function withDb<T>(dataDir: string, fn: (db: ReturnType<typeof openDatabase>) => T): T {
  const db = openDatabase(dataDir);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describe('parley user', () => {
  it('adds, lists, changes the password of and removes a user', async () => {
    const { dataDir, run } = cli();
    const add = await run('add', 'alice', '--password', 'wonderland', '--display-name', 'Alice Liddell');
    assert.equal(add.code, 0, add.all);
    assert.deepEqual(add.out, ['added alice@parley.local; SIP clients sign in with digest username "alice" in realm "parley.local"']);
    assert.deepEqual(add.err, []);
    assert.ok(withDb(dataDir, (db) => findUser(db, 'alice@parley.local')));
    // an alias of Enable-CsUser: audited like the cmdlet
    const audit = withDb(dataDir, (db) => listAudit(db));
    assert.ok(audit.some((a) => a.cmdlet === 'Enable-CsUser' && a.identity === 'alice@parley.local' && /^cli:/.test(a.actor)), JSON.stringify(audit));

    assert.equal((await run('add', 'sip:bob@example.com', '--password', 'builder')).code, 0);
    assert.equal((await run('add', 'carol@parley.local', '--password=x', '--data-dir', dataDir)).code, 0);

    const list = await run('list');
    assert.equal(list.code, 0, list.all);
    assert.equal(list.out.length, 4);
    assert.match(list.out[0] ?? '', /^ADDRESS\s+DISPLAY NAME\s+CREATED$/);
    assert.match(list.out[1] ?? '', /^alice@parley\.local\s+Alice Liddell\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
    assert.match(list.out[2] ?? '', /^bob@example\.com\s+-\s+\d{4}-/);
    assert.match(list.out[3] ?? '', /^carol@parley\.local\s+-\s+\d{4}-/);
    const column = (line: string | undefined) => (line ?? '').indexOf('CREATED') >= 0 ? (line ?? '').indexOf('CREATED') : (line ?? '').search(/\d{4}-/);
    assert.equal(column(list.out[1]), column(list.out[0]), 'columns line up');

    const passwd = await run('passwd', 'alice', '--password', 'looking-glass');
    assert.equal(passwd.code, 0, passwd.all);
    assert.deepEqual(passwd.out, ['changed the password of alice@parley.local']);
    const db = openDatabase(dataDir);
    assert.equal(await verifyPassword(sqliteSql(db), 'alice@parley.local', 'looking-glass'), true);
    db.close();

    const remove = await run('remove', 'ALICE@parley.local');
    assert.equal(remove.code, 0, remove.all);
    assert.deepEqual(remove.out, ['removed alice@parley.local']);
    assert.equal(withDb(dataDir, (d) => findUser(d, 'alice@parley.local')), undefined);
  });

  it('honours --data-dir', async () => {
    const { run } = cli();
    const elsewhere = join(root, 'elsewhere');
    assert.equal((await run('add', 'alice', '--password', 'x', '--data-dir', elsewhere)).code, 0);
    assert.ok(withDb(elsewhere, (db) => findUser(db, 'alice@parley.local')));
    const list = await run('list');
    assert.match(list.out.join('\n'), /^no users in .*; add one with: parley user add/);
  });

  it('fails with exit code 1 and says why', async () => {
    const { run } = cli();
    await run('add', 'alice', '--password', 'x');
    const again = await run('add', 'alice@parley.local', '--password', 'secret-two');
    assert.equal(again.code, 1);
    assert.deepEqual(again.err, ['parley user add: user alice@parley.local already exists']);
    const missing = await run('remove', 'bob');
    assert.equal(missing.code, 1);
    assert.match(missing.err.join('\n'), /user bob@parley\.local does not exist/);
    const passwd = await run('passwd', 'bob', '--password', 'x');
    assert.equal(passwd.code, 1);
    const bad = await run('add', 'al ice', '--password', 'x');
    assert.equal(bad.code, 1);
    assert.match(bad.err.join('\n'), /not a bare address/);
    const empty = await run('add', 'dave', '--password', '');
    assert.equal(empty.code, 1);
    assert.match(empty.err.join('\n'), /password is empty/);
    const dataDirIsFile = await run('list', '--data-dir', '/dev/null');
    assert.equal(dataDirIsFile.code, 1);
    assert.match(dataDirIsFile.err.join('\n'), /not a directory/);
  });

  it('answers usage errors with exit code 2 and the right usage', async () => {
    const { run } = cli();
    const cases: Array<[string[], RegExp]> = [
      [[], /missing command/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['add', 'alice'], /missing --password/],
      [['add', '--password', 'x'], /expected one SIP-ADDRESS, got 0/],
      [['add', 'alice', 'bob', '--password', 'x'], /expected one SIP-ADDRESS, got 2/],
      [['add', 'alice', '--password'], /--password/],
      [['add', 'alice', '--password', 'x', '--colour', 'red'], /Unknown option '--colour'/],
      [['list', 'extra'], /takes no arguments/],
      [['list', '--password', 'x'], /Unknown option '--password'/],
      [['remove'], /expected one SIP-ADDRESS/],
      [['passwd', 'alice'], /missing --password/],
    ];
    for (const [args, message] of cases) {
      const r = await run(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.all}`);
      assert.match(r.err.join('\n'), message, args.join(' '));
      assert.match(r.err.join('\n'), /usage:/, args.join(' '));
    }
    const addUsage = await run('add', 'alice');
    assert.ok(addUsage.err.includes('usage: parley user add SIP-ADDRESS --password PW [--display-name NAME] [--data-dir DIR]'));
  });

  it('prints help with exit code 0', async () => {
    const { run } = cli();
    const help = await run('--help');
    assert.equal(help.code, 0);
    assert.match(help.out.join('\n'), /parley user passwd SIP-ADDRESS --password PW/);
    assert.match(help.out.join('\n'), /default domain parley\.local/);
    const sub = await run('add', '--help');
    assert.equal(sub.code, 0);
    assert.deepEqual(sub.out, ['usage: parley user add SIP-ADDRESS --password PW [--display-name NAME] [--data-dir DIR]']);
  });

  it('never prints a password or a hash', async () => {
    const { dataDir, run } = cli();
    const secret = 'Tr0ub4dor&3';
    const outputs = [
      await run('add', 'alice', '--password', secret),
      await run('add', 'alice', '--password', secret),
      await run('add', 'bob', secret),
      await run('add', 'bob', `--password=${secret}`, '--bogus'),
      await run('add', 'bob', '--password', `-${secret}`),
      await run('passwd', 'alice', '--password', secret),
      await run('passwd', 'nobody', '--password', secret),
      await run('list'),
    ];
    const hashes = withDb(dataDir, (db) => db.prepare('SELECT password_hash, ha1_md5, ha1_sha256 FROM users').all());
    for (const o of outputs) {
      assert.equal(o.all.includes(secret), false, o.all);
      for (const row of hashes) for (const value of Object.values(row)) assert.equal(o.all.includes(String(value)), false, o.all);
    }
  });
});
