// `parley mailbox test ADDRESS --config FILE`: the connector the server would deliver ADDRESS's
// items through, made from the same config file by the same routing (createMailboxRouting's
// rule), for its check. Parley's database is opened only when that is the embedded store.
import { DIRECTORY_MIGRATIONS, findUser, parseAddress } from '../directory/index.ts';
import type { MailboxConnector } from '../mailbox/index.ts';
import { EmbeddedMailboxConnector, MAILBOX_MIGRATIONS, MailboxQuota } from '../mailbox/index.ts';
import type { TestedConnector } from '../mailbox/index.ts';
import { EMBEDDED, createMailboxRouting, mailboxServerOf } from '../offline/index.ts';
import type { SqlDatabase } from '../storage/index.ts';
import { migrate, openStorage } from '../storage/index.ts';
import { loadConfig } from './config.ts';

export async function openMailboxConnector(configFile: string | undefined, text: string): Promise<TestedConnector> {
  const config = loadConfig(configFile, {});
  const address = parseAddress(text, config.domain).address;
  let sql: SqlDatabase | undefined;
  let embedded: MailboxConnector | undefined;
  if (mailboxServerOf(config.mailboxes, address) === EMBEDDED) {
    const opened = (await openStorage({ dataDir: config.dataDir, database: config.database }, { applicationName: 'parley-mailbox', max: 2, ensureDataDir: false })).sql;
    sql = opened;
    await migrate(opened, [DIRECTORY_MIGRATIONS, MAILBOX_MIGRATIONS]);
    embedded = new EmbeddedMailboxConnector({ sql: opened, userExists: async (a) => (await findUser(opened, a)) !== undefined, quota: new MailboxQuota(config.mailboxQuota) });
  }
  // a remote server's address never reaches the embedded connector: it is not opened for it
  const { name, connector } = createMailboxRouting(config.mailboxes, embedded ?? UNOPENED).connectorFor(address);
  return { address, name, connector, close: async () => sql?.close() };
}

const unopened = () => Promise.reject(new Error('the embedded mailbox store was not opened'));
const UNOPENED: MailboxConnector = { deliver: unopened, missedSummary: unopened };
