// One group commit of Conversation History: the messages the router told the recorder of in the
// last window, in ONE transaction (its COMMIT is the batch's only durable write). It runs in the
// recorder's thread with a connection of its own when the database is a SQLite file
// (recorder-thread.ts), from the loop otherwise (PostgreSQL, memory); so it reads what it needs (the
// participants' settings) itself, on the handle it is given.
//
// Per message, in order of arrival:
// - a typing notice: dropped;
// - a `displayed` report from X (RFC 5438 §7.2.1.1): the messages to X with that imdn.Message-ID
//   are displayed (whatever became of the report itself: a reader who went offline still read);
// - text relayed to a device: a message of the pair's open conversation (a new one when none is
//   open, or the open one's end has passed); with a display request and the SENDER's
//   UnreadMissedTimeout on, it is due to be displayed by then;
// - text spooled for an offline recipient: noted (kind offline, no body) in the pair's conversation
//   when one is going on, for the transcript's note; alone it opens none (its Missed item and the
//   sender's copy are its record, and the offline path is not to be slowed by history);
// - text refused (480): nothing.
// Every kept message pushes the conversation's end to its time + the shorter idle timeout of the two.
// Nothing is kept for a pair where neither archives (EnableIMAutoArchiving) and no display is tracked.
// A conversation with a partner organisation's user (issue 15) is kept for the local participant
// only, by their settings alone: the partner's user has none here, gets no item, and no display is
// tracked (an unread message cannot become a Missed Conversation in a mailbox that is not here).

import { recordTrace } from '../observability/trace.ts';
import { randomBase32 } from '../random-id.ts';
import type { RecordedMessage } from '../router/context.ts';
import type { EffectiveSettings } from '../settings/index.ts';
import { effectiveSettings, lastAuditId } from '../settings/index.ts';
import type { Sql, SqlValue } from '../storage/index.ts';
import { insertRows } from '../storage/index.ts';
import { classify } from './content.ts';

/** What one batch did (for /metrics). */
export interface CommitSummary {
  /** messages kept in a conversation */
  recorded: number;
  /** messages marked displayed by a report */
  displayed: number;
  /** conversations opened */
  opened: number;
}

/** `cv-` and 16 base32 characters, like spool entry ids. */
export function newConversationId(): string {
  return `cv-${randomBase32(10)}`;
}

/**
 * A user's effective settings through `cache`, null when they are no longer a user (removed
 * meanwhile). A miss is not remembered: a user added while the cache lives is found next time.
 */
export async function settingsOf(sql: Sql, cache: Map<string, EffectiveSettings>, address: string): Promise<EffectiveSettings | null> {
  const known = cache.get(address);
  if (known !== undefined) return known;
  let s: EffectiveSettings;
  try {
    s = await effectiveSettings(sql, address);
  } catch {
    return null;
  }
  cache.set(address, s);
  return s;
}

/**
 * What the writer of one connection remembers between batches, so that a message costs two
 * statements (the conversation's update and the message's insert), not eight:
 * - the participants' settings, until the admin audit log moves (every change of settings, grants,
 *   sites and users writes a row there: the provisioning package relies on the same rule);
 * - each pair's open conversation. The worker may close a conversation or end it early (a sign-out)
 *   on its own connection, so a remembered one is used only while its row still says open and not
 *   ended (the update's WHERE checks it), and looked up again otherwise. The writers of other nodes
 *   (a cluster) add messages to the same conversation: a message's seq is the conversation's count
 *   as that update leaves it (the row is locked until the batch commits), never a number one writer
 *   keeps; a pair's writers take turns (a lock per pair, writeBatch), so the second finds the
 *   conversation the first opened.
 */
interface WriterMemory {
  auditId: number;
  settings: Map<string, EffectiveSettings>;
  open: Map<string, string>;
}

/**
 * The most messages one conversation (one history item) holds. Two people who never pause would
 * otherwise keep one conversation open for ever, its bodies growing in the database and its item
 * without bound (64 KiB a message at most, messaging.maxBody): past this the pair goes on in a new
 * conversation, a new item.
 */
export const MAX_CONVERSATION_MESSAGES = 1000;

