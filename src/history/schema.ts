// Conversation History's tables. A conversation is the page-mode messages between two users (a
// sorted pair), either direction, until ConversationIdleTimeout passes without one or either signs
// out; its messages are kept until it is closed and written to the spool as 'history' entries, then
// their bodies go (the spool entries carry them on). Rows of closed conversations stay a while for
// `parley history list` (HISTORY_KEEP_CLOSED_MS).
import type { MigrationSet } from '../storage/index.ts';

export const HISTORY_MIGRATIONS: MigrationSet = {
  capability: 'history',
  migrations: [
    {
      id: '001-conversations',
      up: {
        sqlite: `
CREATE TABLE history_conversations (
  id TEXT PRIMARY KEY,
  -- the participants, user_a < user_b
  user_a TEXT NOT NULL,
  user_b TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
  started_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  -- when it ends unless another message comes: last message + the shorter ConversationIdleTimeout of the two
  ends_at INTEGER NOT NULL,
  closed_at INTEGER,
  -- idle | signed-out (set when a sign-out ended it early)
  close_reason TEXT,
  message_count INTEGER NOT NULL DEFAULT 0,
  -- the spool entries made when it closed, JSON [{ "owner": …, "entry": "sp-…" }]
  entries TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX history_conversations_pair ON history_conversations (user_a, user_b, state);
CREATE INDEX history_conversations_open ON history_conversations (state, ends_at);
CREATE TABLE history_messages (
  conversation_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  call_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  -- null once written to the spool (and for offline messages: their spool entry holds them)
  body BLOB,
  -- relayed: a device took it; offline: spooled for an offline recipient; missed: unread, spooled as missed
  kind TEXT NOT NULL CHECK (kind IN ('relayed', 'offline', 'missed')),
  spool_entry_id TEXT,
  imdn_message_id TEXT,
  -- a display notification was asked for: unread by then, it becomes a missed conversation (null: none asked)
  display_due_at INTEGER,
  displayed INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX history_messages_due ON history_messages (display_due_at) WHERE display_due_at IS NOT NULL;
CREATE INDEX history_messages_imdn ON history_messages (imdn_message_id) WHERE imdn_message_id IS NOT NULL;
`,
        postgres: `
CREATE TABLE history_conversations (
  id TEXT PRIMARY KEY,
  user_a TEXT NOT NULL,
  user_b TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
  started_at BIGINT NOT NULL,
  last_at BIGINT NOT NULL,
  ends_at BIGINT NOT NULL,
  closed_at BIGINT,
  close_reason TEXT,
  message_count BIGINT NOT NULL DEFAULT 0,
  entries TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX history_conversations_pair ON history_conversations (user_a, user_b, state);
CREATE INDEX history_conversations_open ON history_conversations (state, ends_at);
CREATE TABLE history_messages (
  conversation_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  call_id TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  content_type TEXT NOT NULL,
  body BYTEA,
  kind TEXT NOT NULL CHECK (kind IN ('relayed', 'offline', 'missed')),
  spool_entry_id TEXT,
  imdn_message_id TEXT,
  display_due_at BIGINT,
  displayed BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX history_messages_due ON history_messages (display_due_at) WHERE display_due_at IS NOT NULL;
CREATE INDEX history_messages_imdn ON history_messages (imdn_message_id) WHERE imdn_message_id IS NOT NULL;
`,
      },
    },
  ],
};
