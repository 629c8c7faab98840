// `parley mailbox …`: what an administrator sees of the embedded mailboxes, in --data-dir DIR (SQLite
// there) or --database postgres://… (a cluster's PostgreSQL). Safe while servers run
// (SQLite's WAL; PostgreSQL). Exit codes: 0 done, 1 the operation failed (the message says why), 2 usage error.
//   parley mailbox ls SIP-ADDRESS            the folders, with item and unread counts
//   parley mailbox ls SIP-ADDRESS FOLDER     the items of a folder (distinguished name, display name or id)
//   parley mailbox show ITEM-ID              one item, with its body as text
//   parley mailbox impersonation grant|revoke SIP-ADDRESS, impersonation list
//                                            who may use EWS ExchangeImpersonation (an offline-IM gateway's account)
//   parley mailbox test SIP-ADDRESS [--config FILE]
//                                            whether the connector that holds the user's mailbox (embedded, EWS,
//                                            Graph… per the config's mailboxes) can sign in, find the mailbox and
//                                            Conversation History, and write there; exit 1 when a step fails
import { parseArgs } from 'node:util';
import { DIRECTORY_MIGRATIONS, findUser, parseAddress } from '../directory/index.ts';
import { ParleyError } from '../errors.ts';
import type { Sql, SqlDatabase } from '../storage/index.ts';
import { chooseStorage, migrate, openStorage } from '../storage/index.ts';
import type { MailboxConnector } from './connector.ts';
import { MailboxError } from './errors.ts';
import { ensureMailbox, getDistinguishedFolder, getFolder, isDistinguishedFolder, listFolders } from './folders.ts';
import type { FolderRecord, Mailbox } from './folders.ts';
import { findItems, getItemAnyMailbox } from './items.ts';
import { grantImpersonation, listImpersonators, revokeImpersonation } from './impersonation.ts';
import { MAILBOX_MIGRATIONS } from './schema.ts';
import { oneLine, stripControls as strip, table as printTable } from '../terminal.ts';

export interface MailboxCommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** The connector `parley mailbox test` checks: the one the config routes the address to. */
export interface TestedConnector {
  /** the address as the directory writes it */
  address: string;
  /** the mailbox server's name in the config (embedded, or a mailboxes.servers key) */
  name: string;
  connector: MailboxConnector;
  close(): Promise<void>;
}

export interface MailboxCommandDefaults {
  dataDir: string;
  domain: string;
  /** the connector the config file (the defaults without one) routes an address to (src/server/mailbox-test.ts) */
  openConnector?: (configFile: string | undefined, address: string) => Promise<TestedConnector>;
}

const WHERE = '[--data-dir DIR | --database postgres://…]';
const USAGE = [`parley mailbox test SIP-ADDRESS [--config FILE]`, `parley mailbox ls SIP-ADDRESS [FOLDER] ${WHERE}`, `parley mailbox show ITEM-ID ${WHERE}`, `parley mailbox impersonation grant|revoke SIP-ADDRESS ${WHERE}`, `parley mailbox impersonation list ${WHERE}`];

