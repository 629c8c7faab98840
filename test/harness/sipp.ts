// sipp (Debian package sip-tester, 3.6.1) as a real SIP peer for the end-to-end tests.
//
//   const r = await runSipp({ scenario: SCENARIOS.registerDigest, target: `127.0.0.1:${server.udp.port}`,
//                             transport: 'u1', domain: 'parley.test', injection: [['alice', 'secret']] });
//   assert.equal(r.code, 0, describeSippRun(r));
//
// Every run is bounded in time (-timeout N -timeout_error, plus a kill timer), makes `calls`
// calls (-m), reads no keyboard (-nostdin), binds 127.0.0.1 only (-i, -bind_local, -ci), and
// writes its traces into a temp dir that is read into the result and then removed:
// -trace_err (unexpected messages), -trace_stat (final counters), -trace_logs (<log> actions),
// -trace_msg (every message sent and received). Exit code 0 = every call succeeded
// (1 = some call failed, 97 = internal command, 99 = no call, 255 = fatal error).
//
// Facts about sipp 3.6.1 these helpers and the scenarios depend on (checked against its source
// and by running it; see test/interop/sipp/README.md):
// - [authentication] answers MD5 (and AKAv1-MD5) only. On a 401/407 it joins the values of all
//   Proxy-Authenticate headers (else all WWW-Authenticate headers) with "," and reads the FIRST
//   algorithm=, realm=, nonce=, qop=, opaque= in that text. A response offering SHA-256 first
//   and MD5 second therefore makes sipp stop with "createAuthHeader: authentication must use
//   MD5 or AKAv1-MD5" (exit 255). Start the server with SIPP_SERVER_ARGS for sipp suites.
// - The digest uri sipp sends is "sip:" + -auth_uri (default "sip:<remote_ip>:<remote_port>"),
//   the same for every request: we pass -auth_uri <domain>, so it equals the REGISTER
//   Request-URI (sip:parley.test); a MESSAGE's (sip:bob@parley.test) needs authUri bob@parley.test,
//   since Parley refuses credentials whose uri is not the Request-URI (RFC 7616 §3.4.6).
// - Inside [authentication ...] a nested keyword must be quoted: username="[field0]".

import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './server.ts';

export type SippTransport = 'u1' | 't1' | 'tn';

/**
 * Server arguments the sipp suites need: offer only the MD5 digest challenge, which sipp 3.6
 * can answer (see the header of this file). The option is part of the server's contract with
 * these tests.
 */
export const SIPP_SERVER_ARGS: readonly string[] = ['--digest-algorithms', 'MD5'];

export const SIPP_DIR: string = path.join(REPO_ROOT, 'test', 'interop', 'sipp');
export const SCENARIOS = {
  registerDigest: path.join(SIPP_DIR, 'register-digest.xml'),
  messageUac: path.join(SIPP_DIR, 'message-uac.xml'),
  messageUas: path.join(SIPP_DIR, 'message-uas.xml'),
  messageUasOoc: path.join(SIPP_DIR, 'message-uas-ooc.xml'),
  messageOfflineUac: path.join(SIPP_DIR, 'message-offline-uac.xml'),
} as const;

/** The <log> line message-uas.xml writes once registered. */
export const UAS_READY_MARKER = 'parley-registered';

export interface SippOptions {
  /** path to the XML scenario (-sf) */
  scenario: string;
  /** host:port of the server */
  target: string;
  /** -t; default u1 */
  transport?: SippTransport;
  /** -p; 0 or absent: a port free for both UDP and TCP on 127.0.0.1 is picked */
  localPort?: number;
  /** -s: user part of the default Request-URI ([service]) */
  service?: string;
  /** -au / -ap: credentials for a bare [authentication] */
  authUser?: string;
  authPass?: string;
  /** SIP domain: -key domain <domain> (the scenarios' [domain]) and, unless authUri is given, -auth_uri <domain> */
  domain?: string;
  /** -auth_uri (without "sip:") */
  authUri?: string;
  /** -inf: an existing CSV file */
  injectionFile?: string;
  /** rows written to a SEQUENTIAL CSV in the work dir and passed with -inf (after injectionFile) */
  injection?: ReadonlyArray<readonly string[]>;
  /** -oocsf: out-of-call scenario */
  oocScenario?: string;
  /** -key name value, for [name] in scenarios */
  keys?: Readonly<Record<string, string>>;
  /** -m; default 1 */
  calls?: number;
  /** -r calls per second; sipp's default is 10 */
  rate?: number;
  /** -timeout (s) with -timeout_error; the process is also killed 10 s later. Default 20. */
  timeoutSec?: number;
  /** -trace_msg; default true (small runs, and the log is what explains a failure) */
  traceMessages?: boolean;
  /** more sipp arguments, appended last */
  extra?: readonly string[];
  /** keep the work dir (its path is in the result) instead of removing it */
  keepWorkDir?: boolean;
}

export interface SippStats {
  /** every column of the last -trace_stat line, by its header name */
  raw: Record<string, string>;
  successfulCalls: number;
  failedCalls: number;
  totalCallsCreated: number;
}

