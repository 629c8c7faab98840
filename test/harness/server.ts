// End-to-end harness: runs the real `parley` CLI as a child process, the way an operator would.
//
//   const server = await startServer({ users: [{ address: 'alice@parley.test', password: 'secret' }] });
//   ... talk SIP to server.udp / server.tcp / server.wsUrl ...
//   await server.stop();
//
// Contract with `parley serve` (the server prints exactly one such line on stdout when it listens):
//   Parley ready: domain=parley.test udp=127.0.0.1:40001 tcp=127.0.0.1:40001 tls=off http=127.0.0.1:40002 ws=ws://127.0.0.1:40002/sip
// Other stdout lines are pino JSON logs; they are kept for logs().
//
// The CLI runs under the same Node binary as the tests (process.execPath).
// PARLEY_TEST_CLI=/path/to/cli.ts points the harness at another entry point (default src/cli.ts).
// PARLEY_TEST_DATABASE=postgres runs every server on PostgreSQL (a fresh database per data
// directory, kept across restarts on it, dropped with it), and its CLI commands with
// `--database`: `server.storageArgs` are the arguments a test gives the CLI to reach the
// server's database.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshPostgresDatabase } from './engines.ts';
import { openStorage, type SqlDatabase } from '../../src/storage/index.ts';

export const REPO_ROOT: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_DOMAIN = 'parley.test';
export const READY_TIMEOUT_MS = 15_000;
export const STOP_GRACE_MS = 5_000;
const CLI_TIMEOUT_MS = 30_000;
/** Kept log text per server; older output is dropped first. */
const MAX_LOG_CHARS = 4_000_000;
/** How much of the logs goes into an error message. */
const ERROR_LOG_TAIL_CHARS = 6_000;

export interface HostPort {
  host: string;
  port: number;
}

export interface TestUser {
  /** user@domain */
  address: string;
  password: string;
  displayName?: string;
}

export interface StartServerOptions {
  domain?: string;
  users?: TestUser[];
  /** appended to the `serve` command line */
  extraArgs?: string[];
  /** a config file's content: written as JSON into the data directory and given with --config */
  config?: object;
  /** added to the environment of the CLI processes */
  env?: Record<string, string | undefined>;
  /** default 15 s */
  readyTimeoutMs?: number;
  /** entry point to run instead of src/cli.ts (also PARLEY_TEST_CLI) */
  cli?: string;
  /**
   * run on this existing data directory (a restart after `kill()`); the directory then belongs to
   * the caller and stop() leaves it in place
   */
  dataDir?: string;
}

export interface ReadyInfo {
  domain: string;
  udp: HostPort;
  tcp: HostPort;
  /** null when the line says tls=off */
  tls: HostPort | null;
  http: HostPort;
  /** null when the line says https=off (or has no https=) */
  https: HostPort | null;
  wsUrl: string;
  /** null when off */
  wssUrl: string | null;
}

export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningServer extends ReadyInfo {
  dataDir: string;
  /** `--data-dir DIR`, or `--database URL` when the server runs on PostgreSQL: where CLI commands find its state */
  storageArgs: string[];
  readyLine: string;
  pid: number;
  /** everything the server wrote so far, stdout and stderr interleaved as received */
  logs(): string;
  /** resolves with the first log line matching, or rejects after timeoutMs */
  waitForLog(match: RegExp, timeoutMs?: number): Promise<string>;
  /** `parley user add` against this server's data dir (works while it runs) */
  addUser(user: TestUser): Promise<void>;
  /** null while running */
  exitStatus(): ServerExit | null;
  /** SIGTERM, SIGKILL after 5 s, then removes the data dir. Idempotent. */
  stop(): Promise<void>;
  /** a crash: SIGKILL (or `signal`) at once; the data dir stays for a restart with `dataDir` */
  kill(signal?: NodeJS.Signals): Promise<ServerExit>;
}

export interface CliResult {
  /** null when the process was killed (timeout) */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  cli?: string;
}

function cliEntry(cli?: string): string {
  return cli ?? process.env.PARLEY_TEST_CLI ?? path.join(REPO_ROOT, 'src', 'cli.ts');
}

