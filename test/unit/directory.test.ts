import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import {
  DIRECTORY_MIGRATIONS,
  DirectoryError,
  addUser,
  cachedUserLookup,
  findUser,
  listUsers,
  parseAddress,
  removeUser,
  setPassword,
  verifyPassword,
} from '../../src/directory/index.ts';
import { computeHa1 } from '../../src/sip/digest.ts';
import { openDatabase, openMemoryDatabase, runMigrations } from '../../src/storage/index.ts';
import type { Database } from '../../src/storage/index.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-directory-'));
after(() => rmSync(root, { recursive: true, force: true }));

const memory = (): Database => {
  const db = openMemoryDatabase();
  runMigrations(db, [DIRECTORY_MIGRATIONS]);
  return db;
};

async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof DirectoryError, `expected a DirectoryError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

function badAddress(input: string, defaultDomain?: string): string {
  try {
    parseAddress(input, defaultDomain);
  } catch (e) {
    assert.ok(e instanceof DirectoryError && e.code === 'BAD_ADDRESS', String(e));
    return e.message;
  }
  assert.fail(`${input} was accepted`);
}

describe('parseAddress', () => {
  it('accepts the written forms and normalises them', () => {
    const alice = { address: 'alice@parley.local', user: 'alice', domain: 'parley.local' };
    assert.deepEqual(parseAddress('alice@parley.local'), alice);
    assert.deepEqual(parseAddress('sip:alice@parley.local'), alice);
    assert.deepEqual(parseAddress('SIPS:Alice@Parley.LOCAL'), alice);
    assert.deepEqual(parseAddress('  alice@parley.local  '), alice);
    assert.deepEqual(parseAddress('alice', 'parley.local'), alice);
    assert.deepEqual(parseAddress('%61lice@parley.local'), alice, 'an escaped unreserved character is that character');
    assert.deepEqual(parseAddress("o'neil.j-r_(x)!~*@sub-1.example.com").user, "o'neil.j-r_(x)!~*");
    assert.deepEqual(parseAddress('bob@localhost').domain, 'localhost');
  });

  it('says precisely what is wrong', () => {
    assert.match(badAddress(''), /empty/);
    assert.match(badAddress('alice'), /no domain/);
    assert.match(badAddress('@parley.local'), /empty user part/);
    assert.match(badAddress('alice@'), /empty domain/);
    assert.match(badAddress('a@b@parley.local'), /more than one @/);
    assert.match(badAddress('alice:pw@parley.local'), /password/);
    assert.match(badAddress('alice@parley.local:5060'), /port/);
    assert.match(badAddress('sip:alice@parley.local;transport=tcp'), /parameters/);
    assert.match(badAddress('sip:alice@parley.local?subject=x'), /headers/);
    assert.match(badAddress('Alice <sip:alice@parley.local>'), /display name or angle brackets/);
    assert.match(badAddress('al ice@parley.local'), /display name or angle brackets/);
    assert.match(badAddress('al+ice@parley.local'), /contains "\+"/);
    assert.match(badAddress('al%2bice@parley.local'), /%2b stands for "\+"/);
    assert.match(badAddress('al%zzice@parley.local'), /broken escape/);
    assert.match(badAddress('alice@127.0.0.1'), /IP address/);
    assert.match(badAddress('alice@[::1]'), /IP address/);
    assert.match(badAddress('alice@parley.local.'), /dot/);
    assert.match(badAddress('alice@parley..local'), /empty label/);
    assert.match(badAddress('alice@-parley.local'), /label "-parley"/);
    assert.match(badAddress('alice@parley.123'), /start with a letter/);
    assert.match(badAddress(`${'a'.repeat(65)}@parley.local`), /at most 64/);
    assert.match(badAddress(`alice@${'a'.repeat(64)}.local`), /longer than 63/);
  });
});

describe('users', () => {
  it('adds a user with digest HA1s for username = user part, realm = domain', async () => {
    const db = memory();
    const added = await addUser(db, { address: 'sip:Alice@Parley.local', password: 'wonderland', displayName: '  Alice Liddell ' }, () => 1_700_000_000_000);
    assert.deepEqual(added, { address: 'alice@parley.local', user: 'alice', domain: 'parley.local', displayName: 'Alice Liddell', createdAt: new Date(1_700_000_000_000), demo: false });
    const found = findUser(db, 'ALICE@parley.local');
    assert.deepEqual(found, {
      ...added,
      realm: 'parley.local',
      ha1: {
        MD5: computeHa1('MD5', 'alice', 'parley.local', 'wonderland'),
        'SHA-256': computeHa1('SHA-256', 'alice', 'parley.local', 'wonderland'),
      },
    });
  });

  it('stores the password only as a salted scrypt hash', async () => {
    const db = memory();
    await addUser(db, { address: 'alice@parley.local', password: 'wonderland' });
    await addUser(db, { address: 'bob@parley.local', password: 'wonderland' });
    const rows = db.prepare('SELECT * FROM users').all();
    const dump = JSON.stringify(rows);
    assert.equal(dump.includes('wonderland'), false);
    const hashes = rows.map((r) => String(r.password_hash));
    for (const h of hashes) assert.match(h, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(hashes[0], hashes[1], 'salted: the same password hashes differently');
  });

  it('verifies passwords with scrypt', async () => {
    const db = memory();
    await addUser(db, { address: 'alice@parley.local', password: 'wonderland' });
    assert.equal(await verifyPassword(db, 'alice@parley.local', 'wonderland'), true);
    assert.equal(await verifyPassword(db, 'sip:ALICE@parley.local', 'wonderland'), true);
    assert.equal(await verifyPassword(db, 'alice@parley.local', 'Wonderland'), false);
    assert.equal(await verifyPassword(db, 'alice@parley.local', ''), false);
    assert.equal(await verifyPassword(db, 'nobody@parley.local', 'wonderland'), false);
    assert.equal(await verifyPassword(db, 'not an address', 'wonderland'), false);
  });

  it('changes the password: scrypt hash and HA1s together', async () => {
    const db = memory();
    await addUser(db, { address: 'alice@parley.local', password: 'old' });
    const before = findUser(db, 'alice@parley.local');
    await setPassword(db, 'alice@parley.local', 'new');
    const after = findUser(db, 'alice@parley.local');
    assert.equal(after?.ha1.MD5, computeHa1('MD5', 'alice', 'parley.local', 'new'));
    assert.equal(after?.ha1['SHA-256'], computeHa1('SHA-256', 'alice', 'parley.local', 'new'));
    assert.deepEqual(after?.createdAt, before?.createdAt);
    assert.equal(await verifyPassword(db, 'alice@parley.local', 'new'), true);
    assert.equal(await verifyPassword(db, 'alice@parley.local', 'old'), false);
  });

  it('lists users by address, without secrets', async () => {
    const db = memory();
    await addUser(db, { address: 'carol@parley.local', password: 'x' });
    await addUser(db, { address: 'alice@parley.local', password: 'x', displayName: 'Alice' });
    const list = listUsers(db);
    assert.deepEqual(list.map((u) => [u.address, u.displayName]), [
      ['alice@parley.local', 'Alice'],
      ['carol@parley.local', null],
    ]);
    assert.deepEqual(Object.keys(list[0] ?? {}).sort(), ['address', 'createdAt', 'demo', 'displayName', 'domain', 'user']);
  });

  it('removes users', async () => {
    const db = memory();
    await addUser(db, { address: 'alice@parley.local', password: 'x' });
    removeUser(db, 'sip:alice@parley.local');
    assert.equal(findUser(db, 'alice@parley.local'), undefined);
    assert.deepEqual(listUsers(db), []);
  });

  it('answers errors with stable codes and the HTTP status for the admin API', async () => {
    const db = memory();
    await addUser(db, { address: 'alice@parley.local', password: 'x' });
    assert.equal(await codeOf(() => addUser(db, { address: 'Alice@parley.local', password: 'y' })), 'USER_EXISTS');
    assert.equal(await codeOf(() => addUser(db, { address: 'bob@parley.local', password: '' })), 'WEAK_PASSWORD');
    assert.equal(await codeOf(() => addUser(db, { address: 'bob', password: 'x' })), 'BAD_ADDRESS');
    assert.equal(await codeOf(() => addUser(db, { address: 'bob@parley.local', password: 'x', displayName: 'Bob\nEvil' })), 'BAD_DISPLAY_NAME');
    assert.equal(await codeOf(() => addUser(db, { address: 'bob@parley.local', password: 'x', displayName: 'B'.repeat(129) })), 'BAD_DISPLAY_NAME');
    assert.equal(await codeOf(() => removeUser(db, 'bob@parley.local')), 'USER_NOT_FOUND');
    assert.equal(await codeOf(() => setPassword(db, 'bob@parley.local', 'x')), 'USER_NOT_FOUND');
    assert.equal(await codeOf(() => setPassword(db, 'alice@parley.local', '')), 'WEAK_PASSWORD');
    try {
      await addUser(db, { address: 'alice@parley.local', password: 'y' });
    } catch (e) {
      assert.ok(e instanceof DirectoryError);
      assert.equal(e.message, 'user alice@parley.local already exists');
      assert.equal(e.httpStatus, 409);
      assert.equal(e.name, 'DirectoryError');
    }
    assert.equal(listUsers(db).length, 1);
  });

  it('finds nothing for text that is not an address', () => {
    const db = memory();
    assert.equal(findUser(db, ''), undefined);
    assert.equal(findUser(db, 'a b c'), undefined);
  });

  it('refuses a bad stored hash with a repair hint', async () => {
    const db = memory();
    await addUser(db, { address: 'alice@parley.local', password: 'x' });
    db.prepare('UPDATE users SET password_hash = ?').run('plain:x');
    assert.equal(await codeOf(() => verifyPassword(db, 'alice@parley.local', 'x')), 'CORRUPT_RECORD');
  });

  it('stores scrypt with the cost the file header reasons about (N=2^15, r=8, p=1: ~80 ms, 32 MiB)', async () => {
    // the cost, not a stopwatch: timed assertions belong in bench/, not in unit tests
    const db = memory();
    await addUser(db, { address: 'cost@parley.local', password: 'x' });
    const row = db.prepare('SELECT password_hash FROM users WHERE address = ?').get('cost@parley.local') as { password_hash: string };
    assert.match(row.password_hash, /^\$scrypt\$ln=15,r=8,p=1\$/);
    assert.equal(await verifyPassword(db, 'cost@parley.local', 'x'), true);
  });

  it('a user added through another connection is seen at once (WAL, no caching)', async () => {
    const dir = join(root, 'two-connections');
    const server = openDatabase(dir);
    runMigrations(server, [DIRECTORY_MIGRATIONS]);
    assert.equal(findUser(server, 'alice@parley.local'), undefined);
    // a read transaction open in the server must not block the writer (WAL)
    server.exec('BEGIN');
    assert.deepEqual(listUsers(server), []);

    // the CLI: a separate connection, as another process would have
    const cli = new DatabaseSync(join(dir, 'parley.db'), { timeout: 1000 });
    runMigrations(cli, [DIRECTORY_MIGRATIONS]);
    await addUser(cli, { address: 'alice@parley.local', password: 'wonderland' });
    assert.equal(findUser(server, 'alice@parley.local'), undefined, 'the open read transaction keeps its snapshot');
    server.exec('COMMIT');

    const found = findUser(server, 'alice@parley.local');
    assert.equal(found?.ha1.MD5, computeHa1('MD5', 'alice', 'parley.local', 'wonderland'));
    await setPassword(cli, 'alice@parley.local', 'changed');
    assert.equal(findUser(server, 'alice@parley.local')?.ha1.MD5, computeHa1('MD5', 'alice', 'parley.local', 'changed'));
    removeUser(cli, 'alice@parley.local');
    assert.equal(findUser(server, 'alice@parley.local'), undefined);
    cli.close();
    server.close();
  });

  it('the cached lookup sees changes by another process and by its own connection a millisecond later', async () => {
    const dir = join(root, 'cached');
    const server = openDatabase(dir);
    runMigrations(server, [DIRECTORY_MIGRATIONS]);
    let clock = 0;
    const cached = cachedUserLookup(server, 100_000, () => clock);
    const lookup = (address: string) => {
      clock += 1;
      return cached(address);
    };
    assert.equal(lookup('carol@parley.local'), undefined);
    assert.equal(cached('carol@parley.local'), undefined, 'the same millisecond');

    const cli = new DatabaseSync(join(dir, 'parley.db'), { timeout: 1000 });
    await addUser(cli, { address: 'carol@parley.local', password: 'first' });
    assert.equal(lookup('carol@parley.local')?.ha1.MD5, computeHa1('MD5', 'carol', 'parley.local', 'first'), 'a user added by another process');
    // writes to other tables (the spool's and history's writer threads, a hundred a second) keep the answers
    const before = lookup('carol@parley.local');
    cli.exec('CREATE TABLE unrelated (x INTEGER); INSERT INTO unrelated VALUES (1)');
    assert.equal(lookup('carol@parley.local'), before, 'the very same record: not read again');
    await setPassword(cli, 'carol@parley.local', 'second');
    assert.equal(lookup('carol@parley.local')?.ha1.MD5, computeHa1('MD5', 'carol', 'parley.local', 'second'), 'a password changed by another process');
    await setPassword(server, 'carol@parley.local', 'third');
    assert.equal(lookup('carol@parley.local')?.ha1.MD5, computeHa1('MD5', 'carol', 'parley.local', 'third'), 'a password changed through the same connection');
    removeUser(server, 'carol@parley.local');
    assert.ok(cached('carol@parley.local'), 'within the same millisecond the answer is the cached one');
    assert.equal(lookup('carol@parley.local'), undefined, 'a user removed through the same connection');
    cli.close();
    server.close();
  });
});