export interface SippResult {
  /** sipp's exit code; null when it was killed */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** true when the harness killed it after timeoutSec + grace */
  killed: boolean;
  stdout: string;
  stderr: string;
  stats?: SippStats;
  /** -trace_err file: unexpected messages, aborted calls */
  errors: string;
  /** -trace_logs file: the scenario's <log> lines */
  logs: string;
  /** -trace_msg file, when traceMessages */
  messages: string;
  args: string[];
  localPort: number;
  workDir: string;
}

export interface SippUas {
  localPort: number;
  /** resolves when sipp has ended; never rejects */
  done: Promise<SippResult>;
  /** current -trace_logs text */
  logs(): Promise<string>;
  /** resolves when the -trace_logs file has a line containing `text`; rejects if sipp ends or on timeout */
  waitForLog(text: string, timeoutMs?: number): Promise<void>;
  /** SIGUSR1 (sipp's soft exit: no new calls, running ones finish), SIGKILL after 5 s */
  stop(): Promise<SippResult>;
}

export interface StartSippUasOptions extends SippOptions {
  /** <log> text meaning "ready for traffic"; default UAS_READY_MARKER. Empty: do not wait. */
  readyMarker?: string;
  /** default 10 s */
  readyTimeoutMs?: number;
}

const KILL_GRACE_MS = 10_000;
const POLL_MS = 50;

let sippPath: string | null | undefined;
/** Absolute path of sipp, or null when it is not installed (scripts/install-test-deps.sh). */
export function findSipp(): string | null {
  if (sippPath !== undefined) return sippPath;
  const r = spawnSync('sh', ['-c', 'command -v sipp'], { encoding: 'utf8' });
  sippPath = r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
  return sippPath;
}

function bindUdp(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', (e) => {
      s.close();
      reject(e);
    });
    s.bind(port, host, () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function bindTcp(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, host, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** A port that was free for both UDP and TCP on `host` a moment ago. */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await bindTcp(0, host);
    try {
      await bindUdp(port, host);
      return port;
    } catch {
      // taken for UDP: try another
    }
  }
  throw new Error('no port free for both UDP and TCP');
}

/** A SEQUENTIAL sipp injection file: first line the order, then one row per call, ';'-separated. */
export function injectionCsv(rows: ReadonlyArray<readonly string[]>, order = 'SEQUENTIAL'): string {
  for (const row of rows) {
    for (const f of row) if (/[;\r\n]/.test(f)) throw new Error(`injection field cannot hold ; or a newline: ${f}`);
  }
  return `${order}\n${rows.map((r) => r.join(';')).join('\n')}\n`;
}

/** Parses sipp's -trace_stat CSV (';'-separated, header line first). */
export function parseStatCsv(text: string): SippStats | undefined {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0];
  const last = lines[lines.length - 1];
  if (!header || !last || lines.length < 2) return undefined;
  const names = header.split(';');
  const values = last.split(';');
  const raw: Record<string, string> = {};
  names.forEach((n, i) => {
    if (n !== '') raw[n] = values[i] ?? '';
  });
  const num = (k: string) => Number(raw[k] ?? NaN);
  return {
    raw,
    successfulCalls: num('SuccessfulCall(C)'),
    failedCalls: num('FailedCall(C)'),
    totalCallsCreated: num('TotalCallCreated'),
  };
}

