// What Conversation History (issue 14, src/history) kept on disk after a relayed-MESSAGE run:
// its rows and the database's size, read on a read-only connection of <dataDir>/parley.db while
// the server still runs (WAL: the reader sees the last commit). It tells the "history on" run from
// the "history off" one beyond their rates: with EnableIMAutoArchiving True for everyone the
// bodies stay in history_messages for ConversationIdleTimeout (10 min, longer than the run), with
// False for everyone nothing is stored. A server without src/history has no such tables: the
// reading says so instead of failing.

import { statSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export interface HistoryStore {
  /** rows of history_conversations / history_messages; undefined when the tables do not exist */
  conversations?: number;
  messages?: number;
  /** parley.db plus its -wal file, bytes */
  databaseBytes: number;
}

function fileBytes(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function countRows(db: DatabaseSync, table: string): number | undefined {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
  if (!exists) return undefined;
  return Number((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
}

export function readHistoryStore(dataDir: string): HistoryStore {
  const file = path.join(dataDir, 'parley.db');
  const databaseBytes = fileBytes(file) + fileBytes(`${file}-wal`);
  const db = new DatabaseSync(file, { readOnly: true, timeout: 5_000 });
  try {
    return { conversations: countRows(db, 'history_conversations'), messages: countRows(db, 'history_messages'), databaseBytes };
  } finally {
    db.close();
  }
}
