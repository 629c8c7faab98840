// Demo users for a first start (`parley serve --demo`, what `npm start` runs): on a data directory
// that had no database before this start (on PostgreSQL: a database with no user yet), three users of the domain with random passwords, each in
// the others' contact lists so presence shows at once, marked demo in the directory (Get-CsUser
// `Demo : True`; `parley user remove` deletes them like anyone). Never on an existing directory,
// never with a well-known password: the passwords are printed once and kept nowhere else.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { addUser, DIRECTORY_MIGRATIONS } from '../directory/index.ts';
import { addToContacts, PRESENCE_MIGRATIONS } from '../presence/index.ts';
import { recordAudit, SETTINGS_MIGRATIONS } from '../settings/index.ts';
import type { StorageLocation } from '../storage/index.ts';
import { DATABASE_FILE, migrate, openStorage } from '../storage/index.ts';
import { randomBase32 } from '../random-id.ts';

export const DEMO_PEOPLE = [
  { user: 'alice', displayName: 'Alice Adams' },
  { user: 'bob', displayName: 'Bob Brown' },
  { user: 'carol', displayName: 'Carol Clark' },
] as const;

export interface DemoUser {
  address: string;
  displayName: string;
  password: string;
}

/** Whether the data directory has no database yet: only then are demo users made. Call before the server opens it. */
export function isNewDataDir(dataDir: string): boolean {
  return !existsSync(join(dataDir, DATABASE_FILE));
}

/** 16 characters of RFC 4648 base32 from 80 random bits: typed by hand, never guessed. */
export function randomPassword(): string {
  return randomBase32(10);
}

/**
 * Creates the demo users (through a connection of its own: the server may hold another). On
 * PostgreSQL, only when the database has no user yet (none when it has: an organisation's database
 * is never given demo users); on SQLite the caller asked isNewDataDir before the server started.
 */
export async function createDemoUsers(where: StorageLocation, domain: string, now: () => number = Date.now): Promise<DemoUser[]> {
  const { sql } = await openStorage(where);
  try {
    await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, PRESENCE_MIGRATIONS]);
    if (sql.engine === 'postgres' && Number((await sql.get<{ n: number }>('SELECT count(*) AS n FROM users'))?.n) > 0) return [];
    const made: DemoUser[] = [];
    for (const person of DEMO_PEOPLE) {
      const user = { address: `${person.user}@${domain}`, displayName: person.displayName, password: randomPassword() };
      await addUser(sql, { ...user, demo: true }, now);
      made.push(user);
    }
    const change = { actor: 'system', cmdlet: 'parley serve --demo', now };
    // the demo users were made just now: they are the users the contact lists may hold
    const rules = { userExists: async (address: string) => made.some((u) => u.address === address) };
    await sql.transaction(async (tx) => {
      for (const owner of made) {
        await recordAudit(tx, change, owner.address, null, null, 'created (demo user)');
        for (const other of made) if (other !== owner) await addToContacts(tx, owner.address, other.address, now(), rules);
      }
    });
    return made;
  } finally {
    await sql.close();
  }
}

/**
 * What to open and how to add a real user: printed after the ready line on every start. `webUrl`
 * is the server's (RunningServer.webUrl): publicUrl, or an address of it, never 0.0.0.0.
 */
export function welcomeLines(webUrl: string, domain: string): string[] {
  return [
    `Open ${webUrl} in a browser to use Parley (or: bin/parley chat --user you@${domain}).`,
    `Add a user: bin/parley user add you@${domain} --password … --display-name "Your Name"`,
  ];
}

/** The demo users, printed once after the ready line on the start that made them. */
export function demoLines(users: readonly DemoUser[], webUrl: string): string[] {
  const width = Math.max(...users.map((u) => u.address.length));
  return [
    `Demo users (made now, on this new data directory; their passwords are shown only this once):`,
    ...users.map((u) => `  ${u.address.padEnd(width)}  password ${u.password}  (${u.displayName})`),
    `Sign in as two of them in two browser windows at ${webUrl} to try it out.`,
    `Remove them when done: bin/parley user remove ${users[0]?.address ?? 'alice@DOMAIN'} (and the others).`,
  ];
}