export async function runMailboxCommand(args: string[], io: MailboxCommandIo, defaults: MailboxCommandDefaults): Promise<number> {
  const [name, ...rest] = args;
  if (name === 'help' || name === '--help' || name === '-h') {
    for (const u of USAGE) io.out(`usage: ${u}`);
    return 0;
  }
  if (name === 'test') return testConnector(rest, io, defaults);
  let parsed: { positionals: string[]; dataDir: string | undefined; database: string | undefined };
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { 'data-dir': { type: 'string' }, database: { type: 'string' } }, allowPositionals: true, strict: true });
    parsed = { positionals, dataDir: values['data-dir'], database: values.database };
  } catch (error) {
    return usage(io, name, error instanceof Error ? error.message : String(error));
  }
  const count = parsed.positionals.length;
  if (name === 'ls' && (count < 1 || count > 2)) return usage(io, name, 'expected SIP-ADDRESS and at most one FOLDER');
  if (name === 'show' && count !== 1) return usage(io, name, 'expected one ITEM-ID');
  if (name === 'impersonation') {
    const [action] = parsed.positionals;
    if (!((action === 'list' && count === 1) || ((action === 'grant' || action === 'revoke') && count === 2))) return usage(io, name, 'expected grant SIP-ADDRESS, revoke SIP-ADDRESS or list');
  }
  if (name !== 'ls' && name !== 'show' && name !== 'impersonation') return usage(io, name, name === undefined ? 'missing command' : `unknown command "${name}"`);
  const where = chooseStorage(parsed, { dataDir: defaults.dataDir, database: null });
  if (typeof where === 'string') return usage(io, name, where);

  let sql: SqlDatabase | undefined;
  try {
    sql = (await openStorage(where, { applicationName: 'parley-mailbox', max: 2, ensureDataDir: false })).sql;
    await migrate(sql, [DIRECTORY_MIGRATIONS, MAILBOX_MIGRATIONS]);
    if (name === 'show') await show(io, sql, parsed.positionals[0] ?? '');
    else if (name === 'impersonation') await impersonation(io, sql, parsed.positionals, defaults.domain);
    else {
      const address = parseAddress(parsed.positionals[0] ?? '', defaults.domain).address;
      // Every user has a mailbox: made here if nothing (a delivery, an EWS sign-in) made it yet.
      if ((await findUser(sql, address)) === undefined) throw new MailboxError('MAILBOX_NOT_FOUND', `no user ${address}, so no mailbox`);
      const mailbox = await ensureMailbox(sql, address);
      const folder = parsed.positionals[1];
      if (folder === undefined) await listTree(io, sql, mailbox);
      else await listItems(io, sql, mailbox, folder);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof ParleyError)) throw error;
    io.err(`parley mailbox ${name}: ${error.message}`);
    return 1;
  } finally {
    await sql?.close();
  }
}

async function impersonation(io: MailboxCommandIo, sql: Sql, [action, target]: string[], domain: string): Promise<void> {
  if (action === 'list') {
    const all = await listImpersonators(sql);
    io.out(all.length === 0 ? 'no account may impersonate users' : all.join('\n'));
    return;
  }
  const address = parseAddress(target ?? '', domain).address;
  if (action === 'grant') {
    await grantImpersonation(sql, address);
    io.out(`${address} may now act as any local user through EWS ExchangeImpersonation`);
  } else io.out((await revokeImpersonation(sql, address)) ? `${address} may no longer impersonate users` : `${address} did not have the impersonation right`);
}

function usage(io: MailboxCommandIo, name: string | undefined, why: string): number {
  io.err(`parley mailbox${name ? ` ${name}` : ''}: ${why}`);
  for (const u of USAGE) io.err(`usage: ${u}`);
  return 2;
}

async function listTree(io: MailboxCommandIo, sql: Sql, mailbox: Mailbox): Promise<void> {
  const root = await getDistinguishedFolder(sql, mailbox.id, 'msgfolderroot');
  const depth = new Map<string, number>([[root.id, 0]]);
  const rows = [['FOLDER', 'ITEMS', 'UNREAD', 'ID']];
  for (const f of await listFolders(sql, mailbox.id, root.id, true)) {
    const d = (depth.get(f.parentId ?? '') ?? 0) + 1;
    depth.set(f.id, d);
    rows.push([`${'  '.repeat(d - 1)}${f.displayName}${f.distinguished ? ` (${f.distinguished})` : ''}`, String(f.totalCount), String(f.unreadCount), f.id]);
  }
  printTable(io.out, rows);
}

async function resolve(sql: Sql, mailbox: Mailbox, text: string): Promise<FolderRecord> {
  const lower = text.toLowerCase();
  if (isDistinguishedFolder(lower)) return getDistinguishedFolder(sql, mailbox.id, lower);
  const root = await getDistinguishedFolder(sql, mailbox.id, 'msgfolderroot');
  const named = (await listFolders(sql, mailbox.id, root.id, true)).filter((f) => f.displayName.toLowerCase() === text.toLowerCase());
  if (named.length === 1 && named[0]) return named[0];
  if (named.length > 1) throw new MailboxError('INVALID_REQUEST', `${named.length} folders are named ${JSON.stringify(text)}; give the folder id (see parley mailbox ls ${mailbox.address})`);
  return getFolder(sql, mailbox.id, text);
}

