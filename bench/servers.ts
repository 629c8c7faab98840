// Starts the two servers under test, each pinned to core 0 with taskset, and seeds the same
// users in both (same names, same password). Also reads CPU and memory of a process tree from /proc.
//
// Parley user seeding: `parley user add` runs scrypt (~80 ms a user, see src/directory/users.ts),
// too slow for thousands of users. Every bench user has the same password, so the bench adds the
// first user through the directory API and copies its scrypt hash to the others, with each user's
// own digest HA1s (the only credential SIP digest reads).
//
// `startParley(…, { database: 'postgres' })` runs Parley on a fresh database of the machine's
// PostgreSQL server (test/harness/engines.ts: the tests' server, through its Unix socket, which the
// bench's network namespace reaches too), seeded the same way, dropped when the server stops.
// PostgreSQL is not started by the bench and is NOT pinned to the server's core: postgresCpu()
// reads what its processes used, to report beside the server's own CPU.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { DIRECTORY_MIGRATIONS, addUser } from '../src/directory/users.ts';
import type { GroupCommitStats } from '../src/offline/group-commit.ts';
import { computeHa1 } from '../src/sip/index.ts';
import { migrate, openDatabase, openPostgres, sqliteSql } from '../src/storage/index.ts';
import type { Sql } from '../src/storage/index.ts';
import { freshPostgresDatabase } from '../test/harness/engines.ts';
import { findFreePort } from '../test/harness/sipp.ts';

export const BENCH_DIR: string = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT: string = path.resolve(BENCH_DIR, '..');
export const SERVER_CORE = '0';
export const LOAD_CORE = '1';
const KAMAILIO_SQL = '/usr/share/kamailio/db_sqlite';

export interface BenchServer {
  name: 'Parley' | 'Kamailio';
  /** UDP, and TCP on the same number */
  port: number;
  /** the TLS listener's port (started with `tls`) */
  tlsPort?: number;
  /** ws://… (Parley only) */
  wsUrl?: string;
  /** the data directory, <dataDir>/parley.db (Parley only; on PostgreSQL it holds the secrets only) */
  dataDir?: string;
  /** Parley on PostgreSQL: its database (address and name); the spool is read there, not in dataDir */
  postgres?: { url: string; name: string };
  /** group-commit totals so far (Parley started with commitStats) */
  commitStats?(): Promise<CommitTotals | undefined>;
  pid: number;
  stop(): Promise<void>;
  output(): string;
}

/**
 * What a step measures (bench/run.ts stepUp): one server, or the nodes of a cluster
 * (bench/cluster.ts), whose CPU and memory are summed; `redisPid`: a cluster's Redis, whose CPU is
 * reported beside.
 */
export interface StepTarget {
  name: string;
  pids: readonly number[];
  postgres?: BenchServer['postgres'];
  commitStats?: BenchServer['commitStats'];
  redisPid?: number;
}

/** The bench users in Parley's directory, on either engine (`sql` is migrated here). */
export async function seedParley(sql: Sql, domain: string, users: readonly string[], password: string): Promise<void> {
  await migrate(sql, [DIRECTORY_MIGRATIONS]);
  const [first, ...rest] = users;
  if (first === undefined) return;
  await addUser(sql, { address: `${first}@${domain}`, password });
  const row = (await sql.get<{ password_hash: string; created_at: number }>('SELECT password_hash, created_at FROM users WHERE address = ?', [`${first}@${domain}`]))!;
  await sql.transaction(async (tx) => {
    for (const u of rest) {
      await tx.run(
        'INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)',
        [`${u}@${domain}`, row.password_hash, domain, computeHa1('MD5', u, domain, password), computeHa1('SHA-256', u, domain, password), row.created_at, row.created_at],
      );
    }
  });
}

