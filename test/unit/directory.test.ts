import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import {
  DIRECTORY_MIGRATIONS,
  DirectoryError,
  addUser,
  cachedUserLookup,
  countSiteUsers,
  createSite,
  findSite,
  findUser,
  listSites,
  listUsers,
  parseAddress,
  removeSite,
  removeUser,
  requireSite,
  searchUsers,
  setDisplayName,
  setPassword,
  setUserSite,
  userSite,
  verifyPassword,
} from '../../src/directory/index.ts';
import { computeHa1 } from '../../src/sip/digest.ts';
import { migrate, openDatabase, openPostgres, sqliteSql } from '../../src/storage/index.ts';
import type { Sql, SqlDatabase } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES, freshPostgresDatabase } from '../harness/engines.ts';
import type { EngineUnderTest } from '../harness/engines.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-directory-'));
after(() => rmSync(root, { recursive: true, force: true }));
after(() => closeTestPostgres());

/**
 * Two connections to one new database, as the server and `parley user add` (or two nodes) have:
 * a file with WAL on SQLite, two pools on PostgreSQL.
 */
async function twoConnections(engine: EngineUnderTest, name: string): Promise<{ server: SqlDatabase; other: SqlDatabase; close(): Promise<void> }> {
  if (engine.name === 'sqlite') {
    const dir = join(root, name);
    const server = sqliteSql(openDatabase(dir));
    await migrate(server, [DIRECTORY_MIGRATIONS]);
    const other = sqliteSql(new DatabaseSync(join(dir, 'parley.db'), { timeout: 1000 }));
    return { server, other, close: async () => { await other.close(); await server.close(); } };
  }
  const { url, drop } = await freshPostgresDatabase();
  const server = await openPostgres(url, { max: 2 });
  const other = await openPostgres(url, { max: 2 });
  await migrate(server, [DIRECTORY_MIGRATIONS]);
  return { server, other, close: async () => { await other.close(); await server.close(); await drop(); } };
}

