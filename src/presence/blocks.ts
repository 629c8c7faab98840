// Blocked watchers (issue 6; RFC 3856 §6.6 leaves authorization policy to the notifier): a user
// may block a watcher, who then sees them Offline — exactly the document of a user who is really
// offline, so the watcher gets no hint. The SQL of blocks lives here (the tables in schema.ts);
// the protocol code reads blocks through a BlockList.
//
// Every change is also appended to presence_block_changes, a short log the running server polls:
// a block added by `parley admin --data-dir` (another process) reaches the watcher's open
// subscriptions within a second, and one made in the server (the user's HTTP endpoint, the admin
// API) at once.

import type { Database } from '../storage/index.ts';
import { transaction } from '../storage/index.ts';
import { BLOCK_LIST, hasRoom } from './list-limits.ts';

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

export function isBlocked(db: Database, owner: string, watcher: string): boolean {
  return db.prepare('SELECT 1 AS x FROM presence_blocks WHERE owner = ? AND watcher = ?').get(owner, watcher) !== undefined;
}

export function getBlock(db: Database, owner: string, watcher: string): PresenceBlock | undefined {
  const row = db.prepare('SELECT owner, watcher, created_at FROM presence_blocks WHERE owner = ? AND watcher = ?').get(owner, watcher) as Row | undefined;
  return row === undefined ? undefined : blockOf(row);
}

/** The blocks of one user, or of everyone when `owner` is undefined; by owner, then watcher. */
export function listBlocks(db: Database, owner?: string): PresenceBlock[] {
  const rows = (owner === undefined
    ? db.prepare('SELECT owner, watcher, created_at FROM presence_blocks ORDER BY owner, watcher').all()
    : db.prepare('SELECT owner, watcher, created_at FROM presence_blocks WHERE owner = ? ORDER BY watcher').all(owner)) as unknown as Row[];
  return rows.map(blockOf);
}

/**
 * Blocks `watcher` for `owner` (an existing user: the foreign key refuses others). Returns the
 * block, whether it is new, and `full` when `owner` has MAX_BLOCKS blocks already (nothing
 * added); blocking twice keeps the first date.
 */
export function addBlock(db: Database, owner: string, watcher: string, now: number): { block?: PresenceBlock; created: boolean; full: boolean } {
  return transaction(db, () => {
    const existing = getBlock(db, owner, watcher);
    if (existing !== undefined) return { block: existing, created: false, full: false };
    if (!hasRoom(db, BLOCK_LIST, owner)) return { created: false, full: true };
    db.prepare('INSERT INTO presence_blocks (owner, watcher, created_at) VALUES (?, ?, ?)').run(owner, watcher, now);
    logChange(db, owner, watcher, now);
    return { block: { owner, watcher, since: new Date(now) }, created: true, full: false };
  });
}

/** Unblocks; false when `watcher` was not blocked by `owner`. */
export function removeBlock(db: Database, owner: string, watcher: string, now: number): boolean {
  return transaction(db, () => {
    const result = db.prepare('DELETE FROM presence_blocks WHERE owner = ? AND watcher = ?').run(owner, watcher);
    if (Number(result.changes) === 0) return false;
    logChange(db, owner, watcher, now);
    return true;
  });
}

/** The newest change's number, 0 when there was none: where a poller starts. */
export function lastBlockChange(db: Database): number {
  const row = db.prepare('SELECT max(seq) AS seq FROM presence_block_changes').get() as { seq: number | null } | undefined;
  return Number(row?.seq ?? 0);
}

/** The changes after `seq`, oldest first. */
export function blockChangesSince(db: Database, seq: number): BlockChange[] {
  const rows = db.prepare('SELECT seq, owner, watcher FROM presence_block_changes WHERE seq > ? ORDER BY seq').all(seq) as unknown as BlockChange[];
  return rows.map((r) => ({ seq: Number(r.seq), owner: r.owner, watcher: r.watcher }));
}

function logChange(db: Database, owner: string, watcher: string, now: number): void {
  db.prepare('INSERT INTO presence_block_changes (owner, watcher, at) VALUES (?, ?, ?)').run(owner, watcher, now);
  db.prepare('DELETE FROM presence_block_changes WHERE at < ?').run(now - BLOCK_LOG_KEEP_MS);
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
  isBlocked(owner: string, watcher: string): boolean;
  /** the newest change's number */
  lastChange(): number;
  changesSince(seq: number): BlockChange[];
}

/** The blocks of the database, read on every use (a change by another process counts at once). */
export function databaseBlockList(db: Database): BlockList {
  // read for every NOTIFY: the statement is prepared once
  const lookup = db.prepare('SELECT 1 AS x FROM presence_blocks WHERE owner = ? AND watcher = ?');
  return {
    isBlocked: (owner, watcher) => lookup.get(owner, watcher) !== undefined,
    lastChange: () => lastBlockChange(db),
    changesSince: (seq) => blockChangesSince(db, seq),
  };
}
