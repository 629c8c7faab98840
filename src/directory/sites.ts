// Sites: `Site:<name>`, the middle scope of the settings (Global → Site → per-user Tag). A user
// belongs to one site or to none (then only Global applies). Names compare case-insensitively,
// as in Skype for Business, and keep the case they were created with.

import type { Database, Migration } from '../storage/index.ts';
import { statement, transaction } from '../storage/index.ts';
import { parseAddress } from './address.ts';
import { DirectoryError } from './errors.ts';

/** Appended to DIRECTORY_MIGRATIONS (after the shipped `001-users`, which stays as it is). */
export const SITES_MIGRATION: Migration = {
  id: '002-sites',
  up: `CREATE TABLE sites (
  name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
  created_at INTEGER NOT NULL
) STRICT;
ALTER TABLE users ADD COLUMN site TEXT REFERENCES sites(name) ON DELETE RESTRICT;
CREATE INDEX users_site ON users(site);`,
};

export interface Site {
  /** as created, e.g. `Redmond` */
  name: string;
  /** `Site:Redmond` */
  identity: string;
  createdAt: Date;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** `Site:Redmond` or `Redmond` → `Redmond`; throws BAD_SITE_NAME. */
export function parseSiteIdentity(text: string): string {
  const trimmed = text.trim();
  const name = /^site:/i.test(trimmed) ? trimmed.slice(5) : trimmed;
  if (!NAME.test(name)) {
    throw new DirectoryError('BAD_SITE_NAME', `"${text}" is not a site identity; write Site:<name> or <name>, the name being 1 to 64 letters, digits, "-", "_" or "." starting with a letter or digit`);
  }
  return name;
}

export function listSites(db: Database): Site[] {
  const rows = db.prepare('SELECT name, created_at FROM sites ORDER BY name COLLATE NOCASE').all() as Array<{ name: string; created_at: number }>;
  return rows.map(siteOf);
}

/** The site with that name (any case), or undefined. */
export function findSite(db: Database, name: string): Site | undefined {
  const row = statement(db, 'SELECT name, created_at FROM sites WHERE name = ?').get(name) as { name: string; created_at: number } | undefined;
  return row === undefined ? undefined : siteOf(row);
}

export function requireSite(db: Database, name: string): Site {
  const site = findSite(db, name);
  if (site === undefined) throw new DirectoryError('SITE_NOT_FOUND', `there is no site ${name}; see the sites with Get-CsSite, or create it with New-CsSite -Identity Site:${name}`);
  return site;
}

export function createSite(db: Database, name: string, now: () => number = Date.now): Site {
  const checked = parseSiteIdentity(name);
  return transaction(db, () => {
    if (findSite(db, checked) !== undefined) throw new DirectoryError('SITE_EXISTS', `the site ${checked} already exists`);
    const at = now();
    db.prepare('INSERT INTO sites (name, created_at) VALUES (?, ?)').run(checked, at);
    return siteOf({ name: checked, created_at: at });
  });
}

/** How many users belong to the site. */
export function countSiteUsers(db: Database, name: string): number {
  const row = db.prepare('SELECT count(*) AS n FROM users WHERE site = ?').get(name) as { n: number };
  return Number(row.n);
}

/** Removes a site no user belongs to; SITE_IN_USE names how many do. */
export function removeSite(db: Database, name: string): void {
  transaction(db, () => {
    const site = requireSite(db, name);
    const users = countSiteUsers(db, site.name);
    if (users > 0) {
      throw new DirectoryError('SITE_IN_USE', `the site ${site.name} is still used by ${users} user${users === 1 ? '' : 's'}; move them with Set-CsUser -Site <other site or $Null> first`);
    }
    db.prepare('DELETE FROM sites WHERE name = ?').run(site.name);
  });
}

/** The site name of a user (null when none); USER_NOT_FOUND when there is no such user. */
export function userSite(db: Database, address: string): string | null {
  const normalised = parseAddress(address).address;
  const row = statement(db, 'SELECT site FROM users WHERE address = ?').get(normalised) as { site: string | null } | undefined;
  if (row === undefined) throw new DirectoryError('USER_NOT_FOUND', `user ${normalised} does not exist; see the users with Get-CsUser`);
  return row.site;
}

/** Moves a user to a site (by name, any case) or to none (null). */
export function setUserSite(db: Database, address: string, site: string | null, now: () => number = Date.now): void {
  const normalised = parseAddress(address).address;
  transaction(db, () => {
    const stored = site === null ? null : requireSite(db, site).name;
    const result = db.prepare('UPDATE users SET site = ?, updated_at = ? WHERE address = ?').run(stored, now(), normalised);
    if (Number(result.changes) === 0) throw new DirectoryError('USER_NOT_FOUND', `user ${normalised} does not exist; see the users with Get-CsUser`);
  });
}

function siteOf(row: { name: string; created_at: number }): Site {
  return { name: row.name, identity: `Site:${row.name}`, createdAt: new Date(row.created_at) };
}
