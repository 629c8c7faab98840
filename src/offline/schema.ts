// The History Spooler's tables: one row per spool entry (a conversation from one sender to one
// offline recipient), and its messages in order.
import type { MigrationSet } from '../storage/index.ts';

export const OFFLINE_MIGRATIONS: MigrationSet = {
  capability: 'offline',
  migrations: [
    {
      id: '001-spool',
      up: `
CREATE TABLE spool_entries (
  id TEXT PRIMARY KEY,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('waiting', 'delivering', 'delivered', 'failed')),
  created_at INTEGER NOT NULL,
  -- the end of the pickup delay: messages of the same sender to the same recipient join until then
  pickup_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  -- created_at + OfflineImMaxAge: a delivery still failing after it makes the entry failed
  expires_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  message_count INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  recipient_item_id TEXT,
  sender_item_id TEXT,
  delivered_at INTEGER,
  failed_at INTEGER
);
CREATE INDEX spool_entries_due ON spool_entries (state, next_attempt_at);
CREATE INDEX spool_entries_open ON spool_entries (sender, recipient, state, pickup_at);
CREATE INDEX spool_entries_recipient ON spool_entries (recipient, state);
CREATE TABLE spool_messages (
  entry_id TEXT NOT NULL REFERENCES spool_entries (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  call_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (entry_id, seq)
);
CREATE INDEX spool_messages_call_id ON spool_messages (call_id);
`,
    },
  ],
};
