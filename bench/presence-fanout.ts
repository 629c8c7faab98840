// Presence fan-out (issue 6, "Performance"; issue 20's target: one PUBLISH to 10,000 watchers,
// the last NOTIFY within 200 ms): one user with N watchers (1,000 by default) changes state; how
// many NOTIFYs per second does Parley send, and how long until the last watcher has its NOTIFY?
//
//   node bench/presence-fanout.ts [--watchers 1000] [--rounds 5] [--watcher-procs 1] [--json]
//
// Parley runs as bench/servers.ts starts it (its own process pinned to core 0, `--log-level warn`,
// MD5 digest, users seeded with one scrypt hash). This process is pinned to core 1; the boss is an
// SDK client (src/client SipClient over TCP) registered there. The N watchers run in forked
// processes on the same core (bench/fanout-watchers.ts), each on its own TCP connection as real
// clients are, each with one presence subscription to the boss, and receive as cheaply as a sipp
// UAS does: Content-Length framing, a byte search for the round's note, a 200 copied from the
// NOTIFY's lines — so that the figure is the server's, not the SDK's parsing. The boss then
// PUBLISHes a new state per round — Busy, Away, Do Not Disturb, Be Right Back, Available, each
// with a note naming the round — and the round ends when every watcher has received the NOTIFY
// showing it. One warm-up round is not counted.
//
// Per round: lastNotifyMs = from sending the PUBLISH to the last watcher's NOTIFY (read from its
// socket); notifiesPerSecond = N / lastNotifyMs. The result gives the median round, and the best
// and the worst, and the CPU per NOTIFY of the server and of the watchers over the rounds (/proc):
// on a busy machine the times mean little, the CPU per NOTIFY still does.

import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SipClient } from '../src/client/index.ts';
import { monotonicMs, type WatcherCommand, type WatcherReport, type WatcherSetOptions } from './fanout-watchers.ts';
import { cpuProfileDir, LOAD_CORE, startParley } from './servers.ts';

export interface PresenceFanoutOptions {
  /** default 1000 */
  watchers?: number;
  /** measured rounds after one warm-up; default 5 */
  rounds?: number;
  /** progress lines (default: none) */
  log?: (line: string) => void;
  /** give up on a round after this long; default 60 s */
  roundTimeoutMs?: number;
  /** processes the watchers are spread over, all on the load core; default 1 (a second one on the same core cost more CPU per NOTIFY, not less) */
  watcherProcesses?: number;
}

export interface FanoutRound {
  state: string;
  /** PUBLISH sent → its 200 */
  publishMs: number;
  /** PUBLISH sent → the first watcher's NOTIFY */
  firstNotifyMs: number;
  /** PUBLISH sent → half of the watchers have theirs */
  medianNotifyMs: number;
  /** PUBLISH sent → the last watcher's NOTIFY */
  lastNotifyMs: number;
  notifiesPerSecond: number;
}

export interface PresenceFanoutResult {
  watchers: number;
  rounds: number;
  /** of the median round (by lastNotifyMs) */
  notifiesPerSecond: number;
  lastNotifyMs: number;
  firstNotifyMs: number;
  medianNotifyMs: number;
  best: FanoutRound;
  worst: FanoutRound;
  perRound: FanoutRound[];
  /** connecting and subscribing every watcher (each gets its first NOTIFY) */
  setupMs: number;
  /** CPU seconds of the server process during the measured rounds, from /proc */
  serverCpuSeconds: number | null;
  /** CPU seconds of the watcher processes during the measured rounds, from /proc */
  loadCpuSeconds: number;
  /** serverCpuSeconds per NOTIFY sent (its 200 included), microseconds */
  serverCpuPerNotifyUs: number | null;
  /**
   * the same split into user and system (kernel) time: the system part is mostly the write of
   * each NOTIFY and the read of its 200 on loopback TCP, which no change of the server's code
   * takes away (the floor of a node process doing only that is about 10 µs here)
   */
  serverCpuSplitUs: { user: number; system: number } | null;
  /** loadCpuSeconds per NOTIFY received and answered, microseconds */
  loadCpuPerNotifyUs: number;
  /** the same split into user and system time */
  loadCpuSplitUs: { user: number; system: number };
  /** processes the watchers were spread over (all on the load core) */
  watcherProcesses: number;
  /** resident memory of the server with every subscription, MiB */
  serverRssMiB: number | null;
}

