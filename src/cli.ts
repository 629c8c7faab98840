// The `parley` command. Each subcommand lives with its capability; this file only dispatches.
// first: the young generation's size is set before the other modules allocate (young-generation.ts)
import './server/young-generation.ts';

import { parseArgs } from 'node:util';
import { runAdminCommand, runUserCommand } from './admin/index.ts';
import { runHistoryCommand } from './history/index.ts';
import { runMailboxCommand } from './mailbox/index.ts';
import { ParleyError } from './errors.ts';
import { createLogger, type LogLevel } from './observability/logger.ts';
import { ConfigError, DEFAULT_CONFIG, loadConfig, type ConfigOverrides } from './server/config.ts';
import { openMailboxConnector } from './server/mailbox-test.ts';
import { PRODUCT, startServer } from './server/start.ts';
import { createDemoUsers, demoLines, isNewDataDir, welcomeLines } from './server/demo.ts';
import type { DigestAlgorithm } from './sip/index.ts';

const USAGE = `Usage: parley <command> [options]

Commands:
  serve [--config FILE] [--data-dir DIR] [--database postgres://…] [--domain DOMAIN] [--listen ADDR]
        [--sip-port N] [--sips-port N] [--http-port N] [--https-port N]
        [--log-level LEVEL] [--digest-algorithms SHA-256,MD5] [--public-url URL] [--demo]
        [--cluster NODE-ID --redis URL]
                         run the server (SIP over UDP, TCP, TLS and WebSocket; the web
                         client at http://HOST:HTTP-PORT/); --demo: on a new data
                         directory, make three demo users and print their passwords;
                         --public-url: the URL clients reach the server at (publicUrl);
                         --database: PostgreSQL instead of SQLite in the data directory;
                         --cluster NODE-ID --redis URL: run as one node of a cluster (the
                         config's cluster block; needs --database postgres://…);
                         SIGHUP reloads the TLS certificate and key files
  check-config [--config FILE] [the options of serve]
                         check the configuration as serve would load it, and the files it
                         names (TLS certificate and key, data directory), without starting;
                         exits 0 ("configuration OK" and a summary) or 2 (what is wrong)
  user add SIP-ADDRESS --password PW [--display-name NAME] [--data-dir DIR | --database postgres://…]
  user list [--data-dir DIR | --database postgres://…]
  user remove SIP-ADDRESS [--data-dir DIR | --database postgres://…]
  user passwd SIP-ADDRESS --password PW [--data-dir DIR | --database postgres://…]
                         manage accounts (works while the server runs)
  admin [--data-dir DIR | --database postgres://…] [--json] <Cmdlet> [-Param Value]...
  admin --url URL --token-file FILE [--json] <Cmdlet> [-Param Value]...
                         Skype for Business-style cmdlets (parley admin --help); --url runs
                         them through a running server's admin API, with the token in
                         DIR/secrets/admin.token
  mailbox ls SIP-ADDRESS [FOLDER] | show ITEM-ID | impersonation grant|revoke|list
          [--data-dir DIR | --database postgres://…]
                         the embedded mailboxes (parley mailbox help)
  mailbox test SIP-ADDRESS [--config FILE]
                         whether the user's mailbox connector (embedded, EWS, Graph) can sign in,
                         find the mailbox and Conversation History, and write there
  spooler list [--user SIP-ADDRESS] [--state STATE] | show ID | retry ID|--failed
          | purge ID [--force]|--delivered-before DATE | quota [--user SIP-ADDRESS]
          [--data-dir DIR | --database postgres://… | --config FILE]
                         the History Spooler: offline messages waiting, delivered or failed;
                         what each user has waiting, their mailbox, the refusals and the limits
                         (those of --config FILE, which also names the storage)
  history list --user SIP-ADDRESS [--json] [--data-dir DIR | --database postgres://…]
                         Conversation History: the user's open conversations and those
                         written lately (peer, state, times, messages, spool entries)
  chat --user ADDRESS [--server URL]
                         the terminal client: chat, contacts' presence, missed
                         conversations (server default tcp://127.0.0.1:5060;
                         parley chat --help)
  backup --to FILE [--data-dir DIR | --config FILE] [--force]
                         a consistent copy of the database while the server runs
                         (SQLite's online backup; secrets/ is not in it); exits 0, 1
                         (failed), 2 (usage) or 3 (FILE exists: --force replaces it);
                         a PostgreSQL database: pg_dump and pg_restore instead
  restore FILE [--data-dir DIR | --config FILE] [--force]
                         put a backup in place; refused (3) while a server runs on the
                         data directory, or when it holds data without --force; 4: FILE
                         is not a sound Parley database
  trace ID [--data-dir DIR | --database postgres://…]
                         every step of an offline message or a conversation (spool entry
                         id, conversation id cv-… or SIP Call-ID)
  help                   this text
  version                the version

--database postgres://… names a PostgreSQL database (a cluster's shared state) instead of the
SQLite file in the data directory, for serve and for user, admin, mailbox, spooler, history
and trace; backup and restore are SQLite's (on PostgreSQL: pg_dump and pg_restore).
`;

