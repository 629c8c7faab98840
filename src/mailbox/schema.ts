import type { MigrationSet } from '../storage/index.ts';

/**
 * The embedded mailbox. Ids of folders and items are random (16 bytes, base64url), never sequence
 * numbers; every lookup is also scoped to the caller's mailbox. `change_key` is replaced on every
 * change. `internet_message_id` is unique per mailbox: the offline pipeline's idempotence key.
 * Times are milliseconds since the epoch.
 */
export const MAILBOX_MIGRATIONS: MigrationSet = {
  capability: 'mailbox',
  migrations: [
    {
      id: '001-mailboxes',
      up: `CREATE TABLE mailboxes (
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL UNIQUE CHECK (address = lower(address)),
  created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE mail_folders (
  id TEXT NOT NULL PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  parent_id TEXT REFERENCES mail_folders(id) ON DELETE CASCADE,
  distinguished TEXT,
  display_name TEXT NOT NULL,
  folder_class TEXT NOT NULL,
  change_key TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (mailbox_id, distinguished)
) STRICT;
CREATE UNIQUE INDEX mail_folders_name ON mail_folders (parent_id, lower(display_name));
CREATE TABLE mail_items (
  id TEXT NOT NULL PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  folder_id TEXT NOT NULL REFERENCES mail_folders(id) ON DELETE CASCADE,
  item_class TEXT NOT NULL,
  subject TEXT NOT NULL,
  body_html TEXT,
  body_text TEXT,
  from_address TEXT,
  from_name TEXT,
  to_json TEXT NOT NULL,
  cc_json TEXT NOT NULL,
  sent_at INTEGER,
  received_at INTEGER NOT NULL,
  is_read INTEGER NOT NULL CHECK (is_read IN (0, 1)),
  internet_message_id TEXT,
  conversation_topic TEXT,
  size INTEGER NOT NULL,
  change_key TEXT NOT NULL,
  soft_deleted INTEGER NOT NULL DEFAULT 0 CHECK (soft_deleted IN (0, 1)),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX mail_items_message_id ON mail_items (mailbox_id, internet_message_id) WHERE internet_message_id IS NOT NULL;
CREATE INDEX mail_items_folder ON mail_items (folder_id, soft_deleted, received_at);`,
    },
    {
      // what happened in each folder, in order: SyncFolderItems (and later GetEvents) read it
      id: '002-changes',
      up: `CREATE TABLE mail_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  folder_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('create', 'update', 'read', 'delete')),
  at INTEGER NOT NULL
) STRICT;
CREATE INDEX mail_changes_folder ON mail_changes (folder_id, seq);
INSERT INTO mail_changes (mailbox_id, folder_id, item_id, kind, at)
  SELECT mailbox_id, folder_id, id, 'create', created_at FROM mail_items WHERE soft_deleted = 0 ORDER BY created_at;`,
    },
    {
      // EWS pull subscriptions: a position in mail_changes, the folders (none = all) and event types
      id: '003-subscriptions',
      up: `CREATE TABLE mail_subscriptions (
  id TEXT NOT NULL PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  folders_json TEXT NOT NULL,
  events_json TEXT NOT NULL,
  position INTEGER NOT NULL,
  timeout_minutes INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;`,
    },
    {
      // accounts allowed to use ExchangeImpersonation (the service account of an offline-IM gateway)
      id: '004-impersonation',
      up: `CREATE TABLE mail_impersonation_rights (
  address TEXT NOT NULL PRIMARY KEY CHECK (address = lower(address)),
  granted_at INTEGER NOT NULL
) STRICT;`,
    },
    {
      // outbound SMTP: a durable queue of messages for other organisations, retried with back-off
      id: '005-smtp-outbox',
      up: `CREATE TABLE mail_outbox (
  id TEXT NOT NULL PRIMARY KEY,
  sender TEXT NOT NULL,
  recipients_json TEXT NOT NULL,
  message_json TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('waiting', 'sent', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_at);`,
    },
    {
      // folder counts (unread) and the Missed Conversation counts of message-summary read this
      // index instead of every row of the folder
      id: '006-items-by-class-and-read',
      up: 'CREATE INDEX mail_items_folder_class_read ON mail_items (folder_id, soft_deleted, item_class, is_read);',
    },
    {
      // the mailbox's size (its items' sizes summed) and its soft-deleted items' apart, kept up to
      // date by the item functions so a quota check reads one row instead of every item (usage.ts)
      id: '007-mailbox-size',
      up: `ALTER TABLE mailboxes ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN deleted_size INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET
  size = (SELECT coalesce(sum(i.size), 0) FROM mail_items i WHERE i.mailbox_id = mailboxes.id AND i.soft_deleted = 0),
  deleted_size = (SELECT coalesce(sum(i.size), 0) FROM mail_items i WHERE i.mailbox_id = mailboxes.id AND i.soft_deleted = 1);`,
    },
    {
      // the distinguished folders every Exchange mailbox has and EWS clients such as DavMail look up
      // when they sign in (Junk Email, Outbox, Calendar, Contacts), added to existing mailboxes
      // (ids: 22 hex characters of randomness, the shape of ids we issue). A user folder of the
      // same name under the root keeps its place; that mailbox goes without the new one.
      id: '008-more-distinguished-folders',
      up: `INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at)
  SELECT lower(hex(randomblob(11))), r.mailbox_id, r.id, 'junkemail', 'Junk Email', 'IPF.Note', lower(hex(randomblob(6))), r.created_at
  FROM mail_folders r WHERE r.distinguished = 'msgfolderroot'
    AND NOT EXISTS (SELECT 1 FROM mail_folders x WHERE x.mailbox_id = r.mailbox_id AND (x.distinguished = 'junkemail' OR (x.parent_id = r.id AND lower(x.display_name) = lower('Junk Email'))));
INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at)
  SELECT lower(hex(randomblob(11))), r.mailbox_id, r.id, 'outbox', 'Outbox', 'IPF.Note', lower(hex(randomblob(6))), r.created_at
  FROM mail_folders r WHERE r.distinguished = 'msgfolderroot'
    AND NOT EXISTS (SELECT 1 FROM mail_folders x WHERE x.mailbox_id = r.mailbox_id AND (x.distinguished = 'outbox' OR (x.parent_id = r.id AND lower(x.display_name) = lower('Outbox'))));
INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at)
  SELECT lower(hex(randomblob(11))), r.mailbox_id, r.id, 'calendar', 'Calendar', 'IPF.Appointment', lower(hex(randomblob(6))), r.created_at
  FROM mail_folders r WHERE r.distinguished = 'msgfolderroot'
    AND NOT EXISTS (SELECT 1 FROM mail_folders x WHERE x.mailbox_id = r.mailbox_id AND (x.distinguished = 'calendar' OR (x.parent_id = r.id AND lower(x.display_name) = lower('Calendar'))));
INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at)
  SELECT lower(hex(randomblob(11))), r.mailbox_id, r.id, 'contacts', 'Contacts', 'IPF.Contact', lower(hex(randomblob(6))), r.created_at
  FROM mail_folders r WHERE r.distinguished = 'msgfolderroot'
    AND NOT EXISTS (SELECT 1 FROM mail_folders x WHERE x.mailbox_id = r.mailbox_id AND (x.distinguished = 'contacts' OR (x.parent_id = r.id AND lower(x.display_name) = lower('Contacts'))));`,
    },
    {
      // retention (retention.ts): the change log is compacted below a floor; a SyncState or
      // watermark below it is refused (the client starts over), and the item index finds the
      // Create rows a later Delete makes pointless
      id: '009-change-log-floor',
      up: `CREATE TABLE mail_changes_floor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
) STRICT;
INSERT INTO mail_changes_floor (id, seq) VALUES (1, 0);
CREATE INDEX mail_changes_item ON mail_changes (item_id, folder_id);`,
    },
    {
      // mail queued by the offline spool for a partner organisation's user (issue 15): the
      // delivery key (the spool entry's Message-ID) makes queueing idempotent — a spool entry
      // delivered again after a crash finds the outbox entry it made — and the trace id lets the
      // sender's trace (`parley trace sp-…`) show what SMTP did with it
      id: '010-outbox-delivery-key',
      up: `ALTER TABLE mail_outbox ADD COLUMN delivery_key TEXT;
ALTER TABLE mail_outbox ADD COLUMN trace_id TEXT;
CREATE UNIQUE INDEX mail_outbox_delivery_key ON mail_outbox (delivery_key) WHERE delivery_key IS NOT NULL;`,
    },
  ],
};
