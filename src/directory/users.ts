// Users: the SIP accounts of the organisation. Repository functions take the Sql handle first; the
// server looks users up on every authentication (cachedUserLookup), so a user added or changed by
// another process or node (`parley user add` while the server runs) counts from the next request on.
//
// Credentials. The password itself is never stored. We keep
//  - a salted scrypt hash (for HTTP Basic, e.g. EWS), parameters stored with it in PHC form
//    `$scrypt$ln=15,r=8,p=1$<salt>$<hash>`, so the cost can rise later without breaking old rows;
//  - the digest HA1 per algorithm, H(username ":" realm ":" password) (RFC 7616 §3.4.2, RFC 8760),
//    which SIP digest needs and which cannot be derived from the scrypt hash. The digest
//    username is the user part of the address (`alice`), the realm is its domain
//    (`parley.local`), stored with the HA1s: clients must be configured with that username.
// An HA1 is a password equivalent for SIP and an MD5 HA1 is fast to brute-force, so the database
// file must stay private (openDatabase makes it owner-only); it is also why a heavier scrypt
// would buy nothing: N=2^15, r=8, p=1 (32 MiB, ~80 ms) keeps `user add` and Basic auth quick.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { MigrationSet, Sql, VersionedCacheOptions } from '../storage/index.ts';
import { isUniqueViolation, NOT_KEPT, VersionedCache } from '../storage/index.ts';
import { parseAddress } from './address.ts';
import { DirectoryError } from './errors.ts';
import { SITES_MIGRATION } from './sites.ts';
import { computeHa1 } from '../sip/index.ts';
import type { DigestAlgorithm } from '../sip/index.ts';

export const DIRECTORY_MIGRATIONS: MigrationSet = {
  capability: 'directory',
  migrations: [
    {
      id: '001-users',
      up: {
        sqlite: `CREATE TABLE users (
  address TEXT NOT NULL PRIMARY KEY CHECK (address = lower(address)),
  display_name TEXT,
  password_hash TEXT NOT NULL,
  digest_realm TEXT NOT NULL,
  ha1_md5 TEXT NOT NULL,
  ha1_sha256 TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;`,
        postgres: `CREATE TABLE users (
  address TEXT NOT NULL PRIMARY KEY CHECK (address = lower(address)),
  display_name TEXT,
  password_hash TEXT NOT NULL,
  digest_realm TEXT NOT NULL,
  ha1_md5 TEXT NOT NULL,
  ha1_sha256 TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);`,
      },
    },
    SITES_MIGRATION,
    {
      // demo users (`parley serve --demo` on a new data directory): shown as such, removed like any
      id: '003-user-demo',
      up: {
        sqlite: 'ALTER TABLE users ADD COLUMN demo INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1));',
        postgres: 'ALTER TABLE users ADD COLUMN demo BIGINT NOT NULL DEFAULT 0 CHECK (demo IN (0, 1));',
      },
    },
    {
      // what cachedUserLookup watches: a number that moves with every change of a user row, by
      // whichever connection or process makes it. The database's own change counter moved with
      // every write of any table, so the spool's and Conversation History's writer threads emptied
      // the cache a hundred times a second
      id: '004-users-version',
      up: {
        sqlite: `CREATE TABLE users_version (v INTEGER NOT NULL) STRICT;
INSERT INTO users_version (v) VALUES (0);
CREATE TRIGGER users_version_insert AFTER INSERT ON users BEGIN UPDATE users_version SET v = v + 1; END;
CREATE TRIGGER users_version_update AFTER UPDATE ON users BEGIN UPDATE users_version SET v = v + 1; END;
CREATE TRIGGER users_version_delete AFTER DELETE ON users BEGIN UPDATE users_version SET v = v + 1; END;`,
        // one row per change, as SQLite's row triggers: every node's cache sees the same moves
        postgres: `CREATE TABLE users_version (v BIGINT NOT NULL);
INSERT INTO users_version (v) VALUES (0);
CREATE FUNCTION users_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE users_version SET v = v + 1;
  PERFORM pg_notify('parley_version', 'users_version');
  RETURN NULL;
END;
$$;
CREATE TRIGGER users_version_insert AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION users_version_bump();
CREATE TRIGGER users_version_update AFTER UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_version_bump();
CREATE TRIGGER users_version_delete AFTER DELETE ON users FOR EACH ROW EXECUTE FUNCTION users_version_bump();`,
      },
    },
  ],
};