/**
 * Children still running and data dirs not yet removed: a test process that exits without
 * stopping its servers (a crash, an uncaught error) still kills them and removes their dirs.
 */
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
}
function track(child: ChildProcess): void {
  installExitHook();
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Runs the real `parley` CLI once: `runCli(['user', 'add', 'alice@parley.test', ...])`. */
export function runCli(args: readonly string[], opts: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry(opts.cli), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? CLI_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The engine the servers run on: PARLEY_TEST_DATABASE=postgres, else SQLite in the data directory. */
export const TEST_DATABASE: 'sqlite' | 'postgres' = process.env.PARLEY_TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite';

/** data directory → its PostgreSQL database, so a restart on the same directory finds its state */
const databases = new Map<string, { url: string; drop(): Promise<void> }>();

async function storageOf(dataDir: string): Promise<string[]> {
  if (TEST_DATABASE === 'sqlite') return ['--data-dir', dataDir];
  let db = databases.get(dataDir);
  if (db === undefined) databases.set(dataDir, (db = await freshPostgresDatabase()));
  return ['--database', db.url];
}

async function dropDatabaseOf(dataDir: string): Promise<void> {
  const db = databases.get(dataDir);
  databases.delete(dataDir);
  await db?.drop();
}

function userAddArgs(user: TestUser, storageArgs: readonly string[]): string[] {
  const args = ['user', 'add', user.address, '--password', user.password];
  if (user.displayName !== undefined) args.push('--display-name', user.displayName);
  args.push(...storageArgs);
  return args;
}

async function addUserVia(user: TestUser, storageArgs: readonly string[], opts: RunCliOptions): Promise<void> {
  // the CLI's own `parley user add` code, run in this process: a process per user (hundreds per
  // suite, each compiling the CLI again) was much of the suite's CPU. Another entry point or
  // environment still gets its own process.
  const args = userAddArgs(user, storageArgs);
  const r = opts.cli === undefined && process.env.PARLEY_TEST_CLI === undefined && opts.env === undefined
    ? await runCommandHere((await import('../../src/admin/index.ts')).runUserCommand, args.slice(1))
    : await runCli(args, opts);
  if (r.code !== 0) {
    throw new Error(
      `parley user add ${user.address} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`,
    );
  }
}

/** A `parley` command's own function: `runUserCommand`, `runHistoryCommand`… (the words after the command's name, an output, the CLI's defaults). */
export type CommandFunction = (args: string[], io: { out(line: string): void; err(line: string): void }, defaults: { dataDir: string; domain: string }) => Promise<number>;

/**
 * Runs a `parley` command's code in this process, with the CLI's defaults, and gives what a CLI
 * process would have printed: `runCommandHere(runHistoryCommand, ['list', '--json', ...storageArgs])`.
 * The same code without a process start (which compiles the CLI again): for a test that polls a
 * command, or a helper that runs one many times. What the CLI process adds (its argument routing,
 * exit codes from thrown errors) is tested through runCli.
 */
export async function runCommandHere(command: CommandFunction, args: readonly string[]): Promise<CliResult> {
  const { DEFAULT_CONFIG } = await import('../../src/server/config.ts');
  let stdout = '';
  let stderr = '';
  const io = { out: (line: string) => void (stdout += `${line}\n`), err: (line: string) => void (stderr += `${line}\n`) };
  const code = await command([...args], io, { dataDir: DEFAULT_CONFIG.dataDir, domain: DEFAULT_CONFIG.domain });
  return { code, stdout, stderr };
}

function parseHostPort(text: string, what: string): HostPort {
  // 127.0.0.1:5060 or [::1]:5060
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  if (!m) throw new Error(`ready line: cannot read ${what}=${text}`);
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

/** Parses the `Parley ready: ...` line; throws when it is not one or a field is missing. */
export function parseReadyLine(line: string): ReadyInfo {
  const prefix = 'Parley ready:';
  const trimmed = line.trim();
  if (!trimmed.startsWith(prefix)) throw new Error(`not a ready line: ${line}`);
  const fields = new Map<string, string>();
  for (const token of trimmed.slice(prefix.length).trim().split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0) fields.set(token.slice(0, eq), token.slice(eq + 1));
  }
  const need = (key: string): string => {
    const v = fields.get(key);
    if (v === undefined || v === '') throw new Error(`ready line has no ${key}=: ${line}`);
    return v;
  };
  const tls = need('tls');
  const https = fields.get('https') ?? 'off';
  const wss = fields.get('wss') ?? 'off';
  return {
    domain: need('domain'),
    udp: parseHostPort(need('udp'), 'udp'),
    tcp: parseHostPort(need('tcp'), 'tcp'),
    tls: tls === 'off' ? null : parseHostPort(tls, 'tls'),
    http: parseHostPort(need('http'), 'http'),
    https: https === 'off' ? null : parseHostPort(https, 'https'),
    wsUrl: need('ws'),
    wssUrl: wss === 'off' ? null : wss,
  };
}

function tail(text: string, chars: number): string {
  return text.length <= chars ? text : `[... ${text.length - chars} chars cut ...]\n${text.slice(-chars)}`;
}

/**
 * Makes a temp data dir, adds `users` with the real CLI, starts `parley serve` on 127.0.0.1 with
 * any free ports, and resolves once it printed its ready line.
 */
export async function startServer(opts: StartServerOptions = {}): Promise<RunningServer> {
  const domain = opts.domain ?? DEFAULT_DOMAIN;
  const cliOpts: RunCliOptions = { env: opts.env, cli: opts.cli };
  const ownsDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'parley-e2e-')));
  installExitHook();
  if (ownsDir) dirs.add(dataDir);
  const cleanup = async () => {
    if (!ownsDir) return;
    await rm(dataDir, { recursive: true, force: true });
    dirs.delete(dataDir);
    await dropDatabaseOf(dataDir);
  };
  const storageArgs = await storageOf(dataDir);

  try {
    for (const user of opts.users ?? []) await addUserVia(user, storageArgs, cliOpts);
  } catch (err) {
    await cleanup();
    throw err;
  }

  const configArgs: string[] = [];
  if (opts.config !== undefined) {
    const configPath = path.join(dataDir, 'test-config.json');
    await writeFile(configPath, JSON.stringify(opts.config));
    configArgs.push('--config', configPath);
  }
  const args = [
    cliEntry(opts.cli),
    'serve',
    '--data-dir',
    dataDir,
    ...(TEST_DATABASE === 'postgres' ? storageArgs : []),
    '--domain',
    domain,
    '--listen',
    '127.0.0.1',
    '--sip-port',
    '0',
    '--http-port',
    '0',
    ...configArgs,
    ...(opts.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);

  let logText = '';
  let exit: ServerExit | null = null;
  const lineWaiters = new Set<{ re: RegExp; resolve: (line: string) => void }>();
  let pendingOut = '';
  let onReadyLine: ((line: string) => void) | null = null;

  const append = (chunk: string) => {
    logText += chunk;
    if (logText.length > MAX_LOG_CHARS) logText = logText.slice(-MAX_LOG_CHARS / 2);
  };
  const checkLine = (line: string) => {
    if (onReadyLine && line.startsWith('Parley ready:')) onReadyLine(line);
    for (const w of lineWaiters) {
      if (w.re.test(line)) {
        lineWaiters.delete(w);
        w.resolve(line);
      }
    }
  };
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    append(d);
    pendingOut += d;
    let nl: number;
    while ((nl = pendingOut.indexOf('\n')) >= 0) {
      checkLine(pendingOut.slice(0, nl).replace(/\r$/, ''));
      pendingOut = pendingOut.slice(nl + 1);
    }
  });
  // stderr lines are logged and can be waited for, but never count as the ready line
  let pendingErr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    append(d);
    pendingErr += d;
    let nl: number;
    while ((nl = pendingErr.indexOf('\n')) >= 0) {
      const line = pendingErr.slice(0, nl).replace(/\r$/, '');
      pendingErr = pendingErr.slice(nl + 1);
      for (const w of lineWaiters) {
        if (w.re.test(line)) {
          lineWaiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<ServerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });

  const readyTimeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
  let readyLine: string;
  try {
    readyLine = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`parley serve printed no ready line within ${readyTimeoutMs} ms`));
      }, readyTimeoutMs);
      onReadyLine = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot spawn parley serve: ${err.message}`));
      });
      void exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`parley serve exited before it was ready (code ${e.code}, signal ${e.signal})`));
      });
    });
  } catch (err) {
    if (exit === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await cleanup();
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      `${message}\ncommand: ${process.execPath} ${args.join(' ')}\n--- server output ---\n${tail(logText, ERROR_LOG_TAIL_CHARS)}`,
    );
  } finally {
    onReadyLine = null;
  }

  let info: ReadyInfo;
  try {
    info = parseReadyLine(readyLine);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await cleanup();
    throw err;
  }

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exit === null) {
        child.kill('SIGTERM');
        const killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(killTimer);
      }
      for (const w of lineWaiters) lineWaiters.delete(w);
      await cleanup();
    })();
    return stopping;
  };

  return {
    ...info,
    dataDir,
    storageArgs,
    readyLine,
    pid: child.pid ?? -1,
    logs: () => logText,
    waitForLog(match: RegExp, timeoutMs = 5_000): Promise<string> {
      for (const line of logText.split('\n')) if (match.test(line)) return Promise.resolve(line);
      return new Promise((resolve, reject) => {
        const waiter = {
          re: match,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          lineWaiters.delete(waiter);
          reject(new Error(`no server log line matched ${match} within ${timeoutMs} ms\n${tail(logText, ERROR_LOG_TAIL_CHARS)}`));
        }, timeoutMs);
        lineWaiters.add(waiter);
      });
    },
    addUser: (user: TestUser) => addUserVia(user, storageArgs, cliOpts),
    exitStatus: () => exit,
    stop,
    async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ServerExit> {
      if (exit === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * A connection to the server's own storage (its SQLite file, or its PostgreSQL database), for a
 * test that writes or reads state directly; the caller closes it.
 */
export async function openServerStorage(server: RunningServer): Promise<SqlDatabase> {
  const at = server.storageArgs.indexOf('--database');
  const database = at < 0 ? null : (server.storageArgs[at + 1] ?? null);
  return (await openStorage({ dataDir: server.dataDir, database })).sql;
}