/** Bounds of the memory: past these it is cleared (it is only a cache). */
const MAX_REMEMBERED = 20_000;
const memories = new WeakMap<Sql, WriterMemory>();

async function memoryOf(sql: Sql): Promise<WriterMemory> {
  let memory = memories.get(sql);
  const auditId = await lastAuditId(sql);
  if (memory === undefined || memory.auditId !== auditId || memory.settings.size > MAX_REMEMBERED) {
    memory = { auditId, settings: new Map(), open: memory?.open ?? new Map() };
    memories.set(sql, memory);
  }
  if (memory.open.size > MAX_REMEMBERED) memory.open.clear();
  return memory;
}


export async function writeHistoryBatch(sql: Sql, messages: readonly RecordedMessage[]): Promise<CommitSummary> {
  try {
    return await writeBatch(sql, messages);
  } catch (err) {
    // rolled back: what the memory learnt in the batch may name rows that are not there
    memories.delete(sql);
    throw err;
  }
}

async function writeBatch(sql: Sql, messages: readonly RecordedMessage[]): Promise<CommitSummary> {
  const memory = await memoryOf(sql);
  // what needs a write, found first: a batch with nothing to write takes no write lock, which the
  // spool's writer thread (offline messages, answered 202 only once committed) must not wait for
  const work: Array<{ m: RecordedMessage; content: Exclude<ReturnType<typeof classify>, { kind: 'typing' }> }> = [];
  /** pairs with a relayed message earlier in this batch */
  const going = new Set<string>();
  for (const m of messages) {
    const content = classify(m.contentType, m.body);
    if (content.kind === 'typing') continue;
    if (content.kind === 'report') {
      if (content.displayedId !== undefined) work.push({ m, content });
      continue;
    }
    if (m.outcome === 'undelivered') continue;
    // an offline message counts only in a conversation that is going on (for its transcript's
    // note): alone, the Missed item and the sender's copy are its whole record
    const pair = pairOf(m);
    if (m.outcome === 'relayed') going.add(pair);
    else if (!memory.open.has(pair) && !going.has(pair)) continue;
    work.push({ m, content });
  }
  if (work.length === 0) return { recorded: 0, displayed: 0, opened: 0 };
  // READ COMMITTED, each pair's writers one at a time: under SERIALIZABLE, batches of other pairs
  // (other nodes' writers, the worker) conflicted through PostgreSQL's coarse predicate locks until
  // the retries ran out and the batch was lost, and the predicate locks of a large batch ran out of
  // shared memory. What must not interleave is one pair's conversation being found or opened: a lock
  // per pair (taken in one order, so two batches cannot deadlock) keeps it to one writer at a time,
  // and the conversation's update re-checks its row (open, not ended) after waiting for it.
  return sql.transaction(async (tx) => {
    if (tx.engine === 'postgres') {
      const pairs = [...new Set(work.filter(({ content }) => content.kind !== 'report').map(({ m }) => pairOf(m)))].sort();
      for (const pair of pairs) await tx.get('SELECT pg_advisory_xact_lock(?, hashtext(?)) AS locked', [HISTORY_PAIR_LOCK, pair]);
    }
    const summary: CommitSummary = { recorded: 0, displayed: 0, opened: 0 };
    // the messages up to the next report (or the end), written together: a report may name a
    // message of the batch, so the messages before it are in their table when it is applied
    let run: Planned[] = [];
    for (const { m, content } of work) {
      if (content.kind === 'report') {
        await writeMessages(tx, memory, run, summary);
        run = [];
        if (content.displayedId !== undefined) summary.displayed += (await tx.run('UPDATE history_messages SET displayed = 1 WHERE imdn_message_id = ? AND recipient = ? AND sender = ? AND displayed = 0', [content.displayedId, m.sender, m.recipient])).changes;
        continue;
      }
      const planned = await planMessage(tx, memory.settings, m, content.displayRequestId);
      if (planned !== undefined) run.push(planned);
    }
    await writeMessages(tx, memory, run, summary);
    return summary;
  }, { isolation: 'read committed' });
}

/** A message to keep, with what its rows need. */
interface Planned {
  m: RecordedMessage;
  pair: string;
  /** the shorter ConversationIdleTimeout of the two, ms */
  idleMs: number;
  imdnMessageId: string | undefined;
  displayDueAt: number | null;
}

