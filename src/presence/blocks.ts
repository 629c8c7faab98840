// Blocked watchers (issue 6; RFC 3856 §6.6 leaves authorization policy to the notifier): a user
// may block a watcher, who then sees them Offline — exactly the document of a user who is really
// offline, so the watcher gets no hint. The SQL of blocks lives here (the tables in schema.ts);
// the protocol code reads blocks through a BlockList.
//
// Every change is also appended to presence_block_changes, a short log the running server polls:
// a block added by `parley admin --data-dir` (another process) reaches the watcher's open
// subscriptions within a second, and one made in the server (the user's HTTP endpoint, the admin
// API) at once.

import type { Sql } from '../storage/index.ts';
import { VersionedCache } from '../storage/index.ts';
import { BLOCK_LIST, hasRoom } from './list-limits.ts';
import { sharedLoads } from './shared-loads.ts';

/** Changes older than this are pruned from the log: the server polls it every second or so. */
export const BLOCK_LOG_KEEP_MS = 10 * 60_000;

export interface PresenceBlock {
  /** the user who blocks, `alice@parley.local` */
  owner: string;
  /** who sees `owner` Offline, `mallory@parley.local` */
  watcher: string;
  since: Date;
}

/** One added or removed block, as the change log records it. */
export interface BlockChange {
  seq: number;
  owner: string;
  watcher: string;
}

export async function isBlocked(sql: Sql, owner: string, watcher: string): Promise<boolean> {
  return (await sql.get('SELECT 1 AS x FROM presence_blocks WHERE owner = ? AND watcher = ?', [owner, watcher])) !== undefined;
}

export async function getBlock(sql: Sql, owner: string, watcher: string): Promise<PresenceBlock | undefined> {
  const row = await sql.get<Row>('SELECT owner, watcher, created_at FROM presence_blocks WHERE owner = ? AND watcher = ?', [owner, watcher]);
  return row === undefined ? undefined : blockOf(row);
}

/** The blocks of one user, or of everyone when `owner` is undefined; by owner, then watcher. */
export async function listBlocks(sql: Sql, owner?: string): Promise<PresenceBlock[]> {
  const rows = owner === undefined
    ? await sql.all<Row>('SELECT owner, watcher, created_at FROM presence_blocks ORDER BY owner, watcher')
    : await sql.all<Row>('SELECT owner, watcher, created_at FROM presence_blocks WHERE owner = ? ORDER BY watcher', [owner]);
  return rows.map(blockOf);
}

/**
 * Blocks `watcher` for `owner` (an existing user: the foreign key refuses others). Returns the
 * block, whether it is new, and `full` when `owner` has MAX_BLOCKS blocks already (nothing
 * added); blocking twice keeps the first date.
 */
export function addBlock(sql: Sql, owner: string, watcher: string, now: number): Promise<{ block?: PresenceBlock; created: boolean; full: boolean }> {
  return sql.transaction(async (tx) => {
    const existing = await getBlock(tx, owner, watcher);
    if (existing !== undefined) return { block: existing, created: false, full: false };
    if (!(await hasRoom(tx, BLOCK_LIST, owner))) return { created: false, full: true };
    await tx.run('INSERT INTO presence_blocks (owner, watcher, created_at) VALUES (?, ?, ?)', [owner, watcher, now]);
    await logChange(tx, owner, watcher, now);
    return { block: { owner, watcher, since: new Date(now) }, created: true, full: false };
  });
}

/** Unblocks; false when `watcher` was not blocked by `owner`. */
export function removeBlock(sql: Sql, owner: string, watcher: string, now: number): Promise<boolean> {
  return sql.transaction(async (tx) => {
    const result = await tx.run('DELETE FROM presence_blocks WHERE owner = ? AND watcher = ?', [owner, watcher]);
    if (result.changes === 0) return false;
    await logChange(tx, owner, watcher, now);
    return true;
  });
}

/** The newest change's number, 0 when there was none: where a poller starts. */
export async function lastBlockChange(sql: Sql): Promise<number> {
  const row = await sql.get<{ seq: number | null }>('SELECT max(seq) AS seq FROM presence_block_changes');
  return Number(row?.seq ?? 0);
}

/** The changes after `seq`, oldest first. */
export async function blockChangesSince(sql: Sql, seq: number): Promise<BlockChange[]> {
  const rows = await sql.all<BlockChange>('SELECT seq, owner, watcher FROM presence_block_changes WHERE seq > ? ORDER BY seq', [seq]);
  return rows.map((r) => ({ seq: Number(r.seq), owner: r.owner, watcher: r.watcher }));
}

async function logChange(tx: Sql, owner: string, watcher: string, now: number): Promise<void> {
  // A poller reads the changes after the last number it saw, so numbers must become visible in
  // their order. SQLite has one writer at a time; on PostgreSQL a transaction that took number 6
  // could commit before one holding 5, and the poller would never see 5: writers of the log take
  // turns (the lock lasts until commit; readers are not held up).
  if (tx.engine === 'postgres') await tx.exec('LOCK TABLE presence_block_changes IN EXCLUSIVE MODE');
  await tx.run('INSERT INTO presence_block_changes (owner, watcher, at) VALUES (?, ?, ?)', [owner, watcher, now]);
  await tx.run('DELETE FROM presence_block_changes WHERE at < ?', [now - BLOCK_LOG_KEEP_MS]);
}

interface Row {
  owner: string;
  watcher: string;
  created_at: number;
}

function blockOf(row: Row): PresenceBlock {
  return { owner: row.owner, watcher: row.watcher, since: new Date(Number(row.created_at)) };
}

/** What the presence service reads of the blocks (a seam: tests pass a Map-backed one). */
export interface BlockList {
  /** true when `owner` has blocked `watcher` (both `user@domain`, lower case) */
  isBlocked(owner: string, watcher: string): Promise<boolean>;
  /** the watchers `owner` has blocked, read once for a NOTIFY to each of their watchers; absent: isBlocked() per watcher */
  blockedBy?(owner: string): Promise<ReadonlySet<string>>;
  /** the newest change's number */
  lastChange(): Promise<number>;
  changesSince(seq: number): Promise<BlockChange[]>;
  /** blocks changed (made by this process, or found in the log): what is kept in memory goes */
  forget?(): void;
}

/**
 * The blocks of the database, read for every NOTIFY: each owner's blocked watchers are kept in
 * memory until a list changes (presence_version), so a NOTIFY to each of many watchers does not
 * wait for the database. A change by another process counts from the next version check (1 ms on
 * SQLite, 250 ms on PostgreSQL); the poll of the log forgets them at once when it finds one.
 */
export function databaseBlockList(sql: Sql): BlockList {
  const blocked = new VersionedCache<ReadonlySet<string>>(sql, 'SELECT v FROM presence_version', { maxEntries: 10_000 });
  const load = sharedLoads(async (owner: string) => new Set((await sql.all<{ watcher: string }>('SELECT watcher FROM presence_blocks WHERE owner = ?', [owner])).map((r) => r.watcher)));
  return {
    isBlocked: async (owner, watcher) => (await blocked.get(owner, () => load(owner))).has(watcher),
    blockedBy: (owner) => blocked.get(owner, () => load(owner)),
    lastChange: () => lastBlockChange(sql),
    changesSince: (seq) => blockChangesSince(sql, seq),
    forget: () => blocked.clear(),
  };
}
