// The History Spooler's tables: one row per spool entry (a conversation from one sender to one
// offline recipient, or one participant's record of a conversation: see 004-kinds), and its
// messages in order.
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
    {
      // the quotas (quota.ts): each entry's bytes (its messages' bodies), what purges gave back
      // (the running server reads it to release what a purge by \`parley spooler\` freed), and the
      // refusals per user and reason, for \`parley spooler quota\`
      id: '002-quotas',
      up: `
ALTER TABLE spool_entries ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE spool_entries SET bytes = (SELECT coalesce(sum(length(m.body)), 0) FROM spool_messages m WHERE m.entry_id = spool_entries.id);
CREATE TABLE spool_releases (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  messages INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE TABLE spool_refusals (
  address TEXT NOT NULL,
  reason TEXT NOT NULL,
  count INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  last_peer TEXT NOT NULL,
  last_warning TEXT NOT NULL,
  PRIMARY KEY (address, reason)
);
`,
    },
    {
      // retention (retention.ts): delivered entries are purged oldest first, and /metrics shows the
      // oldest kept one; a partial index holds only delivered entries, so the spool's hot path
      // (waiting → delivering) does not maintain it
      id: '003-delivered-index',
      up: "CREATE INDEX spool_entries_delivered ON spool_entries (delivered_at) WHERE state = 'delivered';",
    },
    {
      // Conversation History (src/history) delivers through the spool too: an entry's kind says
      // what it makes — offline: the recipient's Missed item and the sender's copy; unread: the
      // same, for messages a signed-in recipient never displayed; history: one Conversation item
      // for its owner (the entry's sender), both directions in it. A history entry's messages name
      // their own sender; its notes are sentences the transcript adds after them (a JSON array).
      id: '004-kinds',
      up: `
ALTER TABLE spool_entries ADD COLUMN kind TEXT NOT NULL DEFAULT 'offline' CHECK (kind IN ('offline', 'unread', 'history'));
ALTER TABLE spool_entries ADD COLUMN conversation_id TEXT;
ALTER TABLE spool_entries ADD COLUMN notes TEXT;
ALTER TABLE spool_messages ADD COLUMN sender TEXT;
`,
    },
    {
      // Partner organisations (issue 15): email — a local sender's conversation with a partner's
      // user who was offline, sent as an ordinary e-mail (and the sender's copy); note — a
      // partner's messages to an offline local user, a plain note in the recipient's Inbox. The
      // kind's CHECK is part of the table, which SQLite cannot alter: both tables are rebuilt.
      // With foreign keys on (they cannot be turned off inside the migration's transaction),
      // dropping spool_entries first would cascade into spool_messages: the messages are copied to
      // their new table first, the old child is dropped before its parent, and renaming the new
      // parent rewrites the new child's REFERENCES (SQLite ≥ 3.26, legacy_alter_table off).
      id: '005-partner-kinds',
      up: `
CREATE TABLE spool_entries_005 (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL DEFAULT 'offline' CHECK (kind IN ('offline', 'unread', 'history', 'email', 'note')),
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
  bytes INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  -- the recipient's item; of an email entry, its outbox entry (mail_outbox)
  recipient_item_id TEXT,
  sender_item_id TEXT,
  delivered_at INTEGER,
  failed_at INTEGER,
  conversation_id TEXT,
  notes TEXT
);
INSERT INTO spool_entries_005 (id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, attempts, message_count, bytes, last_error, recipient_item_id, sender_item_id, delivered_at, failed_at, conversation_id, notes)
  SELECT id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, attempts, message_count, bytes, last_error, recipient_item_id, sender_item_id, delivered_at, failed_at, conversation_id, notes FROM spool_entries;
CREATE TABLE spool_messages_005 (
  entry_id TEXT NOT NULL REFERENCES spool_entries_005 (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  call_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  body BLOB NOT NULL,
  sender TEXT,
  PRIMARY KEY (entry_id, seq)
);
INSERT INTO spool_messages_005 (entry_id, seq, call_id, received_at, content_type, body, sender)
  SELECT entry_id, seq, call_id, received_at, content_type, body, sender FROM spool_messages;
DROP TABLE spool_messages;
DROP TABLE spool_entries;
ALTER TABLE spool_entries_005 RENAME TO spool_entries;
ALTER TABLE spool_messages_005 RENAME TO spool_messages;
CREATE INDEX spool_entries_due ON spool_entries (state, next_attempt_at);
CREATE INDEX spool_entries_open ON spool_entries (sender, recipient, state, pickup_at);
CREATE INDEX spool_entries_recipient ON spool_entries (recipient, state);
CREATE INDEX spool_entries_delivered ON spool_entries (delivered_at) WHERE state = 'delivered';
CREATE INDEX spool_messages_call_id ON spool_messages (call_id);
`,
    },
  ],
};
