import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// Secrets live in `<dataDir>/secrets/` (directory 0700, files 0600), made on first use and reused
// afterwards. Every node of a cluster sharing the directory agrees on them.

/** `<dataDir>/secrets/<name>` */
export function secretPath(dataDir: string, name: string): string {
  return path.join(dataDir, 'secrets', name);
}

/**
 * A binary secret (e.g. the nonce key), made on first use. Nonces signed with it stay valid across
 * a restart.
 */
export function loadSecret(dataDir: string, name: string, bytes = 32): Buffer {
  return loadOrCreate(secretPath(dataDir, name), () => randomBytes(bytes), (existing) => existing.length >= bytes);
}

export const ADMIN_TOKEN_FILE = 'admin.token';

/** Where the admin API's bearer token is kept: `<dataDir>/secrets/admin.token`. */
export function adminTokenPath(dataDir: string): string {
  return secretPath(dataDir, ADMIN_TOKEN_FILE);
}

/**
 * The admin API's bearer token: 32 random bytes in base64url (43 characters, one line), made at
 * the first start and reused afterwards. The file is owner-only; looser permissions (a copy, a
 * restore from a backup) are tightened back to 0600.
 */
export function loadAdminToken(dataDir: string): string {
  const file = adminTokenPath(dataDir);
  const text = loadOrCreate(file, () => Buffer.from(`${randomBytes(32).toString('base64url')}\n`), (existing) => /^[A-Za-z0-9_-]{43,}\s*$/.test(existing.toString('utf8')));
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return text.toString('utf8').trim();
}

/** The file's content when `valid` accepts it; otherwise a new one from `make`, written owner-only. */
function loadOrCreate(file: string, make: () => Buffer, valid: (existing: Buffer) => boolean): Buffer {
  let replace = false;
  try {
    const existing = readFileSync(file);
    if (valid(existing)) return existing;
    replace = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const secret = make();
  try {
    writeFileSync(file, secret, { mode: 0o600, flag: replace ? 'w' : 'wx' });
    return secret;
  } catch (err) {
    // Another process made it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file);
    throw err;
  }
}
