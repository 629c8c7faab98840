// Pull subscriptions over the change log (EWS Subscribe / GetEvents / Unsubscribe). A subscription
// is a position in mail_changes; it lapses when not polled within its timeout, as in Exchange.
import type { Database } from '../storage/index.ts';
import { transaction } from '../storage/index.ts';
import type { ChangeKind } from './changes.ts';
import { lastChange } from './changes.ts';
import { MailboxError } from './errors.ts';
import { newId } from './ids.ts';

export interface Subscription {
  id: string;
  mailboxId: number;
  /** empty: every folder of the mailbox */
  folderIds: string[];
  eventTypes: string[];
  position: number;
  timeoutMinutes: number;
}

export interface LoggedChange {
  seq: number;
  folderId: string;
  itemId: string;
  kind: ChangeKind;
  at: number;
}

interface Row {
  id: string;
  mailbox_id: number;
  folders_json: string;
  events_json: string;
  position: number;
  timeout_minutes: number;
  expires_at: number;
}

export function createSubscription(db: Database, mailboxId: number, folderIds: string[], eventTypes: string[], timeoutMinutes: number, start: number | undefined, now: number): Subscription {
  const id = newId();
  const position = start ?? lastChange(db);
  db.prepare('INSERT INTO mail_subscriptions (id, mailbox_id, folders_json, events_json, position, timeout_minutes, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    id, mailboxId, JSON.stringify(folderIds), JSON.stringify(eventTypes), position, timeoutMinutes, now + timeoutMinutes * 60_000,
  );
  return { id, mailboxId, folderIds, eventTypes, position, timeoutMinutes };
}

/** The caller's live subscription; SUBSCRIPTION_NOT_FOUND when unknown or lapsed, ACCESS_DENIED when another mailbox's. */
export function getSubscription(db: Database, mailboxId: number, id: string, now: number): Subscription {
  const row = db.prepare('SELECT * FROM mail_subscriptions WHERE id = ?').get(id) as Row | undefined;
  if (row === undefined || row.expires_at < now) throw new MailboxError('SUBSCRIPTION_NOT_FOUND', 'no live subscription has that id (it lapsed or was removed); subscribe again');
  if (row.mailbox_id !== mailboxId) throw new MailboxError('ACCESS_DENIED', 'the subscription belongs to another mailbox');
  return { id: row.id, mailboxId: row.mailbox_id, folderIds: JSON.parse(row.folders_json) as string[], eventTypes: JSON.parse(row.events_json) as string[], position: row.position, timeoutMinutes: row.timeout_minutes };
}

/** Changes after `from` in the subscription's folders (at most `max`), and moves the subscription there. */
export function pollSubscription(db: Database, sub: Subscription, from: number, max: number, now: number): { changes: LoggedChange[]; more: boolean; position: number } {
  return transaction(db, () => {
    const rows = db.prepare('SELECT seq, folder_id, item_id, kind, at FROM mail_changes WHERE mailbox_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(sub.mailboxId, from, max + 1) as Array<{ seq: number; folder_id: string; item_id: string; kind: ChangeKind; at: number }>;
    const more = rows.length > max;
    const window = rows.slice(0, max);
    const position = window.at(-1)?.seq ?? from;
    const folders = new Set(sub.folderIds);
    const changes = window
      .filter((r) => folders.size === 0 || folders.has(r.folder_id))
      .map((r) => ({ seq: r.seq, folderId: r.folder_id, itemId: r.item_id, kind: r.kind, at: r.at }));
    db.prepare('UPDATE mail_subscriptions SET position = ?, expires_at = ? WHERE id = ?').run(position, now + sub.timeoutMinutes * 60_000, sub.id);
    return { changes, more, position };
  });
}

export function removeSubscription(db: Database, mailboxId: number, id: string, now: number): void {
  const sub = getSubscription(db, mailboxId, id, now);
  db.prepare('DELETE FROM mail_subscriptions WHERE id = ?').run(sub.id);
}