/** What anyone may see of a user. */
export interface UserSummary {
  /** `alice@parley.local`, lower-case */
  address: string;
  /** the user part, `alice`; also the digest username */
  user: string;
  domain: string;
  displayName: string | null;
  createdAt: Date;
  /** made by `parley serve --demo` to show the product; a real user is false */
  demo: boolean;
}

/** What authentication needs: the digest HA1s and the realm they were computed for. */
export interface UserRecord extends UserSummary {
  realm: string;
  ha1: Readonly<Record<DigestAlgorithm, string>>;
}

export interface NewUser {
  address: string;
  password: string;
  displayName?: string | null;
  /** a demo user (default false) */
  demo?: boolean;
}

/** scrypt cost; see the note at the top. */
export const SCRYPT_PARAMS = { logN: 15, r: 8, p: 1, keyLength: 32, saltLength: 16 } as const;
const MAX_DISPLAY_NAME = 128;

interface UserRow {
  address: string;
  display_name: string | null;
  password_hash: string;
  digest_realm: string;
  ha1_md5: string;
  ha1_sha256: string;
  created_at: number;
  demo: number;
}

export async function addUser(sql: Sql, input: NewUser, now: () => number = Date.now): Promise<UserSummary> {
  const { address, user, domain } = parseAddress(input.address);
  const displayName = checkDisplayName(input.displayName);
  checkPassword(input.password);
  // fail fast, before spending the hashing time; the primary key decides in the end
  if ((await rowOf(sql, address)) !== undefined) throw exists(address);
  const secrets = await credentialsFor(user, domain, input.password);
  const at = now();
  try {
    await sql.run(
      'INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at, demo) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [address, displayName, secrets.passwordHash, secrets.realm, secrets.ha1.MD5, secrets.ha1['SHA-256'], at, at, input.demo === true ? 1 : 0],
    );
  } catch (error) {
    // added by someone else while we were hashing
    if (isUniqueViolation(error)) throw exists(address);
    throw error;
  }
  return { address, user, domain, displayName, createdAt: new Date(at), demo: input.demo === true };
}

export async function removeUser(sql: Sql, address: string): Promise<void> {
  const parsed = parseAddress(address);
  const result = await sql.run('DELETE FROM users WHERE address = ?', [parsed.address]);
  if (result.changes === 0) throw notFound(parsed.address);
}

export async function setPassword(sql: Sql, address: string, password: string, now: () => number = Date.now): Promise<void> {
  const { address: normalised, user, domain } = parseAddress(address);
  checkPassword(password);
  if ((await rowOf(sql, normalised)) === undefined) throw notFound(normalised);
  const secrets = await credentialsFor(user, domain, password);
  const result = await sql.run('UPDATE users SET password_hash = ?, digest_realm = ?, ha1_md5 = ?, ha1_sha256 = ?, updated_at = ? WHERE address = ?', [
    secrets.passwordHash,
    secrets.realm,
    secrets.ha1.MD5,
    secrets.ha1['SHA-256'],
    now(),
    normalised,
  ]);
  // removed by someone else while we were hashing
  if (result.changes === 0) throw notFound(normalised);
}

/** Sets or clears (null or blank) the display name. */
export async function setDisplayName(sql: Sql, address: string, displayName: string | null, now: () => number = Date.now): Promise<void> {
  const normalised = parseAddress(address).address;
  const name = checkDisplayName(displayName);
  const result = await sql.run('UPDATE users SET display_name = ?, updated_at = ? WHERE address = ?', [name, now(), normalised]);
  if (result.changes === 0) throw notFound(normalised);
}