const io = {
  out: (line: string) => process.stdout.write(`${line}\n`),
  err: (line: string) => process.stderr.write(`${line}\n`),
};

// `parley spooler list | head` closes the pipe early: the rest of the output has no reader, which
// is the reader's choice, not an error of ours (a shell's commands end quietly the same way).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// The commands a server does not run are imported when run: `serve` keeps only what it uses in
// memory (the chat client, the spooler's, trace's and backup's commands are not loaded by it).
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'mailbox':
      return runMailboxCommand(rest, io, { dataDir: DEFAULT_CONFIG.dataDir, domain: DEFAULT_CONFIG.domain, openConnector: openMailboxConnector });
    case 'user':
      return runUserCommand(rest, io, { dataDir: DEFAULT_CONFIG.dataDir, domain: DEFAULT_CONFIG.domain });
    case 'spooler':
      return (await import('./offline/cli.ts')).runSpoolerCommand(rest, io, {
        dataDir: DEFAULT_CONFIG.dataDir,
        domain: DEFAULT_CONFIG.domain,
        // `parley spooler quota --config FILE`: the limits (and data dir, domain) the server runs with
        readConfig(file) {
          const c = loadConfig(file, {});
          return { dataDir: c.dataDir, database: c.database, domain: c.domain, spool: { sender: c.offlineIm.senderQuota, recipient: c.offlineIm.recipientQuota }, mailbox: c.mailboxQuota };
        },
      });
    case 'history':
      return runHistoryCommand(rest, io, { dataDir: DEFAULT_CONFIG.dataDir, domain: DEFAULT_CONFIG.domain });
    case 'chat':
      return (await import('./chat/index.ts')).runChatCommand(rest, { input: process.stdin, output: process.stdout, env: process.env, err: io.err });
    case 'trace':
      return (await import('./observability/trace-cli.ts')).runTraceCommand(rest, io, { dataDir: DEFAULT_CONFIG.dataDir });
    case 'backup':
      return (await import('./server/backup-cli.ts')).runBackupCommand(rest, io, backupDefaults);
    case 'restore':
      return (await import('./server/backup-cli.ts')).runRestoreCommand(rest, io, backupDefaults);
    case 'admin':
      return runAdminCommand(rest, io, { dataDir: DEFAULT_CONFIG.dataDir, domain: DEFAULT_CONFIG.domain });
    case 'version':
    case '--version':
      io.out(PRODUCT);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      io.err(`parley: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/** where backup and restore find the database: --data-dir, or --config's dataDir (refused when it names a PostgreSQL database), or the default */
const backupDefaults = {
  dataDir: DEFAULT_CONFIG.dataDir,
  storageOf(file: string) {
    const { dataDir, database } = loadConfig(file, {});
    return { dataDir, database };
  },
};

async function serve(args: string[]): Promise<number> {
  // --demo is serve's alone (check-config shares the rest of the options)
  const demo = args.includes('--demo');
  const config = configFromArgs('serve', args.filter((a) => a !== '--demo'));
  if (typeof config === 'number') return config;
  // asked before the server opens (and so creates) the database: an existing directory is never
  // touched; a PostgreSQL database is looked at by createDemoUsers (demo users only when it has no user)
  const fresh = demo && (config.database !== null || isNewDataDir(config.dataDir));
  const logger = createLogger(config.logLevel);
  let server;
  try {
    server = await startServer(config, logger);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const detail = code === 'EADDRINUSE' ? ' (is another server using that port? choose another with --sip-port/--http-port, or 0 for any)' : '';
    io.err(`parley serve: could not start: ${(err as Error).message}${detail}`);
    return 1;
  }
  // the demo users exist before the ready line, so whoever waits for it can sign in at once
  let demoUsers: Awaited<ReturnType<typeof createDemoUsers>> = [];
  if (fresh) {
    try {
      demoUsers = await createDemoUsers(config, config.domain);
    } catch (err) {
      io.err(`parley serve: could not make the demo users: ${(err as Error).message}`);
    }
  }
  io.out(server.readyLine);
  for (const line of welcomeLines(server.webUrl, config.domain)) io.out(line);
  if (demoUsers.length > 0) for (const line of demoLines(demoUsers, server.webUrl)) io.out(line);
  // SIGTERM or SIGINT drains (server.close()) within shutdownTimeout; past it, or at a second
  // signal, the process exits at once, saying which step did not finish.
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        io.err(`parley serve: ${signal} again: exiting at once while ${server.stopStep()}`);
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal, shutdownTimeout: config.shutdownTimeout }, 'stopping: draining for up to %d s', config.shutdownTimeout);
      const timer = setTimeout(() => {
        io.err(`parley serve: did not stop within shutdownTimeout (${config.shutdownTimeout} s): still ${server.stopStep()}; exiting anyway`);
        process.exit(1);
      }, config.shutdownTimeout * 1000);
      server.close().then(
        () => {
          clearTimeout(timer);
          logger.info({ signal }, 'stopped');
          resolve(0);
        },
        (err: unknown) => {
          clearTimeout(timer);
          io.err(`parley serve: stopping failed while ${server.stopStep()}: ${(err as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // SIGHUP: read the TLS certificate and key again (certbot's deploy hook, an operator); an
    // unusable pair is logged and the one in use stays
    process.on('SIGHUP', () => server.reloadCertificates('SIGHUP'));
  });
}