/** Whether and how `m` is kept, by its participants' settings; undefined: it is not. */
async function planMessage(sql: Sql, cache: Map<string, EffectiveSettings>, m: RecordedMessage, displayRequestId: string | undefined): Promise<Planned | undefined> {
  const parties = await partiesOf(sql, cache, m);
  if (parties === undefined) return undefined;
  const { sender, recipient } = parties;
  const archived = (sender?.EnableIMAutoArchiving ?? false) || (recipient?.EnableIMAutoArchiving ?? false);
  // a partner's user has no mailbox here to miss a message in, nor settings to time it by:
  // display is tracked between local users only
  const tracked = sender !== null && recipient !== null && m.outcome === 'relayed' && displayRequestId !== undefined && sender.UnreadMissedTimeoutSeconds > 0;
  if (!archived && !tracked) return undefined;
  const idleMs = Math.min(sender?.ConversationIdleTimeoutSeconds ?? Infinity, recipient?.ConversationIdleTimeoutSeconds ?? Infinity) * 1000;
  return { m, pair: pairOf(m), idleMs, imdnMessageId: displayRequestId, displayDueAt: tracked ? m.at + sender.UnreadMissedTimeoutSeconds * 1000 : null };
}

/**
 * Writes a run of planned messages in order of arrival: each joins its pair's conversation (or
 * opens one) and gets its seq there, then their rows go in, many to a statement (insertRows).
 *
 * The pairs whose open conversation this writer knows (nearly all, once a conversation is going)
 * are continued many to a statement (continueKnown): one UPDATE moves each conversation by all of
 * its messages in the run, where the messages one at a time would each need an UPDATE. It does
 * exactly what they would: a pair's messages continue it only if the first finds it open, not ended
 * and with room for all of them, and each later one comes before the end the earlier ones set
 * (else the pair's messages go one at a time, conversationFor, which may end it and open another).
 */
async function writeMessages(sql: Sql, memory: WriterMemory, run: readonly Planned[], summary: CommitSummary): Promise<void> {
  if (run.length === 0) return;
  const placed: Array<{ id: string; seq: number } | undefined> = new Array(run.length);
  const groups = new Map<string, KnownGroup>();
  const unsure = new Set<string>();
  run.forEach((p, i) => {
    const id = memory.open.get(p.pair);
    if (id === undefined) return;
    const g = groups.get(p.pair);
    if (g === undefined) {
      groups.set(p.pair, { id, firstAt: p.m.at, lastAt: p.m.at, endsAt: p.m.at + p.idleMs, indexes: [i] });
      return;
    }
    if (p.m.at > g.endsAt) unsure.add(p.pair);
    g.lastAt = Math.max(g.lastAt, p.m.at);
    g.endsAt = Math.max(g.endsAt, p.m.at + p.idleMs);
    g.indexes.push(i);
  });
  for (const pair of unsure) groups.delete(pair);
  const counts = await continueKnown(sql, [...groups.values()]);
  for (const g of groups.values()) {
    const count = counts.get(g.id);
    if (count === undefined) continue;
    g.indexes.forEach((index, k) => (placed[index] = { id: g.id, seq: count - g.indexes.length + 1 + k }));
  }
  const rows: SqlValue[][] = [];
  for (let i = 0; i < run.length; i++) {
    const p = run[i] as Planned;
    let at = placed[i];
    if (at === undefined) {
      const conversation = await conversationFor(sql, memory, p.m, p.idleMs, p.m.outcome === 'relayed');
      if (conversation === undefined) continue;
      if (conversation.opened) summary.opened++;
      at = conversation;
    }
    rows.push(messageRow(at.id, at.seq, p.m, p.imdnMessageId, p.displayDueAt));
    summary.recorded++;
  }
  // multi-row statements on SQLite: OR ROLLBACK (a failure ends the transaction, which the batch
  // does anyway) spares SQLite the statement journal a multi-row statement otherwise keeps, in case
  // it fails half-way: that journal spilled to a temporary file at every batch
  await insertRows(sql, sql.engine === 'sqlite' ? MESSAGE_INSERT_SQLITE : MESSAGE_INSERT, rows);
}

