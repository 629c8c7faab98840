// Pull subscriptions over the change log (EWS Subscribe / GetEvents / Unsubscribe). A subscription
// is a position in mail_changes; it lapses when not polled within its timeout, as in Exchange.
import type { Sql } from '../storage/index.ts';
import type { ChangeKind } from './changes.ts';
import { lastChange } from './changes.ts';
import { MailboxError } from './errors.ts';
import { newId } from './ids.ts';
import { WRITE } from './writes.ts';

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

export async function createSubscription(sql: Sql, mailboxId: number, folderIds: string[], eventTypes: string[], timeoutMinutes: number, start: number | undefined, now: number): Promise<Subscription> {
  const id = newId();
  const position = start ?? (await lastChange(sql));
  await sql.run('INSERT INTO mail_subscriptions (id, mailbox_id, folders_json, events_json, position, timeout_minutes, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
    id, mailboxId, JSON.stringify(folderIds), JSON.stringify(eventTypes), position, timeoutMinutes, now + timeoutMinutes * 60_000,
  ]);
  return { id, mailboxId, folderIds, eventTypes, position, timeoutMinutes };
}

/** The caller's live subscription; SUBSCRIPTION_NOT_FOUND when unknown or lapsed, ACCESS_DENIED when another mailbox's. */
export async function getSubscription(sql: Sql, mailboxId: number, id: string, now: number): Promise<Subscription> {
  const row = await sql.get<Row>('SELECT * FROM mail_subscriptions WHERE id = ?', [id]);
  if (row === undefined || Number(row.expires_at) < now) throw new MailboxError('SUBSCRIPTION_NOT_FOUND', 'no live subscription has that id (it lapsed or was removed); subscribe again');
  if (Number(row.mailbox_id) !== mailboxId) throw new MailboxError('ACCESS_DENIED', 'the subscription belongs to another mailbox');
  return { id: row.id, mailboxId: Number(row.mailbox_id), folderIds: JSON.parse(row.folders_json) as string[], eventTypes: JSON.parse(row.events_json) as string[], position: Number(row.position), timeoutMinutes: Number(row.timeout_minutes) };
}

/** Changes after `from` in the subscription's folders (at most `max`), and moves the subscription there. */
export async function pollSubscription(sql: Sql, sub: Subscription, from: number, max: number, now: number): Promise<{ changes: LoggedChange[]; more: boolean; position: number }> {
  return sql.transaction(async (tx) => {
    const rows = await tx.all<{ seq: number; folder_id: string; item_id: string; kind: ChangeKind; at: number }>('SELECT seq, folder_id, item_id, kind, at FROM mail_changes WHERE mailbox_id = ? AND seq > ? ORDER BY seq LIMIT ?', [sub.mailboxId, from, max + 1]);
    const more = rows.length > max;
    const window = rows.slice(0, max);
    const position = Number(window.at(-1)?.seq ?? from);
    const folders = new Set(sub.folderIds);
    const changes = window
      .filter((r) => folders.size === 0 || folders.has(r.folder_id))
      .map((r) => ({ seq: Number(r.seq), folderId: r.folder_id, itemId: r.item_id, kind: r.kind, at: Number(r.at) }));
    await tx.run('UPDATE mail_subscriptions SET position = ?, expires_at = ? WHERE id = ?', [position, now + sub.timeoutMinutes * 60_000, sub.id]);
    return { changes, more, position };
  }, WRITE);
}

export async function removeSubscription(sql: Sql, mailboxId: number, id: string, now: number): Promise<void> {
  const sub = await getSubscription(sql, mailboxId, id, now);
  await sql.run('DELETE FROM mail_subscriptions WHERE id = ?', [sub.id]);
}