export async function listUsers(sql: Sql): Promise<UserSummary[]> {
  const rows = await sql.all<SummaryRow>('SELECT address, display_name, created_at, demo FROM users ORDER BY address');
  return rows.map((row) => summaryOf(row));
}

/**
 * The users whose address or display name contains `text` (case-insensitive; ASCII letters fold,
 * as lower() does on both engines), ordered by display name (the address when there is none), one
 * page. Empty text: everyone. Never more than a summary: no password data leaves this function.
 */
export async function searchUsers(sql: Sql, text: string, offset: number, limit: number): Promise<{ users: UserSummary[]; total: number }> {
  const needle = text.trim().toLowerCase();
  // LIKE with its wildcards escaped: instr() is SQLite's alone
  const where = needle === '' ? '' : "WHERE address LIKE ? ESCAPE '\\' OR lower(coalesce(display_name, '')) LIKE ? ESCAPE '\\'";
  const pattern = `%${needle.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const params = needle === '' ? [] : [pattern, pattern];
  const total = Number((await sql.get<{ n: number }>(`SELECT count(*) AS n FROM users ${where}`, params))?.n ?? 0);
  const rows = await sql.all<SummaryRow>(`SELECT address, display_name, created_at, demo FROM users ${where} ORDER BY lower(coalesce(display_name, address)), address LIMIT ? OFFSET ?`, [
    ...params,
    limit,
    offset,
  ]);
  return { users: rows.map((row) => summaryOf(row)), total };
}

/**
 * The user with that address (`alice@parley.local`, `sip:alice@parley.local`, any case), or
 * undefined, also when the text is not a valid address: this serves lookups from the wire.
 */
export async function findUser(sql: Sql, address: string): Promise<UserRecord | undefined> {
  const normalised = lenientAddress(address);
  return normalised === undefined ? undefined : recordOf(await rowOf(sql, normalised));
}

/** A user lookup for the SIP path: see cachedUserLookup. A kept answer comes at once, not through a promise. */
export type UserLookup = (address: string) => UserRecord | undefined | Promise<UserRecord | undefined>;

/**
 * findUser with memory: the server looks users up several times per request (the sender's
 * credentials, the recipient's existence), always for the same few thousand addresses. Answers are
 * kept until a user row changes (users_version, moved by triggers on either engine), so a change
 * by another process or node still counts: from the next request on SQLite, within a quarter
 * second on PostgreSQL (VersionedCache). A kept answer costs no query, and comes at once
 * (VersionedCache.peek): no promise, no microtask hop.
 */
export function cachedUserLookup(sql: Sql, options: VersionedCacheOptions = {}): UserLookup {
  const cache = new VersionedCache<UserRecord | null>(sql, 'SELECT v FROM users_version', options);
  const load = async (address: string): Promise<UserRecord | undefined> => (await cache.get(address, async () => (await findUser(sql, address)) ?? null)) ?? undefined;
  return (address) => {
    const kept = cache.peek(address);
    return kept === NOT_KEPT ? load(address) : (kept ?? undefined);
  };
}

/**
 * Checks a password against the scrypt hash (for HTTP Basic). Asynchronous: scrypt runs on the
 * libuv thread pool instead of blocking the server for ~80 ms. An unknown user costs the same
 * time as a wrong password, so the answer time does not tell which users exist.
 */
export async function verifyPassword(sql: Sql, address: string, password: string): Promise<boolean> {
  const normalised = lenientAddress(address);
  const row = normalised === undefined ? undefined : await rowOf(sql, normalised);
  if (row === undefined) {
    await hashPassword(password, randomBytes(SCRYPT_PARAMS.saltLength), SCRYPT_PARAMS);
    return false;
  }
  const stored = parsePasswordHash(row.password_hash, row.address);
  const actual = await hashPassword(password, stored.salt, stored.params);
  return actual.length === stored.hash.length && timingSafeEqual(actual, stored.hash);
}

/**
 * What changes whenever the user's password is set (the stored hash, salt included), or undefined
 * for no such user: a cache of verified passwords stays valid while this stays the same.
 */
export async function passwordStamp(sql: Sql, address: string): Promise<string | undefined> {
  const normalised = lenientAddress(address);
  return normalised === undefined ? undefined : (await rowOf(sql, normalised))?.password_hash;
}

// ---------------------------------------------------------------------------------------------

function lenientAddress(text: string): string | undefined {
  try {
    return parseAddress(text).address;
  } catch (error) {
    if (error instanceof DirectoryError) return undefined;
    throw error;
  }
}

const USER_BY_ADDRESS = 'SELECT address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, demo FROM users WHERE address = ?';

function rowOf(sql: Sql, address: string): Promise<UserRow | undefined> {
  return sql.get<UserRow>(USER_BY_ADDRESS, [address]);
}

function recordOf(row: UserRow | undefined): UserRecord | undefined {
  if (row === undefined) return undefined;
  return { ...summaryOf(row), realm: row.digest_realm, ha1: { MD5: row.ha1_md5, 'SHA-256': row.ha1_sha256 } };
}

type SummaryRow = Pick<UserRow, 'address' | 'display_name' | 'created_at' | 'demo'>;

function summaryOf(row: SummaryRow): UserSummary {
  const at = row.address.lastIndexOf('@');
  return {
    address: row.address,
    user: row.address.slice(0, at),
    domain: row.address.slice(at + 1),
    displayName: row.display_name,
    createdAt: new Date(Number(row.created_at)),
    demo: Number(row.demo) === 1,
  };
}

function exists(address: string): DirectoryError {
  return new DirectoryError('USER_EXISTS', `user ${address} already exists`);
}

function notFound(address: string): DirectoryError {
  return new DirectoryError('USER_NOT_FOUND', `user ${address} does not exist; see the users with "parley user list"`);
}

function checkPassword(password: string): void {
  if (password.length === 0) throw new DirectoryError('WEAK_PASSWORD', 'the password is empty; choose a non-empty password');
}

function checkDisplayName(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  const name = value.trim();
  if (name === '') return null;
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new DirectoryError('BAD_DISPLAY_NAME', 'the display name contains a control character (tab, newline…); use plain text');
  if (name.length > MAX_DISPLAY_NAME) throw new DirectoryError('BAD_DISPLAY_NAME', `the display name has ${name.length} characters; at most ${MAX_DISPLAY_NAME} are allowed`);
  return name;
}

async function credentialsFor(user: string, domain: string, password: string): Promise<{ passwordHash: string; realm: string; ha1: Record<DigestAlgorithm, string> }> {
  const salt = randomBytes(SCRYPT_PARAMS.saltLength);
  const hash = await hashPassword(password, salt, SCRYPT_PARAMS);
  const { logN, r, p } = SCRYPT_PARAMS;
  const passwordHash = `$scrypt$ln=${logN},r=${r},p=${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
  const realm = domain;
  return {
    passwordHash,
    realm,
    ha1: { MD5: computeHa1('MD5', user, realm, password), 'SHA-256': computeHa1('SHA-256', user, realm, password) },
  };
}

interface ScryptCost {
  logN: number;
  r: number;
  p: number;
  keyLength: number;
}

function hashPassword(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const N = 2 ** cost.logN;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, cost.keyLength, { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r }, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

function parsePasswordHash(text: string, address: string): { salt: Buffer; hash: Buffer; params: ScryptCost } {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$/.exec(text);
  const logN = Number(m?.[1]);
  if (m === null || logN < 10 || logN > 20) {
    throw new DirectoryError('CORRUPT_RECORD', `the stored password hash of ${address} is not readable; set a new password with "parley user passwd ${address}"`);
  }
  const hash = Buffer.from(m[5] ?? '', 'base64');
  return { salt: Buffer.from(m[4] ?? '', 'base64'), hash, params: { logN, r: Number(m[2]), p: Number(m[3]), keyLength: hash.length } };
}