async function readOr(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

/** A multi-line account of a run, for assertion messages. */
export function describeSippRun(r: SippResult, maxChars = 8_000): string {
  const cut = (s: string) => (s.length <= maxChars ? s : `[... ${s.length - maxChars} chars cut ...]\n${s.slice(-maxChars)}`);
  return [
    `sipp exit code ${r.code}${r.signal ? ` signal ${r.signal}` : ''}${r.killed ? ' (killed by the harness)' : ''}`,
    `command: sipp ${r.args.join(' ')}`,
    r.stats ? `calls: ${r.stats.successfulCalls} successful, ${r.stats.failedCalls} failed` : 'no statistics',
    `--- errors (-trace_err) ---\n${cut(r.errors.trim())}`,
    `--- logs (-trace_logs) ---\n${cut(r.logs.trim())}`,
    `--- stderr ---\n${cut(r.stderr.trim())}`,
    `--- messages (-trace_msg) ---\n${cut(r.messages.trim())}`,
  ].join('\n');
}

interface Spawned {
  localPort: number;
  workDir: string;
  files: { errors: string; stat: string; logs: string; messages: string };
  done: Promise<SippResult>;
  kill(signal: NodeJS.Signals): void;
}

async function spawnSipp(opts: SippOptions): Promise<Spawned> {
  const sipp = findSipp();
  if (!sipp) throw new Error('sipp is not installed: run scripts/install-test-deps.sh');
  const injectionText = opts.injection !== undefined ? injectionCsv(opts.injection) : undefined;
  const localPort = opts.localPort ? opts.localPort : await findFreePort();
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'parley-sipp-'));
  const timeoutSec = opts.timeoutSec ?? 20;
  const traceMessages = opts.traceMessages ?? true;
  const files = {
    errors: path.join(workDir, 'errors.log'),
    stat: path.join(workDir, 'stat.csv'),
    logs: path.join(workDir, 'logs.log'),
    messages: path.join(workDir, 'messages.log'),
  };

  const args: string[] = [
    opts.target,
    '-sf',
    opts.scenario,
    '-t',
    opts.transport ?? 'u1',
    '-i',
    '127.0.0.1',
    '-bind_local',
    '-ci',
    '127.0.0.1',
    '-p',
    String(localPort),
    '-m',
    String(opts.calls ?? 1),
    '-nostdin',
    '-timeout',
    `${timeoutSec}s`,
    '-timeout_error',
    // our scenarios have no dialogs: an aborted call must not send a BYE
    '-default_behaviors',
    'all,-bye',
    // sipp refuses socket-per-call modes (tn) when its default 50000 exceeds `ulimit -n`
    '-max_socket',
    '1000',
    '-trace_err',
    '-error_file',
    files.errors,
    '-trace_stat',
    '-stf',
    files.stat,
    '-trace_logs',
    '-log_file',
    files.logs,
  ];
  if (traceMessages) args.push('-trace_msg', '-message_file', files.messages);
  if (opts.rate !== undefined) args.push('-r', String(opts.rate));
  if (opts.service !== undefined) args.push('-s', opts.service);
  if (opts.authUser !== undefined) args.push('-au', opts.authUser);
  if (opts.authPass !== undefined) args.push('-ap', opts.authPass);
  if (opts.domain !== undefined) args.push('-key', 'domain', opts.domain);
  const authUri = opts.authUri ?? opts.domain;
  if (authUri !== undefined) args.push('-auth_uri', authUri);
  for (const [k, v] of Object.entries(opts.keys ?? {})) args.push('-key', k, v);
  if (opts.injectionFile !== undefined) args.push('-inf', opts.injectionFile);
  if (injectionText !== undefined) {
    const csv = path.join(workDir, 'injection.csv');
    await writeFile(csv, injectionText);
    args.push('-inf', csv);
  }
  if (opts.oocScenario !== undefined) args.push('-oocsf', opts.oocScenario);
  args.push(...(opts.extra ?? []));

  const child = spawn(sipp, args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (stdout.length > 1_000_000) stdout = stdout.slice(-500_000);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let killed = false;
  const killTimer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, timeoutSec * 1000 + KILL_GRACE_MS);
  // the test process ending first (a crash) must not leave sipp running or its traces behind
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (!opts.keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const done = new Promise<SippResult>((resolve) => {
    let spawnError: Error | null = null;
    child.once('error', (e) => (spawnError = e));
    child.once('close', (code, signal) => {
      clearTimeout(killTimer);
      process.removeListener('exit', onExit);
      void (async () => {
        const [statText, errors, logs, messages] = await Promise.all([
          readOr(files.stat),
          readOr(files.errors),
          readOr(files.logs),
          readOr(files.messages),
        ]);
        if (!opts.keepWorkDir) await rm(workDir, { recursive: true, force: true });
        resolve({
          code,
          signal,
          killed,
          stdout,
          stderr: spawnError ? `${stderr}\nspawn error: ${(spawnError as Error).message}` : stderr,
          stats: parseStatCsv(statText),
          errors,
          logs,
          messages,
          args,
          localPort,
          workDir,
        });
      })();
    });
  });

  return {
    localPort,
    workDir,
    files,
    done,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Runs sipp to the end and resolves with its exit code, statistics and traces. Never rejects for a failed call. */
export async function runSipp(opts: SippOptions): Promise<SippResult> {
  const s = await spawnSipp(opts);
  return s.done;
}

/**
 * Starts sipp in the background, e.g. message-uas.xml (with message-uas-ooc.xml as its -oocsf):
 * resolves once its -trace_logs file shows `readyMarker`, i.e. once it is registered.
 */
export async function startSippUas(opts: StartSippUasOptions): Promise<SippUas> {
  const s = await spawnSipp(opts);
  let ended: SippResult | null = null;
  void s.done.then((r) => (ended = r));
  const currentLogs = async () => (ended ? ended.logs : readOr(s.files.logs));

  const waitForLog = async (text: string, timeoutMs = 10_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await currentLogs()).includes(text)) return;
      if (ended) throw new Error(`sipp ended before logging "${text}"\n${describeSippRun(ended)}`);
      if (Date.now() > deadline) {
        s.kill('SIGKILL');
        const r = await s.done;
        throw new Error(`sipp did not log "${text}" within ${timeoutMs} ms\n${describeSippRun(r)}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  };

  const marker = opts.readyMarker ?? UAS_READY_MARKER;
  if (marker !== '') await waitForLog(marker, opts.readyTimeoutMs ?? 10_000);

  return {
    localPort: s.localPort,
    done: s.done,
    logs: currentLogs,
    waitForLog,
    stop: async () => {
      s.kill('SIGUSR1');
      const t = setTimeout(() => s.kill('SIGKILL'), 5_000);
      const r = await s.done;
      clearTimeout(t);
      return r;
    },
  };
}