/** A pair's messages of a run that may continue the open conversation this writer knows. */
interface KnownGroup {
  id: string;
  /** the first message's time: the conversation must not have ended before it */
  firstAt: number;
  lastAt: number;
  /** the end the messages set: the latest of their times + the idle timeout */
  endsAt: number;
  /** their places in the run, in order */
  indexes: number[];
}

/** Conversations per statement of continueKnown. */
const CONTINUE_PER_STATEMENT = 32;
const continueTexts = new Map<string, string>();

/**
 * Moves each group's conversation by its messages, if it is open, has not ended before the first
 * and has room for them all; returns the message count each continued one now has, by id.
 */
async function continueKnown(sql: Sql, groups: readonly KnownGroup[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const pending: Array<Promise<Array<{ id: string; message_count: number | string }>>> = [];
  for (let at = 0; at < groups.length; at += CONTINUE_PER_STATEMENT) {
    const chunk = groups.slice(at, at + CONTINUE_PER_STATEMENT);
    const params: SqlValue[] = [];
    for (const g of chunk) params.push(g.id, g.firstAt, g.lastAt, g.endsAt, g.indexes.length);
    // issued together (pipelined on PostgreSQL)
    const p = sql.all<{ id: string; message_count: number | string }>(continueText(sql.engine, chunk.length), params);
    p.catch(() => undefined);
    pending.push(p);
  }
  for (const rows of await Promise.all(pending)) for (const r of rows) counts.set(r.id, Number(r.message_count));
  return counts;
}

/**
 * The statement continuing `n` conversations: the larger of two values is max() of two arguments
 * on SQLite, greatest() on PostgreSQL; the values are cast so that PostgreSQL knows their types.
 * OR ROLLBACK on SQLite: see writeMessages.
 */
function continueText(engine: Sql['engine'], n: number): string {
  const key = `${engine} ${n}`;
  let text = continueTexts.get(key);
  if (text === undefined) {
    const larger = engine === 'postgres' ? 'greatest' : 'max';
    const tuple = '(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))';
    text = `WITH v (v_id, v_first_at, v_last_at, v_ends_at, v_n) AS (VALUES ${Array.from({ length: n }, () => tuple).join(', ')})
UPDATE${engine === 'sqlite' ? ' OR ROLLBACK' : ''} history_conversations SET last_at = ${larger}(last_at, v_last_at), ends_at = ${larger}(ends_at, v_ends_at), message_count = message_count + v_n
FROM v WHERE id = v_id AND state = 'open' AND ends_at >= v_first_at AND message_count + v_n <= ${MAX_CONVERSATION_MESSAGES}
RETURNING id, message_count`;
    continueTexts.set(key, text);
  }
  return text;
}

/** The first key of the pair locks (PostgreSQL's two-key advisory locks): Conversation History's. */
const HISTORY_PAIR_LOCK = 0x4869;

/**
 * The settings of a message's two participants; null for a partner organisation's user (issue 15:
 * a conversation across organisations is kept for the local side only, by its settings alone).
 * Undefined when the message is not to be kept: a participant of this server is no longer a user.
 * A partner's user is told apart from a removed user by the domain: every user of this server is
 * in its one domain, so the participant whose domain is not the other's, when the other is a user
 * here, is a partner's.
 */
async function partiesOf(sql: Sql, cache: Map<string, EffectiveSettings>, m: RecordedMessage): Promise<{ sender: EffectiveSettings | null; recipient: EffectiveSettings | null } | undefined> {
  const sender = await settingsOf(sql, cache, m.sender);
  const recipient = await settingsOf(sql, cache, m.recipient);
  if (sender !== null && recipient !== null) return { sender, recipient };
  if (sender === null && recipient === null) return undefined;
  return acrossOrganisations(m.sender, m.recipient) ? { sender, recipient } : undefined;
}

/** Whether two addresses are in different domains: between a user here and a partner organisation's user. */
export function acrossOrganisations(a: string, b: string): boolean {
  return domainOf(a) !== domainOf(b);
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

function pairOf(m: RecordedMessage): string {
  return m.sender < m.recipient ? `${m.sender} ${m.recipient}` : `${m.recipient} ${m.sender}`;
}

/**
 * The pair's open conversation that `m` continues, or a new one when `mayOpen`, and the message's
 * seq in it; its end moves to m.at + idle. Undefined: none is open and none may be opened.
 */
async function conversationFor(sql: Sql, memory: WriterMemory, m: RecordedMessage, idleMs: number, mayOpen: boolean): Promise<{ id: string; opened: boolean; seq: number } | undefined> {
  const [a, b] = m.sender < m.recipient ? [m.sender, m.recipient] : [m.recipient, m.sender];
  const pair = `${a} ${b}`;
  const endsAt = m.at + idleMs;
  // continues it only while the row is open and not ended before m: what the lookup below would find
  // ... and while it holds fewer than MAX_CONVERSATION_MESSAGES: a full one is left to end (its
  // item is written once it is idle) and the pair goes on in a new one
  // the message's seq: the count this update makes (undefined: not continued)
  const extend = async (id: string) => {
    const row = await sql.get<{ seq: number | string }>(EXTEND[sql.engine], [m.at, endsAt, id, m.at]);
    return row === undefined ? undefined : Number(row.seq);
  };
  const known = memory.open.get(pair);
  const continued = known === undefined ? undefined : await extend(known);
  if (known !== undefined && continued !== undefined) return { id: known, opened: false, seq: continued };
  const open = await sql.get<{ id: string }>("SELECT id FROM history_conversations WHERE user_a = ? AND user_b = ? AND state = 'open' AND ends_at >= ? ORDER BY started_at DESC LIMIT 1", [a, b, m.at]);
  const found = open === undefined ? undefined : await extend(open.id);
  if (open !== undefined && found !== undefined) {
    memory.open.set(pair, open.id);
    return { id: open.id, opened: false, seq: found };
  }
  if (!mayOpen) {
    memory.open.delete(pair);
    return undefined;
  }
  // a conversation resumed after it ended is a new one (its own item); the ended one is closed by the worker
  const id = newConversationId();
  await sql.run("INSERT INTO history_conversations (id, user_a, user_b, state, started_at, last_at, ends_at, message_count) VALUES (?, ?, ?, 'open', ?, ?, ?, 1)", [id, a, b, m.at, m.at, endsAt]);
  await recordTrace(sql, { traceId: id, callId: m.callId, at: m.at, step: 'opened', detail: { between: pair, endsAt: new Date(endsAt).toISOString() } });
  memory.open.set(pair, id);
  return { id, opened: true, seq: 1 };
}

/**
 * One message continuing a conversation. The larger of two values: max() of two arguments on
 * SQLite, greatest() on PostgreSQL. (Texts made once: a statement's text is its cache key, hashed
 * at each call when it is a new string.)
 */
const EXTEND: Record<Sql['engine'], string> = {
  sqlite: extendText('max'),
  postgres: extendText('greatest'),
};

function extendText(larger: string): string {
  return `UPDATE history_conversations SET last_at = ${larger}(last_at, ?), ends_at = ${larger}(ends_at, ?), message_count = message_count + 1 WHERE id = ? AND state = 'open' AND ends_at >= ? AND message_count < ${MAX_CONVERSATION_MESSAGES} RETURNING message_count AS seq`;
}

const MESSAGE_INSERT = 'INSERT INTO history_messages (conversation_id, seq, sender, recipient, call_id, received_at, content_type, body, kind, spool_entry_id, imdn_message_id, display_due_at)';

const MESSAGE_INSERT_SQLITE = `INSERT OR ROLLBACK${MESSAGE_INSERT.slice('INSERT'.length)}`;

/** A message's row, in MESSAGE_INSERT's columns. */
function messageRow(conversationId: string, seq: number, m: RecordedMessage, imdnMessageId: string | undefined, displayDueAt: number | null): SqlValue[] {
  const offline = m.outcome === 'spooled';
  return [conversationId, seq, m.sender, m.recipient, m.callId, m.at, m.contentType ?? 'text/plain', offline ? null : m.body, offline ? 'offline' : 'relayed', m.entryId ?? null, imdnMessageId ?? null, displayDueAt];
}