/** `serve`'s and `check-config`'s options into the effective configuration, or the exit code of a refusal (2). */
function configFromArgs(command: string, args: string[]): ReturnType<typeof loadConfig> | number {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        'data-dir': { type: 'string' },
        database: { type: 'string' },
        domain: { type: 'string' },
        listen: { type: 'string' },
        'sip-port': { type: 'string' },
        'sips-port': { type: 'string' },
        'http-port': { type: 'string' },
        'https-port': { type: 'string' },
        'smtp-port': { type: 'string' },
        'log-level': { type: 'string' },
        'digest-algorithms': { type: 'string' },
        'public-url': { type: 'string' },
        cluster: { type: 'string' },
        redis: { type: 'string' },
      },
    }));
  } catch (err) {
    io.err(`parley ${command}: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  try {
    const flags: ConfigOverrides = {
      dataDir: values['data-dir'],
      database: values.database,
      domain: values.domain,
      listen: values.listen,
      sipPort: portFlag(values['sip-port'], '--sip-port'),
      sipsPort: portFlag(values['sips-port'], '--sips-port'),
      httpPort: portFlag(values['http-port'], '--http-port'),
      httpsPort: portFlag(values['https-port'], '--https-port'),
      smtpPort: portFlag(values['smtp-port'], '--smtp-port'),
      logLevel: values['log-level'] as LogLevel | undefined,
      publicUrl: values['public-url'],
      clusterNode: values.cluster,
      redis: values.redis,
      digestAlgorithms: values['digest-algorithms']?.split(',').map((a) => a.trim()) as DigestAlgorithm[] | undefined,
    };
    return loadConfig(values.config, flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`parley ${command}: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

/** `parley check-config`: the configuration as `serve` would load it, and the files it names, without starting. */
async function checkConfig(args: string[]): Promise<number> {
  const config = configFromArgs('check-config', args);
  if (typeof config === 'number') return config;
  try {
    const { checkStartup } = await import('./server/check-config.ts');
    const summary = checkStartup(config);
    io.out('configuration OK');
    for (const line of summary) io.out(`  ${line}`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`parley check-config: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

function portFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value)) throw new ConfigError(`${name} must be a port number from 0 to 65535, not "${value}"`);
  return Number(value);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    io.err(`parley: ${err instanceof ParleyError ? `${err.code}: ` : ''}${(err as Error).message ?? err}`);
    process.exitCode = 1;
  },
);
