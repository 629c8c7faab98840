// The tables of presence: blocked watchers (blocks.ts) and the users' contact lists (contacts.ts).
import type { MigrationSet } from '../storage/index.ts';

/** Run after DIRECTORY_MIGRATIONS: blocks and lists belong to users and go when the user goes. */
export const PRESENCE_MIGRATIONS: MigrationSet = {
  capability: 'presence',
  migrations: [
    {
      id: '001-blocks',
      up: `CREATE TABLE presence_blocks (
  owner TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,
  watcher TEXT NOT NULL CHECK (watcher = lower(watcher)),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (owner, watcher)
) STRICT, WITHOUT ROWID;
CREATE TABLE presence_block_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  watcher TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;`,
    },
    {
      id: '002-contacts',
      up: `CREATE TABLE presence_contacts (
  owner TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,
  member TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (owner, member)
) STRICT, WITHOUT ROWID;
CREATE INDEX presence_contacts_member ON presence_contacts(member);`,
    },
    {
      // Issue 15: a contact list may hold partners' users too. They are not in users, so they live
      // in a table of their own (the members of presence_contacts keep their foreign key: a local
      // member goes when the user goes); the list is the union of both (contacts.ts).
      id: '003-remote-contacts',
      up: `CREATE TABLE presence_remote_contacts (
  owner TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,
  member TEXT NOT NULL CHECK (member = lower(member)),
  display_name TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (owner, member)
) STRICT, WITHOUT ROWID;`,
    },
  ],
};
