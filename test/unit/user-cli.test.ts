import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runUserCommand } from '../../src/admin/index.ts';
import { findUser, verifyPassword } from '../../src/directory/index.ts';
import { listAudit } from '../../src/settings/index.ts';
import type { CliStorage } from '../harness/cli-storage.ts';
import { CLI_ENGINES, storesOf, UNREACHABLE_POSTGRES, withStore } from '../harness/cli-storage.ts';
import { closeTestPostgres } from '../harness/engines.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-user-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
after(closeTestPostgres);
let dirs = 0;

/** `parley user …` runners capturing their output: `run` on `store` (its --data-dir or --database), `bare` on the default data directory. */
function cli(store?: CliStorage) {
  const defaults = { dataDir: join(root, `default-${++dirs}`), domain: 'parley.local' };
  const bare = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runUserCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, defaults);
    return { code, out, err, all: [...out, ...err].join('\n') };
  };
  return { defaults, bare, run: (...args: string[]) => bare(...args, ...(store?.args ?? [])) };
}


for (const engine of CLI_ENGINES) describe(`parley user on ${engine.name}`, () => {
  const fresh = storesOf(engine);

  it('adds, lists, changes the password of and removes a user', async () => {
    const store = await fresh();
    const { run } = cli(store);
    const add = await run('add', 'alice', '--password', 'wonderland', '--display-name', 'Alice Liddell');
    assert.equal(add.code, 0, add.all);
    assert.deepEqual(add.out, ['added alice@parley.local; SIP clients sign in with digest username "alice" in realm "parley.local"']);
    assert.deepEqual(add.err, []);
    assert.ok(await withStore(store, (sql) => findUser(sql, 'alice@parley.local')));
    // an alias of Enable-CsUser: audited like the cmdlet
    const audit = await withStore(store, (sql) => listAudit(sql));
    assert.ok(audit.some((a) => a.cmdlet === 'Enable-CsUser' && a.identity === 'alice@parley.local' && /^cli:/.test(a.actor)), JSON.stringify(audit));

    assert.equal((await run('add', 'sip:bob@example.com', '--password', 'builder')).code, 0);
    assert.equal((await run('add', 'carol@parley.local', '--password=x')).code, 0);

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
    assert.equal(await withStore(store, (sql) => verifyPassword(sql, 'alice@parley.local', 'looking-glass')), true);

    const remove = await run('remove', 'ALICE@parley.local');
    assert.equal(remove.code, 0, remove.all);
    assert.deepEqual(remove.out, ['removed alice@parley.local']);
    assert.equal(await withStore(store, (sql) => findUser(sql, 'alice@parley.local')), undefined);
  });

  it(`honours ${engine.name === 'sqlite' ? '--data-dir' : '--database'}: the default data directory is not touched`, async () => {
    const store = await fresh();
    const { run, bare, defaults } = cli(store);
    assert.equal((await run('add', 'alice', '--password', 'x')).code, 0);
    assert.ok(await withStore(store, (sql) => findUser(sql, 'alice@parley.local')));
    assert.equal(existsSync(defaults.dataDir), false);
    const empty = await bare('list');
    assert.deepEqual(empty.out, [`no users in ${defaults.dataDir}; add one with: parley user add SIP-ADDRESS --password PW [--display-name NAME] [--data-dir DIR | --database postgres://…]`]);
    if (store.database !== null) {
      assert.equal(existsSync(store.dataDir), false, 'nothing made in a data directory on PostgreSQL');
      assert.equal((await run('remove', 'alice')).code, 0);
      const none = await run('list');
      assert.match(none.out.join('\n'), /^no users in postgres:\/\/.*; add one with: parley user add/);
    }
  });

  it('fails with exit code 1 and says why', async () => {
    const { run } = cli(await fresh());
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
  });

  it('never prints a password or a hash', async () => {
    const store = await fresh();
    const { run } = cli(store);
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
    const hashes = await withStore(store, (sql) => sql.all<Record<string, unknown>>('SELECT password_hash, ha1_md5, ha1_sha256 FROM users'));
    assert.equal(hashes.length, 1);
    for (const o of outputs) {
      assert.equal(o.all.includes(secret), false, o.all);
      for (const row of hashes) for (const value of Object.values(row)) assert.equal(o.all.includes(String(value)), false, o.all);
    }
  });
});

describe('parley user: usage, and where it acts', () => {
  it('fails with exit code 1 on a data directory that is a file, or a PostgreSQL it cannot reach (never showing its password)', async () => {
    const { bare } = cli();
    const dataDirIsFile = await bare('list', '--data-dir', '/dev/null');
    assert.equal(dataDirIsFile.code, 1);
    assert.match(dataDirIsFile.err.join('\n'), /not a directory/);
    const unreachable = await bare('add', 'alice', '--password', 'x', '--database', UNREACHABLE_POSTGRES);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err.join('\n'), /^parley user add: cannot connect to PostgreSQL at postgres:\/\/parley:\*\*\*@127\.0\.0\.1:1\/parley: /);
    assert.doesNotMatch(unreachable.all, /s3cret-pw/);
  });

  it('answers usage errors with exit code 2 and the right usage', async () => {
    const { bare: run } = cli();
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
      [['list', '--data-dir', '/tmp/x', '--database', 'postgres://localhost/parley'], /give --data-dir DIR \(SQLite in that directory\) or --database postgres:\/\/… \(PostgreSQL\), not both/],
      [['remove', 'alice', '--database', 'sqlite:///tmp/x'], /--database must be a PostgreSQL address/],
    ];
    for (const [args, message] of cases) {
      const r = await run(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.all}`);
      assert.match(r.err.join('\n'), message, args.join(' '));
      assert.match(r.err.join('\n'), /usage:/, args.join(' '));
    }
    const addUsage = await run('add', 'alice');
    assert.ok(addUsage.err.includes('usage: parley user add SIP-ADDRESS --password PW [--display-name NAME] [--data-dir DIR | --database postgres://…]'));
  });

  it('prints help with exit code 0', async () => {
    const { bare: run } = cli();
    const help = await run('--help');
    assert.equal(help.code, 0);
    assert.match(help.out.join('\n'), /parley user passwd SIP-ADDRESS --password PW/);
    assert.match(help.out.join('\n'), /default domain parley\.local/);
    const sub = await run('add', '--help');
    assert.equal(sub.code, 0);
    assert.deepEqual(sub.out, ['usage: parley user add SIP-ADDRESS --password PW [--display-name NAME] [--data-dir DIR | --database postgres://…]']);
  });
});
