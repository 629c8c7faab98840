// Sites: `Site:<name>`, the middle scope of the settings (Global → Site → per-user Tag). A user
// belongs to one site or to none (then only Global applies). Names compare case-insensitively,
// as in Skype for Business, and keep the case they were created with.

import type { Migration, Sql } from '../storage/index.ts';
import { isUniqueViolation } from '../storage/index.ts';
import { parseAddress } from './address.ts';
import { DirectoryError } from './errors.ts';

/** Appended to DIRECTORY_MIGRATIONS (after the shipped `001-users`, which stays as it is). */
export const SITES_MIGRATION: Migration = {
  id: '002-sites',
  up: {
    sqlite: `CREATE TABLE sites (
  name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
  created_at INTEGER NOT NULL
) STRICT;
ALTER TABLE users ADD COLUMN site TEXT REFERENCES sites(name) ON DELETE RESTRICT;
CREATE INDEX users_site ON users(site);`,
    // no COLLATE NOCASE: the names are ASCII, unique in any case through lower(name), and looked up by it
    postgres: `CREATE TABLE sites (
  name TEXT NOT NULL PRIMARY KEY,
  created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX sites_name_any_case ON sites (lower(name));
ALTER TABLE users ADD COLUMN site TEXT REFERENCES sites(name) ON DELETE RESTRICT;
CREATE INDEX users_site ON users(site);`,
  },
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

export async function listSites(sql: Sql): Promise<Site[]> {
  const rows = await sql.all<SiteRow>('SELECT name, created_at FROM sites ORDER BY lower(name), name');
  return rows.map(siteOf);
}

/** The site with that name (any case), or undefined. */
export async function findSite(sql: Sql, name: string): Promise<Site | undefined> {
  return siteOrNot(await sql.get<SiteRow>(SITE_BY_NAME, [name]));
}

export async function requireSite(sql: Sql, name: string): Promise<Site> {
  const site = await findSite(sql, name);
  if (site === undefined) throw new DirectoryError('SITE_NOT_FOUND', `there is no site ${name}; see the sites with Get-CsSite, or create it with New-CsSite -Identity Site:${name}`);
  return site;
}

export async function createSite(sql: Sql, name: string, now: () => number = Date.now): Promise<Site> {
  const checked = parseSiteIdentity(name);
  const at = now();
  try {
    await sql.run('INSERT INTO sites (name, created_at) VALUES (?, ?)', [checked, at]);
  } catch (error) {
    // the same name in any case (COLLATE NOCASE on SQLite, the unique lower(name) on PostgreSQL)
    if (isUniqueViolation(error)) throw new DirectoryError('SITE_EXISTS', `the site ${checked} already exists`);
    throw error;
  }
  return siteOf({ name: checked, created_at: at });
}

/** How many users belong to the site. */
export async function countSiteUsers(sql: Sql, name: string): Promise<number> {
  const row = await sql.get<{ n: number }>('SELECT count(*) AS n FROM users WHERE site = ?', [name]);
  return Number(row?.n ?? 0);
}

/** Removes a site no user belongs to; SITE_IN_USE names how many do. */
export async function removeSite(sql: Sql, name: string): Promise<void> {
  await sql.transaction(async (tx) => {
    const site = await requireSite(tx, name);
    const users = await countSiteUsers(tx, site.name);
    if (users > 0) {
      throw new DirectoryError('SITE_IN_USE', `the site ${site.name} is still used by ${users} user${users === 1 ? '' : 's'}; move them with Set-CsUser -Site <other site or $Null> first`);
    }
    await tx.run('DELETE FROM sites WHERE name = ?', [site.name]);
  });
}

/** The site name of a user (null when none); USER_NOT_FOUND when there is no such user. */
export async function userSite(sql: Sql, address: string): Promise<string | null> {
  const normalised = parseAddress(address).address;
  const row = await sql.get<{ site: string | null }>('SELECT site FROM users WHERE address = ?', [normalised]);
  if (row === undefined) throw new DirectoryError('USER_NOT_FOUND', `user ${normalised} does not exist; see the users with Get-CsUser`);
  return row.site;
}

/** Moves a user to a site (by name, any case) or to none (null). */
export async function setUserSite(sql: Sql, address: string, site: string | null, now: () => number = Date.now): Promise<void> {
  const normalised = parseAddress(address).address;
  await sql.transaction(async (tx) => {
    const stored = site === null ? null : (await requireSite(tx, site)).name;
    const result = await tx.run('UPDATE users SET site = ?, updated_at = ? WHERE address = ?', [stored, now(), normalised]);
    if (result.changes === 0) throw new DirectoryError('USER_NOT_FOUND', `user ${normalised} does not exist; see the users with Get-CsUser`);
  });
}

interface SiteRow {
  name: string;
  created_at: number;
}

// lower(name) on both engines: SQLite's column compares without case too, PostgreSQL's does not
const SITE_BY_NAME = 'SELECT name, created_at FROM sites WHERE lower(name) = lower(?)';

function siteOrNot(row: SiteRow | undefined): Site | undefined {
  return row === undefined ? undefined : siteOf(row);
}

function siteOf(row: SiteRow): Site {
  return { name: row.name, identity: `Site:${row.name}`, createdAt: new Date(Number(row.created_at)) };
}
