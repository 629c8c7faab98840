// What the Conversation History unit tests share: a database on either engine with two or three
// users (no password: inserted directly, scrypt is slow on purpose), the clock, and recorded messages.
import pino from 'pino';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { HISTORY_MIGRATIONS } from '../../src/history/schema.ts';
import { TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import { OFFLINE_MIGRATIONS } from '../../src/offline/index.ts';
import type { RecordedMessage } from '../../src/router/context.ts';
import { GLOBAL, IM_CONFIGURATION, SETTINGS_MIGRATIONS, updateInstance } from '../../src/settings/index.ts';
import type { Sql } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { addUserRow } from './presence-database.ts';

export const change = { actor: 'test', cmdlet: 'test', now: () => 1 };
export const logger = pino({ level: 'silent' });
export const T0 = Date.UTC(2026, 11, 6, 10, 0, 0);
export const ALICE = 'alice@parley.test';
export const BOB = 'bob@parley.test';
export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The tables, alice, bob and carol (display names "Alice Example"…), a 60 s idle timeout and 30 s to read a message. */
export async function prepareHistoryDatabase(sql: Sql): Promise<void> {
  await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, TRACE_MIGRATIONS, OFFLINE_MIGRATIONS, HISTORY_MIGRATIONS]);
  for (const user of ['alice', 'bob', 'carol']) await addUserRow(sql, { address: `${user}@parley.test`, displayName: `${user[0]?.toUpperCase()}${user.slice(1)} Example` });
  await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { ConversationIdleTimeout: 60, UnreadMissedTimeout: 30 }, change);
}

/** A text MESSAGE alice → bob relayed at `at`, unless `over` says otherwise. */
export const text = (body: string, at: number, over: Partial<RecordedMessage> = {}): RecordedMessage => ({ sender: ALICE, recipient: BOB, callId: `call-${at}`, contentType: 'text/plain', body: enc(body), at, outcome: 'relayed', ...over });

/** A CPIM body from alice asking for a display notification (RFC 5438 §6.3). */
export const asking = (id: string, body: string): string =>
  `From: <sip:${ALICE}>\r\nTo: <sip:${BOB}>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: ${id}\r\nDateTime: 2026-12-06T10:00:00Z\r\nimdn.Disposition-Notification: display\r\n\r\nContent-Type: text/plain\r\n\r\n${body}`;

/** bob's `displayed` report for alice's message `id` (RFC 5438 §7.2.1.1), in CPIM. */
export const displayedReport = (id: string): string =>
  `From: <sip:${BOB}>\r\nTo: <sip:${ALICE}>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: r-${id}\r\nDateTime: 2026-12-06T10:00:01Z\r\n\r\nContent-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n\r\n<?xml version="1.0"?><imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>${id}</message-id><datetime>2026-12-06T10:00:01Z</datetime><display-notification><status><displayed/></status></display-notification></imdn>`;