/**
 * Kamailio's databases, from the package's own schema files: `dbFile` holds version + subscriber
 * (auth_db), `siloFile` version + silo (msilo). Two files, because db_sqlite in Kamailio 5.6 sets no
 * busy timeout: with one file in SQLite's default rollback journal, every auth_db SELECT that
 * overlaps an msilo INSERT fails at once with "database is locked" (offline MESSAGEs then fail at
 * ~250/s whatever the offered rate), which measures the lock, not the server.
 */
export async function seedKamailio(dbFile: string, siloFile: string, domain: string, users: readonly string[], password: string, siloJournal: 'delete' | 'wal' = 'delete'): Promise<void> {
  const silo = new DatabaseSync(siloFile);
  try {
    for (const f of ['standard-create.sql', 'msilo-create.sql']) silo.exec(await readFile(path.join(KAMAILIO_SQL, f), 'utf8'));
    // journal_mode is stored in the file: Kamailio's connections find it set
    if (siloJournal === 'wal') silo.exec('PRAGMA journal_mode = WAL');
  } finally {
    silo.close();
  }
  const db = new DatabaseSync(dbFile);
  try {
    for (const f of ['standard-create.sql', 'auth_db-create.sql']) db.exec(await readFile(path.join(KAMAILIO_SQL, f), 'utf8'));
    const insert = db.prepare('INSERT INTO subscriber (username, domain, password) VALUES (?, ?, ?)');
    db.exec('BEGIN');
    for (const u of users) insert.run(u, domain, password);
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<void>;
}

/** `logFile`: everything the process writes also goes there, whole (the bench keeps only the last 100-200 kB in memory). */
function launch(cmd: string, args: string[], cwd: string, core = SERVER_CORE, logFile?: string): Proc {
  // taskset pins the server to one core. The file-descriptor limit is inherited: raise it
  // before the bench (`ulimit -n`); fdLimit() reports it and the WebSocket scenario stays under it.
  const child = spawn('taskset', ['-c', core, cmd, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const file = logFile === undefined ? undefined : createWriteStream(logFile);
  const add = (d: string) => {
    file?.write(d);
    out += d;
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  if (file) child.once('exit', () => file.end());
  child.stdout!.setEncoding('utf8').on('data', add);
  child.stderr!.setEncoding('utf8').on('data', add);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.once('exit', () => child.kill('SIGKILL'));
  return { child, output: () => out, exited };
}

async function waitFor(p: Proc, test: (out: string) => boolean, what: string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!test(p.output())) {
    if (p.child.exitCode !== null || Date.now() > until) throw new Error(`${what} did not start:\n${p.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopProc(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await p.exited;
  clearTimeout(t);
}

export interface ParleyOptions {
  /** OfflineImPickupDelay (d.hh:mm:ss), set with `parley admin Set-CsImConfiguration` before the start */
  pickupDelay?: string;
  /** more cmdlets run with `parley admin --data-dir` before the start, e.g. ['Set-CsClientPolicy', '-Identity', 'Global', '-EnableIMAutoArchiving', '$False'] */
  admin?: ReadonlyArray<readonly string[]>;
  /** count the offline spool's group commits (bench/commit-stats.ts; read them with commitStats()) */
  commitStats?: boolean;
  /** names the CPU profile when BENCH_CPU_PROF is set */
  label?: string;
  /** written as the server's config file (`parley serve --config`) */
  config?: Record<string, unknown>;
  /** where Parley keeps its state: SQLite in the data directory (the default) or a fresh PostgreSQL database */
  database?: 'sqlite' | 'postgres';
  /**
   * a cluster node (bench/cluster.ts): its id, the Redis the nodes share, and their PostgreSQL
   * database, which the caller made and seeded (this server neither seeds nor drops it; `database` is ignored)
   */
  cluster?: { node: string; redis: string; database: { url: string; name: string } };
  /** the core the server is pinned to (default SERVER_CORE) */
  core?: string;
  /** a TLS listener (config `tls` and `sipsPort`) with this certificate and key (PEM files) */
  tls?: { cert: string; key: string };
}

/** Group-commit totals that bench/commit-stats.ts reports (see there). */
export type CommitTotals = GroupCommitStats;

/**
 * `BENCH_CPU_PROF=DIR npm run bench …` runs every Parley under `node --cpu-prof`; each writes
 * DIR/parley-<label>-<time>.cpuprofile when it stops. `node bench/profile-top.ts FILE` lists its hot
 * spots. The profiler costs some throughput: compare rates from runs without it.
 */
export function cpuProfileDir(): string | undefined {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? path.resolve(dir) : undefined;
}

/**
 * `BENCH_NODE_FLAGS="--trace-gc-nvp"` (space-separated) adds flags to every Parley the bench starts,
 * to look into a run (the garbage collector's pauses, say); what they print is in the output the
 * bench keeps of the server (BenchServer.output).
 */
function nodeFlagsFromEnv(): string[] {
  return (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
}

/**
 * `BENCH_SERVER_LOGS=DIR`: everything each Parley prints (with BENCH_NODE_FLAGS="--trace-gc", its
 * collections) goes to DIR/parley-<label>-<time>.log as well, to read a run's pauses afterwards.
 */
async function serverLogFile(label: string | undefined): Promise<string | undefined> {
  const dir = process.env.BENCH_SERVER_LOGS;
  if (dir === undefined || dir === '') return undefined;
  await mkdir(dir, { recursive: true });
  return path.join(dir, `parley-${label ?? 'server'}-${Date.now()}.log`);
}

export async function startParley(domain: string, users: readonly string[], password: string, opts: ParleyOptions = {}): Promise<BenchServer> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'parley-bench-'));
  const cmdlets = [...(opts.pickupDelay !== undefined ? [['Set-CsImConfiguration', '-OfflineImPickupDelay', opts.pickupDelay]] : []), ...(opts.admin ?? [])];
  let postgres: { url: string; name: string; drop(): Promise<void> } | undefined;
  if (opts.cluster) {
    // the cluster's database: seeded and dropped by its owner
    postgres = { ...opts.cluster.database, drop: async () => {} };
  } else if (opts.database === 'postgres') {
    postgres = await freshPostgresDatabase();
    const sql = await openPostgres(postgres.url, { max: 2 });
    try {
      await seedParley(sql, domain, users, password);
    } finally {
      await sql.close();
    }
  } else {
    const db = openDatabase(dataDir);
    try {
      await seedParley(sqliteSql(db), domain, users, password);
    } finally {
      db.close();
    }
  }
  const storage = postgres === undefined ? ['--data-dir', dataDir] : ['--database', postgres.url];
  for (const cmdlet of cmdlets) {
    // a cmdlet that fails (exit code ≠ 0) throws here with its stderr: the run would measure the wrong settings
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'src', 'cli.ts'), 'admin', ...storage, ...cmdlet], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  }
  const nodeFlags = nodeFlagsFromEnv();
  if (opts.commitStats) nodeFlags.push('--import', path.join(BENCH_DIR, 'commit-stats.ts'));
  const profDir = cpuProfileDir();
  if (profDir) {
    await mkdir(profDir, { recursive: true });
    nodeFlags.push('--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', `parley-${opts.label ?? 'server'}-${Date.now()}.cpuprofile`);
  }
  const config = opts.tls ? { ...opts.config, tls: { cert: opts.tls.cert, key: opts.tls.key }, sipsPort: 0 } : opts.config;
  const configArgs: string[] = [];
  if (config) {
    const file = path.join(dataDir, 'bench-config.json');
    await writeFile(file, JSON.stringify(config));
    configArgs.push('--config', file);
  }
  const clean = async () => {
    await postgres?.drop();
    await rm(dataDir, { recursive: true, force: true });
  };
  // A port found free can be taken before the server binds it (the ephemeral ports of the last
  // step's thousand connections, in TIME_WAIT or not yet closed): then new ports, up to three tries.
  let p: Proc | undefined;
  let port = 0;
  for (let attempt = 1; p === undefined; attempt++) {
    port = await findFreePort();
    const httpPort = await findFreePort();
    const args = [...nodeFlags, path.join(REPO_ROOT, 'src', 'cli.ts'), 'serve', '--data-dir', dataDir, '--domain', domain, '--listen', '127.0.0.1', '--sip-port', String(port), '--http-port', String(httpPort), '--digest-algorithms', 'MD5', '--log-level', 'warn', ...configArgs];
    if (postgres) args.push('--database', postgres.url);
    if (opts.cluster) args.push('--cluster', opts.cluster.node, '--redis', opts.cluster.redis);
    const tried = launch(process.execPath, args, REPO_ROOT, opts.core, await serverLogFile(opts.label));
    try {
      await waitFor(tried, (o) => o.includes('Parley ready:'), 'Parley');
      p = tried;
    } catch (error) {
      await stopProc(tried);
      if (attempt < 3 && tried.output().includes('EADDRINUSE')) continue;
      await clean();
      throw error;
    }
  }
  const proc = p;
  const stop = async () => {
    await stopProc(proc);
    await clean();
  };
  const ws = /ws=(\S+)/.exec(p.output())?.[1];
  const tlsPort = opts.tls ? Number(/ tls=\S+:(\d+) /.exec(p.output())?.[1]) : undefined;
  if (tlsPort !== undefined && !(tlsPort > 0)) {
    await stop();
    throw new Error(`Parley's ready line names no TLS port: ${p.output().slice(-2000)}`);
  }
  let asked = 0;
  const commitStats = async (): Promise<CommitTotals | undefined> => {
    if (!opts.commitStats) return undefined;
    const n = ++asked;
    p.child.kill('SIGUSR2');
    const re = new RegExp(`^bench-commit-stats ${n} (.*)$`, 'm');
    const until = Date.now() + 5_000;
    for (;;) {
      const m = re.exec(p.output());
      if (m) return (JSON.parse(m[1]!) as CommitTotals | null) ?? undefined;
      if (Date.now() > until || p.child.exitCode !== null) return undefined;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { name: 'Parley', port, ...(tlsPort ? { tlsPort } : {}), wsUrl: ws, pid: p.child.pid!, dataDir, ...(postgres ? { postgres: { url: postgres.url, name: postgres.name } } : {}), stop, output: p.output, commitStats };
}

export interface KamailioOptions {
  /** UDP worker processes (the cfg says 2) */
  children?: number;
  /** the msilo database's journal: SQLite's default rollback journal (`delete`) or `wal` */
  siloJournal?: 'delete' | 'wal';
  /** listen on TCP too (kamailio.cfg's WITH_TCP), and on TLS with this certificate (WITH_TLS) */
  stream?: { tls?: { cert: string; key: string } };
  /** a file that gets everything Kamailio logs (-E: stderr), to explain a run afterwards */
  log?: string;
}

export async function startKamailio(domain: string, users: readonly string[], password: string, opts: KamailioOptions = {}): Promise<BenchServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kamailio-bench-'));
  const db = path.join(dir, 'kamailio.db');
  const silo = path.join(dir, 'silo.db');
  await seedKamailio(db, silo, domain, users, password, opts.siloJournal);
  const port = await findFreePort();
  const tls = opts.stream?.tls;
  const tlsPort = tls ? await findFreePort() : undefined;
  const cfg = (await readFile(path.join(BENCH_DIR, 'kamailio.cfg'), 'utf8'))
    .replaceAll('__PORT__', String(port)).replaceAll('__DB__', db).replaceAll('__SILO_DB__', silo).replaceAll('__DOMAIN__', domain)
    .replaceAll('__TLS_PORT__', String(tlsPort ?? 0)).replaceAll('__TLS_CERT__', tls?.cert ?? '').replaceAll('__TLS_KEY__', tls?.key ?? '')
    .replace(/^children=\d+$/m, `children=${opts.children ?? 2}`);
  const cfgFile = path.join(dir, 'kamailio.cfg');
  await writeFile(cfgFile, cfg);
  // -DD: no daemon, stay in the foreground; -E: log to stderr; -m/-M: shared/private memory in
  // MB. tm keeps each transaction in shm until its wait timer ends: 64 MB ran out at 2000
  // MESSAGE/s and 256 MB at 8000/s. Only touched pages count in the memory we report.
  // -A: the cfg's #!ifdef blocks for the stream transports
  const defines = opts.stream ? ['-A', 'WITH_TCP', ...(tls ? ['-A', 'WITH_TLS'] : [])] : [];
  if (opts.log !== undefined) await mkdir(path.dirname(opts.log), { recursive: true });
  const p = launch('kamailio', ['-f', cfgFile, '-DD', '-E', '-m', '1024', '-M', '16', '-Y', dir, ...defines], dir, SERVER_CORE, opts.log);
  await waitFor(p, () => procTree(p.child.pid!).length > 3, 'Kamailio');
  await new Promise((r) => setTimeout(r, 500));
  const stop = async () => {
    await stopProc(p);
    await rm(dir, { recursive: true, force: true });
  };
  return { name: 'Kamailio', port, ...(tlsPort ? { tlsPort } : {}), pid: p.child.pid!, stop, output: p.output };
}

/** The soft limit on open files this process (and so each server) has. */
export function fdLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

/** The pid and all its descendants (Kamailio forks its workers). */
export function procTree(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSyncSafe('/proc');
  } catch {
    return [root];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readStat(Number(e));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(e));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

function readdirSyncSafe(dir: string): string[] {
  return readdirSync(dir);
}

function readStat(pid: number): { ppid: number; comm: string; ticks: number; childTicks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the ")" of comm: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based over the whole line
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    return { ppid: Number(rest[1]), comm, ticks: Number(rest[11]) + Number(rest[12]), childTicks: Number(rest[13]) + Number(rest[14]) };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) used so far by the tree; USER_HZ is 100 on Linux. */
export function cpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of procTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / 100;
}

/**
 * CPU seconds the machine's PostgreSQL server has used so far (it is not the bench's child and not
 * pinned to a core): `server` is every postgres process, live ones' user + system time plus what
 * the postmaster collected from the backends that ended (other clients' work included, e.g.
 * another test run's); `database` only the live backends connected to the named database (their
 * command line names it), i.e. Parley's own connections. Compare two readings; undefined when no
 * postgres process is visible.
 */
export function postgresCpu(database: string): { server: number; database: number } | undefined {
  let server = 0;
  let own = 0;
  let seen = false;
  for (const e of readdirSyncSafe('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readStat(Number(e));
    if (stat?.comm !== 'postgres') continue;
    seen = true;
    server += stat.ticks;
    // the postmaster: its parent is not a postgres process; its children's times arrive as they end
    if (readStat(stat.ppid)?.comm !== 'postgres') server += stat.childTicks;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.split(' ').includes(database)) own += stat.ticks;
  }
  return seen ? { server: server / 100, database: own / 100 } : undefined;
}

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function pssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Memory of the tree now, in KiB. One process (Parley): its peak RSS (VmHWM). Several
 * (Kamailio, whose workers share memory): the sum of PSS, so shared pages count once; sampled,
 * the caller keeps the maximum.
 */
export function memoryKb(root: number): number {
  const pids = procTree(root);
  if (pids.length === 1) return statusKb(root, 'VmHWM');
  return pids.reduce((s, p) => s + pssKb(p), 0);
}

export function rssKb(pid: number): number {
  return statusKb(pid, 'VmRSS');
}