const DOMAIN = 'bench.parley';
const PASSWORD = 'bench-pw';
const BOSS = 'boss';
const PIDF = 'application/pidf+xml';
const STATES: ReadonlyArray<{ name: string; activities: string }> = [
  { name: 'Busy', activities: '<rpid:busy/>' },
  { name: 'Away', activities: '<rpid:away/>' },
  { name: 'Do Not Disturb', activities: '<rpid:busy/><rpid:other>do-not-disturb</rpid:other>' },
  { name: 'Be Right Back', activities: '<rpid:away/><rpid:other>be-right-back</rpid:other>' },
  { name: 'Available', activities: '' },
];
/** subscriptions set up at once */
const SETUP_CONCURRENCY = 50;
const DEFAULT_WATCHER_PROCESSES = 1;

function pidf(note: string, activities: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${BOSS}@${DOMAIN}">
  <tuple id="desk"><status><basic>open</basic></status></tuple>
  <dm:person id="p">${activities === '' ? '' : `<rpid:activities>${activities}</rpid:activities>`}<dm:note>${note}</dm:note></dm:person>
</presence>`;
}

/** Pins this process (the load) to the load core, as the other benchmarks do; silently not when taskset is missing. */
function pinSelf(): void {
  try {
    execFileSync('taskset', ['-pc', LOAD_CORE, String(process.pid)], { stdio: 'ignore' });
  } catch {
    // not pinned: the numbers are then noisier, not wrong
  }
}

/** utime and stime of a process, seconds (/proc/PID/stat fields 14 and 15). */
function cpuTimes(pid: number): { user: number; system: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return null;
  }
}

/** utime + stime of a process, seconds. */
function cpuSeconds(pid: number): number | null {
  const times = cpuTimes(pid);
  return times === null ? null : times.user + times.system;
}

function rssMiB(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? null : Math.round(Number(kb) / 102.4) / 10;
  } catch {
    return null;
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** One forked watcher process (bench/fanout-watchers.ts) and its next reports. */
class WatcherProcess {
  readonly child: ChildProcess;
  #waiting: Array<{ type: WatcherReport['type']; resolve: (r: WatcherReport) => void; reject: (e: Error) => void }> = [];

  constructor(label: string) {
    // BENCH_CPU_PROF=DIR profiles the watchers too (DIR/fanout-watchers-<label>-<time>.cpuprofile)
    const profDir = cpuProfileDir();
    const execArgv = [...process.execArgv, ...(profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', `fanout-watchers-${label}-${Date.now()}.cpuprofile`])];
    this.child = fork(fileURLToPath(new URL('./fanout-watchers.ts', import.meta.url)), [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (report: WatcherReport) => {
      const w = this.#waiting.shift();
      if (w === undefined) return;
      if (report.type === 'error') w.reject(new Error(`watcher process: ${report.message}`));
      else if (report.type !== w.type) w.reject(new Error(`watcher process said ${report.type}, expected ${w.type}`));
      else w.resolve(report);
    });
    this.child.on('exit', (code) => {
      for (const w of this.#waiting.splice(0)) w.reject(new Error(`watcher process ended (${code})`));
    });
  }

  /** Sets up the watchers; resolves once every one is subscribed. */
  open(options: WatcherSetOptions): Promise<WatcherReport> {
    const opened = this.#next('opened');
    this.child.send({ type: 'open', options } satisfies WatcherCommand);
    return opened;
  }

  /** Starts a round: `armed` once the watchers know its note, `done` with their arrival times. */
  round(note: string, timeoutMs: number): { armed: Promise<WatcherReport>; done: Promise<number[]> } {
    const armed = this.#next('armed');
    const done = this.#next('round').then((report) => (report.type === 'round' ? report.arrivals : []));
    done.catch(() => {}); // awaited after the PUBLISH is sent; a failure before that is not unhandled
    this.child.send({ type: 'round', note, timeoutMs } satisfies WatcherCommand);
    return { armed, done };
  }

  #next(type: WatcherReport['type']): Promise<WatcherReport> {
    return new Promise((resolve, reject) => this.#waiting.push({ type, resolve, reject }));
  }

  close(): void {
    if (this.child.connected) this.child.send({ type: 'close' } satisfies WatcherCommand);
    // time to write a CPU profile; it exits by itself once its sockets are closed
    setTimeout(() => this.child.kill(), 5000).unref();
  }
}

export async function runPresenceFanout(opts: PresenceFanoutOptions = {}): Promise<PresenceFanoutResult> {
  const n = opts.watchers ?? 1000;
  const rounds = opts.rounds ?? 5;
  const procs = Math.max(1, Math.min(opts.watcherProcesses ?? DEFAULT_WATCHER_PROCESSES, n));
  const log = opts.log ?? (() => {});
  const roundTimeoutMs = opts.roundTimeoutMs ?? 60_000;
  pinSelf();
  const watcherNames = Array.from({ length: n }, (_, i) => `w${String(i + 1).padStart(5, '0')}`);
  log(`starting Parley with ${n + 1} users`);
  const server = await startParley(DOMAIN, [BOSS, ...watcherNames], PASSWORD);
  const boss = new SipClient({ server: `tcp://127.0.0.1:${server.port}`, aor: `sip:${BOSS}@${DOMAIN}`, password: PASSWORD, requestTimeoutMs: 32_000, keepAliveIntervalMs: 0 });
  // the watcher processes inherit this process's core (fork keeps the CPU affinity)
  const watchers = Array.from({ length: procs }, (_, p) => new WatcherProcess(String(p + 1)));
  try {
    await boss.connect();
    await boss.register({ expires: 3600 });

    const setupStart = performance.now();
    const share = Math.ceil(n / procs);
    await Promise.all(watchers.map((w, p) => {
      const first = p * share;
      const options: WatcherSetOptions = { host: '127.0.0.1', port: server.port, domain: DOMAIN, password: PASSWORD, presentity: BOSS, users: watcherNames.slice(first, first + share), first, parallel: Math.ceil(SETUP_CONCURRENCY / procs) };
      return w.open(options);
    }));
    const setupMs = performance.now() - setupStart;
    log(`${n} watchers subscribed in ${Math.round(setupMs)} ms (${procs} watcher process${procs === 1 ? '' : 'es'})`);
    const serverRssMiB = rssMiB(server.pid);

    const watcherTimes = () => watchers.reduce((sum, w) => {
      const times = cpuTimes(w.child.pid ?? 0);
      return { user: sum.user + (times?.user ?? 0), system: sum.system + (times?.system ?? 0) };
    }, { user: 0, system: 0 });
    const watcherCpu = () => {
      const times = watcherTimes();
      return times.user + times.system;
    };
    const perRound: FanoutRound[] = [];
    let cpuBefore: number | null = null;
    let timesBefore: { user: number; system: number } | null = null;
    let loadBefore = 0;
    let loadTimesBefore = { user: 0, system: 0 };
    let etag: string | undefined;
    for (let r = 0; r <= rounds; r++) {
      if (r === 1) {
        cpuBefore = cpuSeconds(server.pid);
        timesBefore = cpuTimes(server.pid);
        loadBefore = watcherCpu();
        loadTimesBefore = watcherTimes();
      }
      const state = STATES[r % STATES.length]!;
      const note = `round ${r} ${state.name}`;
      const asked = watchers.map((w) => w.round(`<note>${note}</note>`, roundTimeoutMs));
      await Promise.all(asked.map((a) => a.armed));
      const sent = monotonicMs();
      // one publication, modified each round (RFC 3903 §4.4: SIP-If-Match with the last entity-tag)
      const headers: Record<string, string> = { Event: 'presence', Expires: '3600', ...(etag === undefined ? {} : { 'SIP-If-Match': etag }) };
      const published = boss.request('PUBLISH', `sip:${BOSS}@${DOMAIN}`, { headers, body: pidf(note, state.activities), contentType: PIDF })
        .then((res) => {
          if (res.status !== 200) throw new Error(`PUBLISH answered ${res.status} ${res.reason}`);
          etag = res.headers.get('sip-etag');
          return monotonicMs() - sent;
        });
      const [publishMs, reports] = await Promise.all([published, Promise.all(asked.map((a) => a.done))]);
      const offsets = reports.flat().map((t) => t - sent).sort((a, b) => a - b);
      const lastNotifyMs = offsets[offsets.length - 1] ?? 0;
      const round: FanoutRound = {
        state: state.name,
        publishMs: round1(publishMs),
        firstNotifyMs: round1(offsets[0] ?? 0),
        medianNotifyMs: round1(median(offsets)),
        lastNotifyMs: round1(lastNotifyMs),
        notifiesPerSecond: Math.round(n / (lastNotifyMs / 1000)),
      };
      log(`${r === 0 ? 'warm-up' : `round ${r}`}: ${state.name}: last NOTIFY after ${round.lastNotifyMs} ms (first ${round.firstNotifyMs}, median ${round.medianNotifyMs}), ${round.notifiesPerSecond} NOTIFY/s`);
      if (r > 0) perRound.push(round);
      // let the 200s to the last NOTIFYs reach the server before the next change
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const cpuAfter = cpuSeconds(server.pid);
    const timesAfter = cpuTimes(server.pid);
    const loadCpu = watcherCpu() - loadBefore;
    const loadTimes = watcherTimes();
    const byLast = [...perRound].sort((a, b) => a.lastNotifyMs - b.lastNotifyMs);
    const mid = byLast[Math.floor((byLast.length - 1) / 2)]!;
    const perNotifyUs = (seconds: number) => Math.round((seconds / (n * rounds)) * 1e7) / 10;
    return {
      watchers: n,
      rounds,
      notifiesPerSecond: mid.notifiesPerSecond,
      lastNotifyMs: mid.lastNotifyMs,
      firstNotifyMs: mid.firstNotifyMs,
      medianNotifyMs: mid.medianNotifyMs,
      best: byLast[0]!,
      worst: byLast[byLast.length - 1]!,
      perRound,
      setupMs: Math.round(setupMs),
      serverCpuSeconds: cpuBefore === null || cpuAfter === null ? null : round1(cpuAfter - cpuBefore),
      loadCpuSeconds: round1(loadCpu),
      serverCpuPerNotifyUs: cpuBefore === null || cpuAfter === null ? null : perNotifyUs(cpuAfter - cpuBefore),
      serverCpuSplitUs: timesBefore === null || timesAfter === null ? null : { user: perNotifyUs(timesAfter.user - timesBefore.user), system: perNotifyUs(timesAfter.system - timesBefore.system) },
      loadCpuPerNotifyUs: perNotifyUs(loadCpu),
      loadCpuSplitUs: { user: perNotifyUs(loadTimes.user - loadTimesBefore.user), system: perNotifyUs(loadTimes.system - loadTimesBefore.system) },
      watcherProcesses: procs,
      serverRssMiB,
    };
  } finally {
    for (const w of watchers) w.close();
    await boss.close().catch(() => {});
    await server.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { watchers: { type: 'string' }, rounds: { type: 'string' }, 'watcher-procs': { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  const result = await runPresenceFanout({
    watchers: values.watchers === undefined ? undefined : Number(values.watchers),
    rounds: values.rounds === undefined ? undefined : Number(values.rounds),
    watcherProcesses: values['watcher-procs'] === undefined ? undefined : Number(values['watcher-procs']),
    log: values.json ? undefined : (line) => process.stderr.write(`${line}\n`),
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `Presence fan-out: ${result.watchers} watchers, median of ${result.rounds} rounds\n` +
      `  NOTIFYs per second:       ${result.notifiesPerSecond}\n` +
      `  last watcher's NOTIFY:    ${result.lastNotifyMs} ms after the PUBLISH (best ${result.best.lastNotifyMs}, worst ${result.worst.lastNotifyMs})\n` +
      `  first / median watcher:   ${result.firstNotifyMs} / ${result.medianNotifyMs} ms\n` +
      `  setup (subscribe all):    ${result.setupMs} ms; server RSS ${result.serverRssMiB ?? '?'} MiB, CPU ${result.serverCpuSeconds ?? '?'} s over the rounds\n` +
      `  CPU per NOTIFY:           server ${result.serverCpuPerNotifyUs ?? '?'} us${result.serverCpuSplitUs === null ? '' : ` (user ${result.serverCpuSplitUs.user}, system ${result.serverCpuSplitUs.system})`}, watchers ${result.loadCpuPerNotifyUs} us (user ${result.loadCpuSplitUs.user}, system ${result.loadCpuSplitUs.system}; ${result.watcherProcesses} process${result.watcherProcesses === 1 ? '' : 'es'}, ${result.loadCpuSeconds} s)\n`,
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`presence-fanout: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
