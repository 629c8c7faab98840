// A database for the presence tests, on either engine: the directory's tables (the presence tables
// refer to users), the presence tables, and users written straight as rows (hashing a password
// per user would cost the tests their time, and the presence code reads nothing but the address
// and the display name).
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import type { EventService } from '../../src/events/index.ts';
import { PRESENCE_MIGRATIONS } from '../../src/presence/index.ts';
import type { PresenceService } from '../../src/presence/index.ts';
import { migrate } from '../../src/storage/index.ts';
import type { Sql, SqlDatabase } from '../../src/storage/index.ts';
import type { EngineUnderTest } from '../harness/engines.ts';

const open = new Set<SqlDatabase>();

/** Closes (on PostgreSQL: drops) every database presenceDatabase opened: a file's afterEach. */
export async function closePresenceDatabases(): Promise<void> {
  const all = [...open];
  open.clear();
  await Promise.all(all.map((sql) => sql.close()));
}

/**
 * A fresh database of `engine` with the presence tables and `users` (full addresses) in it;
 * closed by closePresenceDatabases.
 */
export async function presenceDatabase(engine: EngineUnderTest, users: ReadonlyArray<string | { address: string; displayName: string | null }> = []): Promise<SqlDatabase> {
  const sql = await engine.open();
  open.add(sql);
  await migrate(sql, [DIRECTORY_MIGRATIONS, PRESENCE_MIGRATIONS]);
  for (const u of users) await addUserRow(sql, typeof u === 'string' ? { address: u, displayName: null } : u);
  return sql;
}

/** A user as a row (no password anyone could use), in a site when one is given. */
export async function addUserRow(sql: Sql, user: { address: string; displayName: string | null; site?: string | null }): Promise<void> {
  await sql.run(
    "INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at, site) VALUES (?, ?, '$none', ?, '', '', 0, 0, ?)",
    [user.address, user.displayName, user.address.slice(user.address.indexOf('@') + 1), user.site ?? null],
  );
}

/** Removes a user as Remove-CsUser does: the user's row goes, and what refers to it with it. */
export async function removeUserRow(sql: Sql, address: string): Promise<void> {
  await sql.run('DELETE FROM users WHERE address = ?', [address]);
}

/** Waits until `done()` holds, looking after each turn of the event loop (fails after a generous while). */
export async function until(done: () => boolean | Promise<boolean>, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come about`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Waits until presence and the notifier have nothing under way: every change's lookups done, every
 * NOTIFY due sent or found unchanged. What a test asserts after it is what the changes led to.
 */
export async function quiet(presence: PresenceService, events: EventService): Promise<void> {
  // a change's lookup leads to NOTIFYs, whose documents may start more lookups: a few rounds
  for (let round = 0; round < 3; round++) {
    await presence.settled();
    await events.notifier.prepared();
  }
}