async function listItems(io: MailboxCommandIo, sql: Sql, mailbox: Mailbox, text: string): Promise<void> {
  const folder = await resolve(sql, mailbox, text);
  const page = await findItems(sql, mailbox.id, folder.id, { max: 1000 });
  if (page.total === 0) return io.out(`${folder.displayName} of ${mailbox.address} is empty`);
  const rows = [['RECEIVED (UTC)', 'READ', 'CLASS', 'FROM', 'SUBJECT', 'ID']];
  for (const i of page.items) rows.push([new Date(i.receivedAt).toISOString().slice(0, 19).replace('T', ' '), i.isRead ? 'yes' : 'no', i.itemClass, i.from?.address ?? '-', oneLine(i.subject, 60), i.id]);
  printTable(io.out, rows);
  if (page.total > page.items.length) io.out(`(${page.items.length} of ${page.total} items shown, newest first)`);
}

async function show(io: MailboxCommandIo, sql: Sql, id: string): Promise<void> {
  const found = await getItemAnyMailbox(sql, id);
  if (found === undefined) throw new MailboxError('ITEM_NOT_FOUND', `no item has the id ${JSON.stringify(id)}`);
  const { item, address, softDeleted } = found;
  const date = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());
  io.out(`Mailbox:           ${address}${softDeleted ? ' (soft-deleted)' : ''}`);
  io.out(`Folder:            ${(await getFolder(sql, item.mailboxId, item.folderId)).displayName}`);
  io.out(`ItemClass:         ${item.itemClass}`);
  io.out(`Subject:           ${oneLine(item.subject, 200)}`);
  io.out(`From:              ${item.from?.address ?? '-'}`);
  io.out(`To:                ${item.to.map((m) => m.address).join(', ') || '-'}`);
  io.out(`Cc:                ${item.cc.map((m) => m.address).join(', ') || '-'}`);
  io.out(`DateTimeSent:      ${date(item.sentAt)}`);
  io.out(`DateTimeReceived:  ${date(item.receivedAt)}`);
  io.out(`IsRead:            ${item.isRead}`);
  io.out(`InternetMessageId: ${item.internetMessageId ?? '-'}`);
  io.out(`Size:              ${item.size}`);
  io.out('');
  for (const line of (item.bodyText ?? item.bodyHtml ?? '').split('\n')) io.out(strip(line));
}

/** `parley mailbox test`: one line per step of the connector's check; 0 when all passed, 1 when one failed, 2 on usage errors. */
async function testConnector(args: string[], io: MailboxCommandIo, defaults: MailboxCommandDefaults): Promise<number> {
  let configFile: string | undefined;
  let address: string;
  try {
    const { values, positionals } = parseArgs({ args, options: { config: { type: 'string' } }, allowPositionals: true, strict: true });
    if (positionals.length !== 1) return usage(io, 'test', 'expected one SIP-ADDRESS');
    configFile = values.config;
    address = positionals[0] ?? '';
  } catch (error) {
    return usage(io, 'test', error instanceof Error ? error.message : String(error));
  }
  if (defaults.openConnector === undefined) return usage(io, 'test', 'not available in this build');
  let tested: TestedConnector | undefined;
  try {
    tested = await defaults.openConnector(configFile, address);
    const { connector } = tested;
    if (connector.check === undefined) {
      io.err(`parley mailbox test: the ${tested.name} connector of ${tested.address} has no check`);
      return 1;
    }
    io.out(`${tested.address}: mailbox server ${tested.name}`);
    const steps = await connector.check(tested.address);
    for (const s of steps) io.out(`${s.ok ? 'ok  ' : 'FAIL'} ${s.step.padEnd(8)} ${strip(s.detail)}`);
    return steps.length > 0 && steps.every((s) => s.ok) ? 0 : 1;
  } catch (error) {
    if (!(error instanceof ParleyError)) throw error;
    io.err(`parley mailbox test: ${error.message}`);
    return 1;
  } finally {
    await tested?.close();
  }
}