/** The handle, counting the statements run through it. */
function counting(sql: Sql): { sql: Sql; statements: () => number } {
  let n = 0;
  const proxy = new Proxy(sql, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (property === 'all' || property === 'get' || property === 'run' || property === 'exec') n++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { sql: proxy, statements: () => n };
}

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

for (const engine of ENGINES) describe(`users on ${engine.name}`, () => {
  let db: SqlDatabase;
  beforeEach(async () => {
    db = await engine.open();
    await migrate(db, [DIRECTORY_MIGRATIONS]);
  });
  afterEach(() => db.close());

  it('adds a user with digest HA1s for username = user part, realm = domain', async () => {
    const added = await addUser(db, { address: 'sip:Alice@Parley.local', password: 'wonderland', displayName: '  Alice Liddell ' }, () => 1_700_000_000_000);
    assert.deepEqual(added, { address: 'alice@parley.local', user: 'alice', domain: 'parley.local', displayName: 'Alice Liddell', createdAt: new Date(1_700_000_000_000), demo: false });
    const found = await findUser(db, 'ALICE@parley.local');
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
    await addUser(db, { address: 'alice@parley.local', password: 'wonderland' });
    await addUser(db, { address: 'bob@parley.local', password: 'wonderland' });
    const rows = await db.all('SELECT * FROM users ORDER BY address');
    const dump = JSON.stringify(rows);
    assert.equal(dump.includes('wonderland'), false);
    const hashes = rows.map((r) => String(r.password_hash));
    for (const h of hashes) assert.match(h, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(hashes[0], hashes[1], 'salted: the same password hashes differently');
  });

  it('verifies passwords with scrypt', async () => {
    await addUser(db, { address: 'alice@parley.local', password: 'wonderland' });
    assert.equal(await verifyPassword(db, 'alice@parley.local', 'wonderland'), true);
    assert.equal(await verifyPassword(db, 'sip:ALICE@parley.local', 'wonderland'), true);
    assert.equal(await verifyPassword(db, 'alice@parley.local', 'Wonderland'), false);
    assert.equal(await verifyPassword(db, 'alice@parley.local', ''), false);
    assert.equal(await verifyPassword(db, 'nobody@parley.local', 'wonderland'), false);
    assert.equal(await verifyPassword(db, 'not an address', 'wonderland'), false);
  });

  it('changes the password: scrypt hash and HA1s together', async () => {
    await addUser(db, { address: 'alice@parley.local', password: 'old' });
    const before = await findUser(db, 'alice@parley.local');
    await setPassword(db, 'alice@parley.local', 'new');
    const after = await findUser(db, 'alice@parley.local');
    assert.equal(after?.ha1.MD5, computeHa1('MD5', 'alice', 'parley.local', 'new'));
    assert.equal(after?.ha1['SHA-256'], computeHa1('SHA-256', 'alice', 'parley.local', 'new'));
    assert.deepEqual(after?.createdAt, before?.createdAt);
    assert.equal(await verifyPassword(db, 'alice@parley.local', 'new'), true);
    assert.equal(await verifyPassword(db, 'alice@parley.local', 'old'), false);
  });

  it('sets and clears the display name', async () => {
    await addUser(db, { address: 'alice@parley.local', password: 'x' });
    await setDisplayName(db, 'alice@parley.local', ' Alice ');
    assert.equal((await findUser(db, 'alice@parley.local'))?.displayName, 'Alice');
    await setDisplayName(db, 'alice@parley.local', '  ');
    assert.equal((await findUser(db, 'alice@parley.local'))?.displayName, null);
    assert.equal(await codeOf(() => setDisplayName(db, 'bob@parley.local', 'Bob')), 'USER_NOT_FOUND');
  });

  it('lists users by address, without secrets', async () => {
    await addUser(db, { address: 'carol@parley.local', password: 'x' });
    await addUser(db, { address: 'alice@parley.local', password: 'x', displayName: 'Alice' });
    const list = await listUsers(db);
    assert.deepEqual(list.map((u) => [u.address, u.displayName]), [
      ['alice@parley.local', 'Alice'],
      ['carol@parley.local', null],
    ]);
    assert.deepEqual(Object.keys(list[0] ?? {}).sort(), ['address', 'createdAt', 'demo', 'displayName', 'domain', 'user']);
  });

  it('searches address and display name, any case, by display name, one page at a time; % and _ are plain characters', async () => {
    await addUser(db, { address: 'a_b@parley.local', password: 'x', displayName: 'Zed 100%' });
    await addUser(db, { address: 'axb@parley.local', password: 'x', displayName: 'Ann' });
    await addUser(db, { address: 'carol@parley.local', password: 'x' });
    const addresses = async (text: string, offset = 0, limit = 10) => {
      const { users, total } = await searchUsers(db, text, offset, limit);
      return { found: users.map((u) => u.address), total };
    };
    assert.deepEqual(await addresses(''), { found: ['axb@parley.local', 'carol@parley.local', 'a_b@parley.local'], total: 3 });
    assert.deepEqual(await addresses('_'), { found: ['a_b@parley.local'], total: 1 });
    assert.deepEqual(await addresses('%'), { found: ['a_b@parley.local'], total: 1 });
    assert.deepEqual(await addresses('  ANN '), { found: ['axb@parley.local'], total: 1 });
    assert.deepEqual(await addresses('PARLEY', 1, 1), { found: ['carol@parley.local'], total: 3 });
    assert.deepEqual(await addresses('\\'), { found: [], total: 0 });
  });

  it('removes users', async () => {
    await addUser(db, { address: 'alice@parley.local', password: 'x' });
    await removeUser(db, 'sip:alice@parley.local');
    assert.equal(await findUser(db, 'alice@parley.local'), undefined);
    assert.deepEqual(await listUsers(db), []);
  });

  it('answers errors with stable codes and the HTTP status for the admin API', async () => {
    await addUser(db, { address: 'alice@parley.local', password: 'x' });
    assert.equal(await codeOf(() => addUser(db, { address: 'Alice@parley.local', password: 'y' })), 'USER_EXISTS');
    assert.equal(await codeOf(() => addUser(db, { address: 'bob@parley.local', password: '' })), 'WEAK_PASSWORD');
    assert.equal(await codeOf(() => addUser(db, { address: 'bob', password: 'x' })), 'BAD_ADDRESS');
    assert.equal(await codeOf(() => addUser(db, { address: 'bob@parley.local', password: 'x', displayName: 'Bob\nEvil' })), 'BAD_DISPLAY_NAME');
    assert.equal(await codeOf(() => addUser(db, { address: 'bob@parley.local', password: 'x', displayName: 'B'.repeat(129) })), 'BAD_DISPLAY_NAME');
    assert.equal(await codeOf(() => removeUser(db, 'bob@parley.local')), 'USER_NOT_FOUND');
    assert.equal(await codeOf(() => setPassword(db, 'bob@parley.local', 'x')), 'USER_NOT_FOUND');
    assert.equal(await codeOf(() => setPassword(db, 'alice@parley.local', '')), 'WEAK_PASSWORD');
    await assert.rejects(addUser(db, { address: 'alice@parley.local', password: 'y' }), (e: unknown) => {
      assert.ok(e instanceof DirectoryError);
      assert.equal(e.message, 'user alice@parley.local already exists');
      assert.equal(e.httpStatus, 409);
      assert.equal(e.name, 'DirectoryError');
      return true;
    });
    assert.equal((await listUsers(db)).length, 1);
  });

  it('two adds of one user at once: one wins, the other gets USER_EXISTS', async () => {
    const outcomes = await Promise.allSettled([addUser(db, { address: 'dup@parley.local', password: 'a' }), addUser(db, { address: 'dup@parley.local', password: 'b' })]);
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    const refused = outcomes.find((o) => o.status === 'rejected');
    assert.ok(refused?.reason instanceof DirectoryError && refused.reason.code === 'USER_EXISTS', String(refused?.reason));
  });

  it('finds nothing for text that is not an address', async () => {
    assert.equal(await findUser(db, ''), undefined);
    assert.equal(await findUser(db, 'a b c'), undefined);
  });

  it('refuses a bad stored hash with a repair hint', async () => {
    await addUser(db, { address: 'alice@parley.local', password: 'x' });
    await db.run('UPDATE users SET password_hash = ?', ['plain:x']);
    assert.equal(await codeOf(() => verifyPassword(db, 'alice@parley.local', 'x')), 'CORRUPT_RECORD');
  });

  it('stores scrypt with the cost the file header reasons about (N=2^15, r=8, p=1: ~80 ms, 32 MiB)', async () => {
    // the cost, not a stopwatch: timed assertions belong in bench/, not in unit tests
    await addUser(db, { address: 'cost@parley.local', password: 'x' });
    const row = await db.get<{ password_hash: string }>('SELECT password_hash FROM users WHERE address = ?', ['cost@parley.local']);
    assert.match(row?.password_hash ?? '', /^\$scrypt\$ln=15,r=8,p=1\$/);
    assert.equal(await verifyPassword(db, 'cost@parley.local', 'x'), true);
  });

  it('a user added through another connection is seen at once (no caching)', async () => {
    const { server, other, close } = await twoConnections(engine, 'two-connections');
    try {
      assert.equal(await findUser(server, 'alice@parley.local'), undefined);
      await addUser(other, { address: 'alice@parley.local', password: 'wonderland' });
      const found = await findUser(server, 'alice@parley.local');
      assert.equal(found?.ha1.MD5, computeHa1('MD5', 'alice', 'parley.local', 'wonderland'));
      await setPassword(other, 'alice@parley.local', 'changed');
      assert.equal((await findUser(server, 'alice@parley.local'))?.ha1.MD5, computeHa1('MD5', 'alice', 'parley.local', 'changed'));
      await removeUser(other, 'alice@parley.local');
      assert.equal(await findUser(server, 'alice@parley.local'), undefined);
    } finally {
      await close();
    }
  });

  it('the cached lookup answers a kept user without a statement, and sees changes by another connection and its own once the version is read again', async () => {
    const { server, other, close } = await twoConnections(engine, 'cached');
    try {
      let clock = 0;
      const watched = counting(server);
      const cached = cachedUserLookup(watched.sql, { clock: () => clock, checkEveryMs: 1 });
      const lookup = (address: string) => {
        clock += 1;
        return cached(address);
      };
      assert.equal(await lookup('carol@parley.local'), undefined);
      const statements = watched.statements();
      assert.equal(await cached('carol@parley.local'), undefined, 'within the check interval');
      assert.equal(watched.statements(), statements, 'a kept answer (even "no such user") costs no statement');

      await addUser(other, { address: 'carol@parley.local', password: 'first' });
      assert.equal((await lookup('carol@parley.local'))?.ha1.MD5, computeHa1('MD5', 'carol', 'parley.local', 'first'), 'a user added by another connection');
      // writes to other tables (the spool's and history's writer threads, a hundred a second) keep the answers
      const before = await lookup('carol@parley.local');
      await other.exec('CREATE TABLE unrelated (x INTEGER); INSERT INTO unrelated VALUES (1)');
      assert.equal(await lookup('carol@parley.local'), before, 'the very same record: not read again');
      await setPassword(other, 'carol@parley.local', 'second');
      assert.equal((await lookup('carol@parley.local'))?.ha1.MD5, computeHa1('MD5', 'carol', 'parley.local', 'second'), 'a password changed by another connection');
      await setPassword(server, 'carol@parley.local', 'third');
      assert.equal((await lookup('carol@parley.local'))?.ha1.MD5, computeHa1('MD5', 'carol', 'parley.local', 'third'), 'a password changed through the same connection');
      await setDisplayName(other, 'carol@parley.local', 'Carol');
      assert.equal((await lookup('carol@parley.local'))?.displayName, 'Carol', 'an update of another column');
      await removeUser(server, 'carol@parley.local');
      // on SQLite the check interval alone decides; on PostgreSQL the trigger's NOTIFY may make the
      // cache look again before it ends (storage-engines.test.ts tests that)
      if (engine.name === 'sqlite') assert.ok(await cached('carol@parley.local'), 'within the check interval the answer is the kept one');
      assert.equal(await lookup('carol@parley.local'), undefined, 'a user removed through the same connection');
    } finally {
      await close();
    }
  });
});

for (const engine of ENGINES) describe(`sites on ${engine.name}`, () => {
  let db: SqlDatabase;
  beforeEach(async () => {
    db = await engine.open();
    await migrate(db, [DIRECTORY_MIGRATIONS]);
  });
  afterEach(() => db.close());

  it('creates, finds in any case, lists by name, counts and removes sites', async () => {
    const made = await createSite(db, 'Site:Redmond', () => 1_700_000_000_000);
    assert.deepEqual(made, { name: 'Redmond', identity: 'Site:Redmond', createdAt: new Date(1_700_000_000_000) });
    await createSite(db, 'amsterdam');
    assert.deepEqual(await findSite(db, 'REDMOND'), made);
    assert.equal(await findSite(db, 'Paris'), undefined);
    assert.deepEqual((await listSites(db)).map((s) => s.name), ['amsterdam', 'Redmond']);
    assert.equal(await codeOf(() => createSite(db, 'redmond')), 'SITE_EXISTS');
    assert.equal(await codeOf(() => createSite(db, 'bad name')), 'BAD_SITE_NAME');
    assert.equal(await codeOf(() => requireSite(db, 'Paris')), 'SITE_NOT_FOUND');

    await addUser(db, { address: 'alice@parley.local', password: 'x' });
    assert.equal(await userSite(db, 'alice@parley.local'), null);
    await setUserSite(db, 'alice@parley.local', 'redmond');
    assert.equal(await userSite(db, 'alice@parley.local'), 'Redmond', 'stored as the site was created');
    assert.equal(await countSiteUsers(db, 'Redmond'), 1);
    assert.equal(await codeOf(() => removeSite(db, 'Redmond')), 'SITE_IN_USE');
    assert.equal(await codeOf(() => setUserSite(db, 'alice@parley.local', 'Paris')), 'SITE_NOT_FOUND');
    assert.equal(await codeOf(() => setUserSite(db, 'bob@parley.local', 'Redmond')), 'USER_NOT_FOUND');
    assert.equal(await codeOf(() => userSite(db, 'bob@parley.local')), 'USER_NOT_FOUND');
    await setUserSite(db, 'alice@parley.local', null);
    await removeSite(db, 'REDMOND');
    assert.deepEqual((await listSites(db)).map((s) => s.name), ['amsterdam']);
  });
});
