// `npm run bench` / `npm run bench -- --quick` / `-- --smoke`: Parley and Kamailio side by side on this machine
// (issue 7). Each server runs alone, pinned to core 0; sipp runs on core 1. For each scenario
// the offered rate steps up until a step fails the criteria; results go to bench/RESULTS.md and
// bench/throughput.svg. Needs scripts/install-bench-deps.sh.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { measureDrain } from './drain.ts';
import type { DrainReport } from './drain.ts';
import { readHistoryStore } from './history-store.ts';
import { historyComparison, runsOf, writeReport } from './report.ts';
import type { BenchReport, ClusterReport, HeldStep, ScenarioReport, ServerRun, StepRecord, WsReport } from './report.ts';
import { BENCH_DIR, LOAD_CORE, SERVER_CORE, cpuProfileDir, cpuSeconds, fdLimit, memoryKb, postgresCpu, rssKb, startKamailio, startParley } from './servers.ts';
import type { BenchServer, CommitTotals, KamailioOptions, ParleyOptions, StepTarget } from './servers.ts';
import { closeTestPostgres } from '../test/harness/engines.ts';
import { runStep, startReceiver } from './sipp-step.ts';
import type { StepOptions } from './sipp-step.ts';
import { makeBenchCertificate, startTlsRelay } from './tls.ts';
import type { BenchCertificate } from './tls.ts';
import { openIdleRegistrations, type WsLoadResult } from './ws-load.ts';
import { openIdleTlsRegistrations } from './tls-load.ts';
import { runPresenceFanout } from './presence-fanout.ts';
import { benchClusterWebSocket, benchSplitSip, startBenchCluster } from './cluster.ts';

// --smoke (the test command's): every scenario, one short step at a low rate, no re-runs: proves
// the harness and both servers work in well under a minute, and measures nothing to quote.
// --quick: few, short steps up to saturation, for a first look. Neither writes bench/RESULTS.md unless asked (--out).
const smoke = process.argv.includes('--smoke');
const quick = smoke || process.argv.includes('--quick');
/** The value after `--name` on the command line, if given. */
function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
}
/** `--name 400,800`: offered rates, whole calls/s, comma-separated; `steps` when not given. */
function ratesOption(name: string, steps: number[]): number[] {
  const given = option(name);
  if (given === undefined) return steps;
  const rates = given.split(',').map(Number);
  if (rates.some((r) => !Number.isInteger(r) || r <= 0)) throw new Error(`--${name} ${given}: expected positive whole calls/s, comma-separated`);
  return rates;
}
// `--out DIR` writes the report elsewhere (the test command's smoke run keeps bench/RESULTS.md as committed).
const OUT_DIR = option('out') !== undefined ? path.resolve(option('out') as string) : BENCH_DIR;
const DOMAIN = 'bench.test';
const PASSWORD = 'bench-secret';
const MAX_FAILURE_RATIO = 0.01;
const MAX_P99_MS = 50;
/** a step passes only if the server carried the offered rate: calls that all succeed, late, do not count */
const MIN_CARRIED = 0.95;
/** a failed step is run again (once per scenario) when other work took more than this share of the server's core */
const MAX_OTHER_CPU = 0.1;
// Issue 20's held check (full runs only): 80 % of each scenario's max passing rate for 60 s, p99 ≤ 20 ms
const HOLD_SHARE = 0.8;
const HOLD_SEC = 60;
// `--rates 6400,8000` and `--step-sec 10` replace the steps of scenarios 1-2, `--servers parley` (or
// kamailio) runs one server only (scenarios 1-3): for experiments, not for numbers to quote
const RATES = ratesOption('rates', smoke ? [500] : quick ? [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000] : [200, 400, 800, 1600, 2400, 3200, 4000, 4800, 5600, 6400, 7200, 8000, 9600, 11200, 12800, 16000]);
const SERVERS = (option('servers') ?? 'parley,kamailio').split(',');
if (SERVERS.some((name) => name !== 'parley' && name !== 'kamailio')) throw new Error(`--servers ${option('servers')}: expected parley, kamailio or both, comma-separated`);
// Scenario 2 runs twice on Parley (issue 14): Conversation History on for every user
// (EnableIMAutoArchiving True in the Global CsClientPolicy: the default, set anyway so that the run
// does not rest on a default) and off for every user (False), each set with `parley admin` before
// the server starts. The full run steps both through the same rates; the quick pass (the test
// command's smoke run) gives the "off" run one step, 1,000/s, which the "on" run offers too and
// this machine passes even while other work loads it, so the two compare at the same load and the
// pass grows by seconds only. `--rates` replaces both.
const HISTORY_OFF_RATES: readonly number[] = option('rates') === undefined && quick && !smoke ? [1000] : RATES;
const historyPolicy = (on: boolean): string[] => ['Set-CsClientPolicy', '-Identity', 'Global', '-EnableIMAutoArchiving', on ? '$True' : '$False'];
// scenario 3 has finer steps around its target (5,000 accepted/s), up to the same top rate; it
// starts low because Kamailio's msilo commits (fsyncs) each message on its own. `--offline-rates` replaces them
const OFFLINE_RATES = ratesOption('offline-rates', smoke ? [250] : quick ? [100, 250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000] : [100, 200, 400, 800, 1600, 2400, 3200, 4000, 5000, 6400, 8000, 12800]);
const STEP_SEC = Number(option('step-sec') ?? (smoke ? 1 : quick ? 3 : 10));
if (!(STEP_SEC > 0)) throw new Error(`--step-sec ${option('step-sec')}: expected a positive number of seconds`);
// 18,000: the most this machine's open-files limit (20,000 per process) allows
const WS_COUNTS = smoke ? [300] : quick ? [4_000] : [10_000, 18_000, 50_000];
// how long RSS settles after the registrations (half that after the start); the smoke run's RSS is not quoted
const WS_SETTLE_MS = smoke ? 500 : 2_000;
// `--idle-counts 10000,18000`: the connection counts of the ws and tls-idle scenarios instead
const IDLE_COUNTS = option('idle-counts')?.split(',').map(Number);
const SIPP_USERS = Array.from({ length: 200 }, (_, i) => `user${String(i).padStart(3, '0')}`);
const RECEIVER = 'bob';
// Scenario 3: offline recipients (users that never register). The injection file pairs every
// sender with every recipient (200 x 100 = 20,000 pairs) and each step starts where the last one
// stopped, so successive messages open separate spool entries until the pairs run out; later
// messages of a pair join its entry (same sender, same recipient, before pickup).
const OFFLINE_USERS = Array.from({ length: 100 }, (_, i) => `off${String(i).padStart(3, '0')}`);
// long enough that no entry is picked up while the steps run: acceptance is measured alone, the drain after it
const OFFLINE_PICKUP_DELAY = '01:00:00';
// 200 senders at 5,000/s leave 25 offline messages a second each, thousands undelivered (nothing is
// picked up during the steps): far past the per-user spool quotas a real user gets, so they are
// lifted; the checks still run on every message. And sipp puts one fixed digest uri in every
// request (-auth_uri) while this scenario's Request-URIs vary with the recipient, so Parley is told
// not to compare the two (sip.checkDigestUri), as Kamailio does not; replays stay refused by nonce
// counts either way.
const OFFLINE_CONFIG = {
  sip: { checkDigestUri: false },
  offlineIm: {
    senderQuota: { maxBytes: 'unlimited', maxMessages: 'unlimited', perMinute: 'unlimited' },
    recipientQuota: { maxBytes: 'unlimited', maxMessages: 'unlimited' },
  },
};
// Kamailio in scenario 3: one UDP worker and the msilo file in WAL mode (why: the Method text in main()).
const KAMAILIO_OFFLINE: KamailioOptions = { children: 1, siloJournal: 'wal' };
// `--database postgres`: Parley (scenarios 1-3 and ws) keeps its state in a fresh database of the
// machine's PostgreSQL server instead of SQLite in its data directory (bench/servers.ts); the
// presence fan-out starts its own server, on SQLite either way.
const DATABASE = ((name: string): 'sqlite' | 'postgres' => {
  if (name !== 'sqlite' && name !== 'postgres') throw new Error(`--database ${name}: expected sqlite (the default) or postgres`);
  return name;
})(option('database') ?? 'sqlite');
const ENGINE: ParleyOptions = { database: DATABASE };
const ON_POSTGRES = DATABASE === 'postgres';
// `--scenarios 1,2,3,tcp,tls,tcp-long,tls-long,ws,tls-idle,fanout,cluster,cluster-ws` runs only those (tcp: scenarios 4-5, tls: 6-7,
// both a connection per call; tcp-long: 8-9, tls-long: 10-11, long-lived connections; default: all); the others are reported as not run
const ONLY = new Set((option('scenarios') ?? '1,2,3,tcp,tls,tcp-long,tls-long,ws,tls-idle,fanout,cluster,cluster-ws').split(',').map((x) => x.trim()));
// Issue 16 (bench/cluster.ts). `cluster`: REGISTER and MESSAGE relayed through a 2-node cluster
// against one node, both on PostgreSQL, with the same two sipp senders; `cluster-ws`: idle
// WebSocket registrations spread over 3 nodes. `--cluster-cores 0,1` pins node i to the i-th core
// of the list (default: every node on the servers' core, beside nothing but each other).
const CLUSTER_CORES = (option('cluster-cores') ?? SERVER_CORE).split(',').map((x) => x.trim());
if (CLUSTER_CORES.some((c) => !/^\d+$/.test(c) || Number(c) >= os.cpus().length)) throw new Error(`--cluster-cores ${option('cluster-cores')}: expected core numbers below ${os.cpus().length}, comma-separated`);
const CLUSTER_RATES = option('rates') !== undefined ? RATES : smoke ? [200] : quick ? [400, 800, 1600, 2400, 3200] : [200, 400, 800, 1200, 1600, 2000, 2400, 3200, 4000, 4800];
// 50,000 at once: about 16,700 per node, under the 20,000 open files a process may have here
const CLUSTER_WS_COUNTS = smoke ? [300] : quick ? [6_000] : [50_000];
const CLUSTER_WS_NODES = 3;
/** the two receivers of the cluster's MESSAGE steps, one registered on each node */
const CLUSTER_RECEIVERS = ['bob', 'carol'] as const;
const SCENARIO = (f: string) => path.join(BENCH_DIR, 'sipp', f);
// each line says when, from the run's start: where the time goes (the smoke run's minute) is read off the log
const runStart = performance.now();
const log = (msg: string) => process.stderr.write(`bench: [${((performance.now() - runStart) / 1000).toFixed(1)} s] ${msg}\n`);

function requireTools(): void {
  for (const tool of ['sipp', 'kamailio', 'taskset']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is missing: run scripts/install-bench-deps.sh`);
    }
  }
}

/** Samples the server's memory (the sum over a cluster's nodes) every 200 ms until stopped; returns the maximum seen. */
function sampleMemory(pids: readonly number[]): { peak(): number; stop(): number } {
  const now = () => pids.reduce((sum, pid) => sum + memoryKb(pid), 0);
  let peak = now();
  const t = setInterval(() => (peak = Math.max(peak, now())), 200);
  return {
    peak: () => (peak = Math.max(peak, now())),
    stop() {
      clearInterval(t);
      return Math.max(peak, now());
    },
  };
}

/** UDP datagrams the kernel dropped for full socket buffers, machine-wide (/proc/net/snmp). */
function udpRcvbufErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
}

/** Busy CPU seconds (everything but idle and iowait) of one core ('cpu0') or all ('cpu'), from /proc/stat. */
function busyCpuSeconds(line: string): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`${line} `))?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  // user nice system idle iowait irq softirq steal
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / 100;
}

/** CPU seconds of this process and of its children that ended (servers, sipp), from /proc/self/stat. */
function ownCpuSeconds(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields 14-17 (utime stime cutime cstime), 1-based over the whole line
  return (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / 100;
}

/** one step at `rate`; `calls` replaces callsFor(rate) (the held step's 60 s) */
type StepFn = (rate: number, calls?: number) => ReturnType<typeof runStep>;

/** What happened between two readings of the group-commit totals. */
function commitDelta(a: CommitTotals | undefined, b: CommitTotals | undefined): CommitTotals | undefined {
  if (!a || !b) return undefined;
  const sizes: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.sizes)) if (v - (a.sizes[k] ?? 0) > 0) sizes[k] = v - (a.sizes[k] ?? 0);
  // the maxima are over the whole run so far, not the step
  return { batches: b.batches - a.batches, items: b.items - a.items, maxBatch: b.maxBatch, commitMs: b.commitMs - a.commitMs, maxCommitMs: b.maxCommitMs, sizes };
}

const targetOf = (server: BenchServer): StepTarget => ({ name: server.name, pids: [server.pid], postgres: server.postgres, commitStats: server.commitStats });

/** One step at `rate` against `server`, with what the server and its core did meanwhile. */
async function measureStep(server: StepTarget, name: string, rate: number, run: () => ReturnType<typeof runStep>, peakMemoryKb: () => number): Promise<StepRecord> {
  const serverCpu = () => server.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const commit0 = await server.commitStats?.();
  const cpu0 = serverCpu();
  const redis0 = server.redisPid === undefined ? undefined : cpuSeconds(server.redisPid);
  const pg0 = server.postgres ? postgresCpu(server.postgres.name) : undefined;
  const core0 = busyCpuSeconds(`cpu${SERVER_CORE}`);
  const drops0 = udpRcvbufErrors();
  const t0 = performance.now();
  const r = await run();
  const wall = (performance.now() - t0) / 1000;
  const cpu = (serverCpu() - cpu0) / wall;
  const redisCpu = redis0 === undefined ? undefined : (cpuSeconds(server.redisPid!) - redis0) / wall;
  const pg1 = server.postgres ? postgresCpu(server.postgres.name) : undefined;
  const pgCpu = pg0 && pg1 ? { server: (pg1.server - pg0.server) / wall, database: (pg1.database - pg0.database) / wall } : undefined;
  // the server's core did other work too: kernel (network softirqs) and any process not pinned away
  const otherCpu = Math.max(0, (busyCpuSeconds(`cpu${SERVER_CORE}`) - core0) / wall - cpu);
  const passed = r.failureRatio < MAX_FAILURE_RATIO && r.p99Ms < MAX_P99_MS && r.achieved >= MIN_CARRIED * rate;
  const udpDrops = udpRcvbufErrors() - drops0;
  const commit = commitDelta(commit0, await server.commitStats?.());
  const batches = commit && commit.batches > 0 ? `, ${commit.batches} commits of ${(commit.items / commit.batches).toFixed(1)} on average` : '';
  const pgText = pgCpu ? ` + PostgreSQL ${(pgCpu.server * 100).toFixed(0)}% (its backends for Parley ${(pgCpu.database * 100).toFixed(0)}%)` : '';
  const redisText = redisCpu === undefined ? '' : ` + Redis ${(redisCpu * 100).toFixed(0)}%`;
  log(`${server.name} ${name} offered ${rate}/s: ${r.successful}/${r.calls} ok, ${r.achieved.toFixed(0)} ok/s, p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms, cpu ${(cpu * 100).toFixed(0)}%${r.successful > 0 ? ` (${((cpu * wall * 1e6) / r.successful).toFixed(0)} µs per ok call)` : ''}${pgText}${redisText} (other on core ${SERVER_CORE}: ${(otherCpu * 100).toFixed(0)}%), ${udpDrops} UDP drops${batches} ${passed ? 'pass' : 'FAIL'}`);
  if (r.errors) log(`sipp errors (start):\n${r.errors}`);
  return { ...r, cpu, otherCpu, passed, udpDrops, peakMemoryKb: peakMemoryKb(), ...(commit ? { commit } : {}), ...(pgCpu ? { postgresCpu: pgCpu } : {}), ...(redisCpu === undefined ? {} : { redisCpu }) };
}

/**
 * Steps the rate up (see the top) and, with `hold` in a full run, then holds 80 % of the highest
 * rate that passed for HOLD_SEC (issue 20: p99 ≤ HOLD_TARGET_P99_MS there, in every run).
 */
async function stepUp(server: StepTarget, name: string, run: StepFn, rates: readonly number[] = RATES, hold = false): Promise<ServerRun> {
  const mem = sampleMemory(server.pids);
  const steps: StepRecord[] = [];
  let failedBefore = false;
  let retried = false;
  for (let i = 0; i < rates.length; i++) {
    const rate = rates[i]!;
    const step = await measureStep(server, name, rate, () => run(rate), mem.peak);
    steps.push(step);
    const { passed, otherCpu = 0, achieved } = step;
    // A step that failed while something else kept the server's core busy says little about the
    // server: run it again, once per scenario (both rows are reported).
    if (!passed && otherCpu > MAX_OTHER_CPU && !retried && !smoke) {
      retried = true;
      log(`other work took ${(otherCpu * 100).toFixed(0)}% of core ${SERVER_CORE} during that step: running it again`);
      i--;
      await new Promise((res) => setTimeout(res, 2_000));
      continue;
    }
    // A failed step that still carried the offered rate is likely a latency hiccup (GC, a noisy
    // neighbour): one more step decides. Two failures in a row, or a saturated step, end the run.
    const saturated = achieved < 0.9 * rate;
    if (!passed && (saturated || failedBefore)) break;
    failedBefore = !passed;
    // let retransmissions and transactions of the step drain
    await new Promise((res) => setTimeout(res, smoke ? 200 : 500));
  }
  const top = steps.filter((st) => st.passed).at(-1);
  let held: HeldStep | undefined;
  if (hold && !quick && top) {
    const rate = Math.round(HOLD_SHARE * top.rate);
    await new Promise((res) => setTimeout(res, 2_000));
    const step = await measureStep(server, `${name} held ${HOLD_SEC} s at ${HOLD_SHARE * 100} % of ${top.rate}/s`, rate, () => run(rate, Math.round(rate * HOLD_SEC)), mem.peak);
    held = { ...step, ofRate: top.rate };
  }
  return { steps, peakMemoryKb: mem.stop(), ...(held ? { held } : {}) };
}

type Start = (users: readonly string[]) => Promise<BenchServer>;

/** The server's error lines, as one note (the first few), to explain failures. */
function errorNote(server: BenchServer, scenario: string): string[] {
  const errors = server.output().split('\n').filter((l) => /\b(ERROR|CRIT|"level":(50|60))\b/.test(l));
  return errors.slice(0, 1).map((l) => `${server.name} (${scenario}) logged ${errors.length} error lines, e.g.: ${l.trim().slice(0, 300)}`);
}

interface ServerResult {
  register?: ServerRun;
  message?: ServerRun;
  /** error lines the server logged (first few), to explain failures */
  errors: string[];
}

const callsFor = (rate: number) => Math.max(100, Math.round(rate * STEP_SEC));

/**
 * Scenarios 1 and/or 2 on one server. `label` names the run in the log and in the error notes;
 * `messageRates` replaces RATES for scenario 2 (the quick pass's history-off run).
 */
async function benchServer(start: Start, run: { register: boolean; message: boolean; label: string; messageRates?: readonly number[] }): Promise<ServerResult> {
  const t0 = performance.now();
  const server = await start([...SIPP_USERS, RECEIVER]);
  try {
    const target = `127.0.0.1:${server.port}`;
    const injection = SIPP_USERS.map((u) => [u, PASSWORD]);
    const register = run.register
      ? await stepUp(targetOf(server), 'REGISTER', (rate, calls) =>
          runStep({ scenario: SCENARIO('register.xml'), target, domain: DOMAIN, rate, calls: calls ?? callsFor(rate), injection }),
          RATES, true,
        )
      : undefined;
    if (!run.message) return { register, errors: errorNote(server, run.label) };
    const receiver = await startReceiver({
      scenario: SCENARIO('message-uas.xml'), ooc: SCENARIO('message-uas-ooc.xml'), target, domain: DOMAIN,
      user: RECEIVER, password: PASSWORD, holdMs: 3_600_000,
    });
    try {
      const message = await stepUp(
        targetOf(server),
        `MESSAGE (${run.label})`,
        (rate, calls) => runStep({ scenario: SCENARIO('message-uac.xml'), target, domain: DOMAIN, rate, calls: calls ?? callsFor(rate), injection, keys: { to: RECEIVER }, authUri: `${RECEIVER}@${DOMAIN}` }),
        run.messageRates ?? RATES,
        run.messageRates === undefined,
      );
      // Parley: what Conversation History kept (read while the server still runs)
      if (server.dataDir && !server.postgres) {
        // one commit window (≤ 10 ms) and a margin: the last messages' group commit lands first
        await new Promise((r) => setTimeout(r, 200));
        message.historyStore = readHistoryStore(server.dataDir);
        const h = message.historyStore;
        log(`${server.name} ${run.label}: history_conversations ${h.conversations ?? 'no table'}, history_messages ${h.messages ?? 'no table'}, database ${(h.databaseBytes / 2 ** 20).toFixed(1)} MiB`);
      }
      return { register, message, errors: errorNote(server, run.label) };
    } finally {
      await receiver.stop();
    }
  } finally {
    await server.stop();
    log(`${server.name} ${run.label}: ${((performance.now() - t0) / 1000).toFixed(1)} s from start to stop`);
  }
}

// Scenarios 4-11 (issue 20): REGISTER and MESSAGE with the senders over TCP and TLS, the same
// users, digest and step rules as over UDP, in two ways of connecting:
//  - a connection per call (scenarios 4-7, --scenarios tcp,tls): the UDP scenario files; sipp -t tn
//    opens one connection per call and closes it when the call ends (each call pays a TCP connect,
//    over TLS a handshake too): connection churn. -max_socket 1000 caps how many are open at once;
//    past the cap sipp shares sockets between calls, which fails (broken pipes) against both
//    servers: a step that gets there fails, as a server that keeps a thousand calls waiting would anyway;
//  - 1,000 long-lived connections (scenarios 8-11, --scenarios tcp-long,tls-long): the clients
//    people use, which connect once and then send over their connection (bench/sipp/*-loop.xml):
//    1,000 sipp calls at once (-l), each its own connection and user, each sending a request every
//    1000/rate·1,000 ms, for the whole step; the rate counts requests (challenge and authenticated
//    request, as a call of scenarios 1-7 does), so that it compares with the other scenarios.
// TLS: sipp here has none (bench/tls.ts), so stunnel on the load core turns each of sipp's TCP
// connections into a TLS one to the server. The MESSAGE receiver stays on UDP.
const STREAM_CONNECTIONS = 1_000;
/** the long-lived scenarios' connections: 1,000 (the smoke run's: 100) */
const LONG_CONNECTIONS = smoke ? 100 : STREAM_CONNECTIONS;
/**
 * sipp opens the long-lived connections at this rate before the first request is due: under what
 * stunnel's handshakes allow on the load core, and slow enough for Kamailio's tcp_main, which
 * hands each new connection to a reader process through a queue: at 1,000 a second on a busy
 * machine that queue overflowed ("send2child(): tcp child 1, socket 16: queue full", "send_fd
 * failed … errno=11" in its log) and those connections failed
 */
const LONG_OPEN_RATE = 500;
/** one user per long-lived connection (user000…user999: the first 200 are SIPP_USERS) */
const LONG_USERS = Array.from({ length: STREAM_CONNECTIONS }, (_, i) => `user${String(i).padStart(3, '0')}`);

/**
 * A connection per call leaves each closed one in TIME_WAIT on sipp's side for 60 s: at 1,600 calls/s
 * the namespace's default ephemeral ports (32768-60999) ran out within a step ("no port free" for
 * the next step's sipp, and calls that could not connect while the server sat idle). Inside the
 * bench's own network namespace (scripts/netns-run.sh sets PARLEY_NETNS_PRIVATE) the whole port range is opened and TIME_WAIT
 * ports may be reused for new outgoing connections (tcp_tw_reuse; TCP timestamps tell the old
 * connection's segments apart); the machine's own settings are never touched: outside a private
 * namespace nothing is changed.
 */
function openEphemeralPorts(): void {
  if (process.env.PARLEY_NETNS_PRIVATE !== '1') {
    log('stream scenarios: not in a private network namespace, so the ephemeral port range and tcp_tw_reuse are left as they are');
    return;
  }
  writeFileSync('/proc/sys/net/ipv4/ip_local_port_range', '1024 65535\n');
  writeFileSync('/proc/sys/net/ipv4/tcp_tw_reuse', '1\n');
  // sipp binds each call's socket before connecting, which tcp_tw_reuse does not help: past this
  // many TIME_WAIT sockets the kernel drops new ones at once (the namespace's own table), so ports
  // come free again; on loopback no stray segment of an old connection can arrive late
  writeFileSync('/proc/sys/net/ipv4/tcp_max_tw_buckets', '4096\n');
}
/** the smoke run's stream steps: 200 calls (0.4 s at 500/s), each its own connection (and TLS handshake) */
const streamCalls = (rate: number) => (smoke ? 200 : callsFor(rate));
type Transport = 'tcp' | 'tls';
type StreamScenario = 'register' | 'message';
/** how the senders connect: a connection per call (churn), or long-lived connections */
type Connecting = 'per-call' | 'long-lived';
interface StreamCase {
  transport: Transport;
  connecting: Connecting;
  scenario: StreamScenario;
}
type StreamRuns = Map<string, ServerRun>;
const caseKey = (c: StreamCase) => `${c.transport} ${c.connecting} ${c.scenario}`;
const TRANSPORT_NAME: Record<Transport, string> = { tcp: 'TCP', tls: 'TLS' };
/** the --scenarios name of a transport and way of connecting: tcp, tls, tcp-long, tls-long */
const streamOption = (t: Transport, connecting: Connecting) => (connecting === 'per-call' ? t : `${t}-long`);
const STREAM_CASES: readonly StreamCase[] = (['per-call', 'long-lived'] as const).flatMap((connecting) =>
  (['tcp', 'tls'] as const).flatMap((transport) => (['register', 'message'] as const).map((scenario) => ({ transport, connecting, scenario }))),
);
/** the row title of a stream scenario (4-7 a connection per call, 8-11 long-lived) */
function streamTitle(c: StreamCase): string {
  const n = (c.connecting === 'per-call' ? 4 : 8) + (c.transport === 'tls' ? 2 : 0) + (c.scenario === 'message' ? 1 : 0);
  const what = c.scenario === 'register' ? 'REGISTER + digest' : 'MESSAGE relayed';
  const how = c.connecting === 'per-call' ? 'a connection per call' : `${STREAM_CONNECTIONS.toLocaleString('en')} long-lived connections`;
  return `${n}. ${what} over ${TRANSPORT_NAME[c.transport]}, ${how}`;
}
/**
 * Which cases share a server: a fresh server for each (its own peak memory), except in the smoke
 * run, where one server of each kind takes them all (one start instead of eight).
 */
const STREAM_GROUPS = (cases: readonly StreamCase[]): StreamCase[][] => (smoke ? [[...cases]] : cases.map((c) => [c]));

/**
 * One step of a long-lived scenario: LONG_CONNECTIONS connections, each sending its share of
 * `calls` requests (at least one) at `rate` requests per second in all.
 */
function longLivedStep(scenario: string, target: string, rate: number, calls: number, extra: Pick<StepOptions, 'keys' | 'authUri'>): ReturnType<typeof runStep> {
  const injection = LONG_USERS.slice(0, LONG_CONNECTIONS).map((u) => [u, PASSWORD]);
  const times = smoke ? 2 : Math.max(1, Math.round(calls / LONG_CONNECTIONS));
  const loop = { times, periodMs: (LONG_CONNECTIONS * 1000) / rate, startInMs: (LONG_CONNECTIONS / LONG_OPEN_RATE) * 1000 + (smoke ? 100 : 500), openRate: LONG_OPEN_RATE };
  return runStep({ scenario, target, domain: DOMAIN, rate, calls: LONG_CONNECTIONS * times, injection, stream: { connections: LONG_CONNECTIONS }, loop, ...extra });
}

/** Scenarios 4-11 on one kind of server: each group of STREAM_GROUPS on a server of its own. */
async function benchStreams(kind: 'parley' | 'kamailio', cert: BenchCertificate, cases: readonly StreamCase[]): Promise<{ runs: StreamRuns; errors: string[] }> {
  const runs: StreamRuns = new Map();
  const errors: string[] = [];
  const users = [...LONG_USERS, RECEIVER];
  const injection = SIPP_USERS.map((u) => [u, PASSWORD]);
  for (const group of STREAM_GROUPS(cases)) {
    const tls = group.some((c) => c.transport === 'tls') ? { cert: cert.cert, key: cert.key } : undefined;
    const label = group.map((c) => `${streamOption(c.transport, c.connecting)} ${c.scenario}`).join(', ');
    const fileLabel = `stream-${group.map((c) => `${streamOption(c.transport, c.connecting)}-${c.scenario}`).join('-')}`;
    const t0 = performance.now();
    const server = kind === 'parley'
      ? await startParley(DOMAIN, users, PASSWORD, { ...ENGINE, label: fileLabel, ...(tls ? { tls } : {}) })
      // Kamailio's log (its stderr) stays in the out dir: a step that broke down can be explained
      : await startKamailio(DOMAIN, users, PASSWORD, { stream: tls ? { tls } : {}, log: path.join(OUT_DIR, `kamailio-${smoke ? 'smoke-' : ''}${fileLabel}.log`) });
    let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
    try {
      for (const c of group) {
        const relay = c.transport === 'tls' ? await startTlsRelay(`127.0.0.1:${server.tlsPort}`, cert.ca, DOMAIN) : undefined;
        try {
          const target = `127.0.0.1:${relay ? relay.port : server.port}`;
          const stream = { connections: STREAM_CONNECTIONS };
          const name = `${c.scenario === 'register' ? 'REGISTER' : 'MESSAGE'} over ${TRANSPORT_NAME[c.transport]}, ${c.connecting === 'per-call' ? 'a connection per call' : `${LONG_CONNECTIONS} long-lived connections`}`;
          const toBob = { keys: { to: RECEIVER }, authUri: `${RECEIVER}@${DOMAIN}` };
          if (c.scenario === 'message') receiver ??= await startReceiver({ scenario: SCENARIO('message-uas.xml'), ooc: SCENARIO('message-uas-ooc-loop.xml'), deadCallWaitMs: 0, target: `127.0.0.1:${server.port}`, domain: DOMAIN, user: RECEIVER, password: PASSWORD, holdMs: 3_600_000 });
          const step: StepFn = c.connecting === 'long-lived'
            ? (rate, calls) => longLivedStep(SCENARIO(c.scenario === 'register' ? 'register-loop.xml' : 'message-loop.xml'), target, rate, calls ?? callsFor(rate), c.scenario === 'register' ? {} : toBob)
            : c.scenario === 'register'
              ? (rate, calls) => runStep({ scenario: SCENARIO('register.xml'), target, domain: DOMAIN, rate, calls: calls ?? streamCalls(rate), injection, stream })
              : (rate, calls) => runStep({ scenario: SCENARIO('message-uac.xml'), target, domain: DOMAIN, rate, calls: calls ?? streamCalls(rate), injection, stream, ...toBob });
          runs.set(caseKey(c), await stepUp(targetOf(server), name, step, RATES, true));
        } finally {
          await relay?.stop();
        }
      }
      errors.push(...errorNote(server, label));
    } finally {
      await receiver?.stop();
      await server.stop();
      log(`${server.name} ${label}: ${((performance.now() - t0) / 1000).toFixed(1)} s from start to stop`);
    }
  }
  return { runs, errors };
}

interface OfflineResult {
  run: ServerRun;
  drain?: DrainReport;
  errors: string[];
}

/**
 * Scenario 3 on a fresh server (its own peak memory, an empty spool): MESSAGE with digest to users
 * who never registered, stepping the rate; then, for Parley, the spool drain.
 */
async function benchOffline(start: Start, drain: boolean): Promise<OfflineResult> {
  const server = await start([...SIPP_USERS, ...OFFLINE_USERS]);
  try {
    const target = `127.0.0.1:${server.port}`;
    const pairs: string[][] = [];
    for (let r = 0; r < OFFLINE_USERS.length; r++) {
      SIPP_USERS.forEach((u, i) => pairs.push([u, PASSWORD, OFFLINE_USERS[(i + r) % OFFLINE_USERS.length]!]));
    }
    let offset = 0;
    const run = await stepUp(
      targetOf(server),
      'offline MESSAGE',
      (rate, held) => {
        // each step goes on with the pairs where the last one stopped (sipp reads the file from the top)
        const injection = [...pairs.slice(offset), ...pairs.slice(0, offset)];
        const calls = held ?? callsFor(rate);
        offset = (offset + calls) % pairs.length;
        return runStep({ scenario: path.join(BENCH_DIR, '..', 'test', 'interop', 'sipp', 'message-offline-uac.xml'), target, domain: DOMAIN, rate, calls, injection });
      },
      OFFLINE_RATES,
      true,
    );
    let report: DrainReport | undefined;
    if (drain) {
      // let the last step's retransmissions and transactions end: the drain then runs alone (the
      // smoke run's one step at 250/s ends sooner, and its drain is not quoted)
      await new Promise((r) => setTimeout(r, smoke ? 500 : 2_000));
      report = await measureDrain(server, { timeoutMs: smoke ? 60_000 : 300_000, stallMs: 15_000 });
      const pgText = report.postgresCpu ? ` + PostgreSQL ${(report.postgresCpu.server * 100).toFixed(0)}% (its backends for Parley ${(report.postgresCpu.database * 100).toFixed(0)}%)` : '';
      log(`${server.name} drain: ${report.delivered}/${report.entries} entries (${report.messages} messages) delivered, ${report.items} mailbox items, ${report.entriesPerSec.toFixed(0)} entries/s, ${report.itemsPerSec.toFixed(0)} items/s over ${report.busySec.toFixed(1)} s, cpu ${(report.cpu * 100).toFixed(0)}%${pgText}${report.incomplete ? `; ${report.incomplete}` : ''}`);
    }
    return { run, drain: report, errors: errorNote(server, 'scenario 3') };
  } finally {
    await server.stop();
  }
}

/** Scenario ws: idle SIP-over-WebSocket registrations. */
function benchWebSocket(count: number): Promise<WsReport> {
  return benchIdle(count, 'ws', {}, (server, load) => {
    if (!server.wsUrl) throw new Error('Parley printed no ws= URL');
    return openIdleRegistrations({ ...load, url: server.wsUrl });
  });
}

/** Scenario tls-idle: idle SIP-over-TLS registrations on Parley's sips port (a certificate of the bench's own CA). */
async function benchTlsIdle(count: number): Promise<WsReport> {
  const cert = await makeBenchCertificate(DOMAIN);
  try {
    const ca = readFileSync(cert.ca);
    const config = { tls: { cert: cert.cert, key: cert.key }, sipsPort: 0 };
    return await benchIdle(count, 'tls', config, (server, load) => {
      const listening = /\btls=(\S+):(\d+)\s/.exec(server.output());
      if (!listening) throw new Error('Parley printed no tls= address');
      return openIdleTlsRegistrations({ ...load, host: listening[1]!, port: Number(listening[2]), ca });
    });
  } finally {
    await cert.remove();
  }
}

/**
 * Idle registrations over one transport: a fresh Parley, RSS before, after the first half of the
 * connections registered and after the second half.
 */
async function benchIdle(
  count: number,
  label: string,
  config: Record<string, unknown>,
  open: (server: BenchServer, load: { domain: string; users: string[]; password: string; count: number; first?: number }) => Promise<WsLoadResult>,
): Promise<WsReport> {
  const limit = fdLimit();
  // the server and this client each hold one descriptor per connection
  if (count + 1_000 > limit) return { count, skipped: `open-files limit is ${limit} (ulimit -n); raise it to at least ${count + 1_000}` };
  const users = Array.from({ length: Math.ceil(count / 10) }, (_, i) => `${label}${String(i).padStart(5, '0')}`);
  const server = await startParley(DOMAIN, users, PASSWORD, { ...ENGINE, label: `idle-${label}`, config });
  try {
    await new Promise((r) => setTimeout(r, WS_SETTLE_MS / 2));
    const rssBeforeKb = rssKb(server.pid);
    // Two halves: the first also pays for one-time growth (the JS heap's young generation grows to
    // its full size under this load and keeps it), the second shows what one more connection costs.
    const half = Math.floor(count / 2);
    const load = { domain: DOMAIN, users, password: PASSWORD };
    const firstHalf = await open(server, { ...load, count: half });
    await new Promise((r) => setTimeout(r, WS_SETTLE_MS));
    const rssHalfKb = rssKb(server.pid);
    const secondHalf = await open(server, { ...load, count: count - half, first: half });
    await new Promise((r) => setTimeout(r, WS_SETTLE_MS));
    const rssAfterKb = rssKb(server.pid);
    const registered = firstHalf.registered + secondHalf.registered;
    log(`Parley ${label}: ${registered} registered, ${firstHalf.failed + secondHalf.failed} failed, RSS ${rssBeforeKb} -> ${rssHalfKb} -> ${rssAfterKb} KiB`);
    if (process.env.BENCH_IDLE_HOLD_MS) {
      // to take a heap snapshot of the server with every connection open (BENCH_NODE_FLAGS=--heapsnapshot-signal=SIGUSR2)
      log(`holding the connections ${process.env.BENCH_IDLE_HOLD_MS} ms (server pid ${server.pid})`);
      await new Promise((r) => setTimeout(r, Number(process.env.BENCH_IDLE_HOLD_MS)));
    }
    await firstHalf.close();
    await secondHalf.close();
    return {
      count,
      registered,
      secondHalf: secondHalf.registered,
      failed: firstHalf.failed + secondHalf.failed,
      firstError: firstHalf.firstError ?? secondHalf.firstError,
      rssBeforeKb,
      rssHalfKb,
      rssAfterKb,
    };
  } finally {
    await server.stop();
  }
}

/** Issue 16: the cluster against one node (`cluster`), and idle WebSocket registrations over three nodes (`cluster-ws`). */
async function benchCluster(): Promise<{ report: ClusterReport; errors: string[] }> {
  const users = [...SIPP_USERS, ...CLUSTER_RECEIVERS];
  const errors: string[] = [];
  // the smoke pass: 1-s steps (100 calls per sender), to keep the test command's pass short
  const calls = (rate: number) => (smoke ? 100 : callsFor(rate));
  const common = { domain: DOMAIN, password: PASSWORD, senders: SIPP_USERS, receivers: CLUSTER_RECEIVERS, rates: CLUSTER_RATES, callsFor: calls, scenario: SCENARIO, stepUp, probeCount: smoke ? 20 : 1_000 };
  let single: ClusterReport['single'];
  let cluster: ClusterReport['cluster'];
  if (ONLY.has('cluster')) {
    let t0 = performance.now();
    const one = await startParley(DOMAIN, users, PASSWORD, { database: 'postgres', label: 'cluster-one-node' });
    log(`cluster scenario: one node up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    try {
      const r = await benchSplitSip({ ...common, label: 'one node', nodes: [one], target: targetOf(one) });
      log(`cluster scenario, one node: probe p50 ${(r.probe.p50Us / 1000).toFixed(3)} ms, p99 ${(r.probe.p99Us / 1000).toFixed(3)} ms over ${r.probe.samples} (${r.probe.failed} failed)`);
      single = r;
      errors.push(...errorNote(one, 'cluster scenario, one node'));
    } finally {
      await one.stop();
    }
    t0 = performance.now();
    const c = await startBenchCluster(DOMAIN, users, PASSWORD, { nodes: 2, cores: CLUSTER_CORES });
    log(`cluster scenario: 2 nodes up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    try {
      const r = await benchSplitSip({ ...common, label: '2-node cluster', nodes: c.nodes, target: c.target, settledAt: c.settledAt });
      log(`cluster scenario, cluster: probe p50 ${(r.probe.p50Us / 1000).toFixed(3)} ms, p99 ${(r.probe.p99Us / 1000).toFixed(3)} ms over ${r.probe.samples} (${r.probe.failed} failed)`);
      cluster = r;
      c.nodes.forEach((n, i) => errors.push(...errorNote(n, `cluster scenario, node-${i}`)));
    } finally {
      await c.stop();
    }
  }
  const ws = [];
  if (ONLY.has('cluster-ws')) for (const n of CLUSTER_WS_COUNTS) ws.push(await benchClusterWebSocket(n, { nodes: CLUSTER_WS_NODES, cores: CLUSTER_CORES, domain: DOMAIN, password: PASSWORD, log, settleMs: smoke ? 250 : 1_000 }));
  const cores = [...new Set(CLUSTER_CORES)];
  const shared = cores.length === 1 && cores[0] === SERVER_CORE;
  const placement = shared
    ? `Placement: this machine has ${os.cpus().length} cores. Every Parley process (the one node, and both nodes of the cluster, and the three of the WebSocket run) is pinned to core ${SERVER_CORE}; sipp (both senders and both receivers), the WebSocket load generators, the bench process and the cluster's redis-server run on core ${LOAD_CORE}; the machine's PostgreSQL is not pinned and runs where the scheduler puts it. So the cluster here has the CPU of one node: the comparison measures what clustering costs (the Redis location service, the hop between nodes, two processes sharing a core), not what a second machine adds; on separate machines each node would have a core of its own, and the one-node max rate is the better guess of what each node carries. Redis shares core ${LOAD_CORE} with sipp: where sipp is busy, Redis answers later.`
    : `Placement (\`--cluster-cores ${CLUSTER_CORES.join(',')}\`): node i of the cluster pinned to core ${CLUSTER_CORES.join(' / ')} (the list, in turn), the one node to core ${SERVER_CORE}; sipp, the load generators, the bench and redis-server on core ${LOAD_CORE}, beside any node placed there; PostgreSQL not pinned. "Other on core ${SERVER_CORE}" counts every node's CPU as its own wherever it ran, so it reads low.`;
  const method = `Both on PostgreSQL (the machine's PostgreSQL 15, a fresh database per run, synchronous_commit on), the same Parley build and settings (Conversation History on, the default). **One node**: \`parley serve --database postgres://…\`, a single process. **Cluster**: two \`parley serve --cluster node-<i> --redis unix://… --database postgres://…\` on one database and one redis-server of the bench's own (a Unix socket, nothing persisted, as test/harness/redis.ts starts it). Both get the same load from two sipp senders side by side, each at half the offered rate, with ${SIPP_USERS.length / 2} of the ${SIPP_USERS.length} senders each; sender k sends to node k (one node: both to it). REGISTER: each sender registers its own users. MESSAGE: two sipp receivers, ${CLUSTER_RECEIVERS[0]} registered on node 1 takes sender 0's MESSAGEs, ${CLUSTER_RECEIVERS[1]} registered on node 0 takes sender 1's, so in the cluster every relayed MESSAGE is received by one node, found in Redis, and forwarded to the other node over their TCP connection, and the 200 comes back the same way; on one node the same traffic takes no hop. The two senders' response times are pooled per step, and the step rules are those of scenarios 1-2 (steps of ${smoke ? '100 calls per sender, 1 s' : `${STEP_SEC} s`} at ${CLUSTER_RATES.join(', ')} calls/s in all, a step passes with under ${MAX_FAILURE_RATIO * 100} % failures, p99 under ${MAX_P99_MS} ms and ${MIN_CARRIED * 100} % of the offered rate carried). CPU: the node processes' (summed for the cluster) + PostgreSQL (Parley's backends; the whole server in brackets) + Redis. Idle WebSocket registrations: a fresh cluster of ${CLUSTER_WS_NODES} nodes, one user per registration (all seeded in the database before the start), each node's share opened by a load-generator process of its own (a process may hold ${fdLimit()} open files here); RSS (VmRSS) of each node ${smoke ? '0.25 s' : '1 s'} after the start and ${smoke ? '0.5 s' : '2 s'} after the last registration, Redis's INFO memory (used_memory: what its data set allocated; used_memory_rss) and DBSIZE at the same moments.`;
  return { report: { placement, method, ...(single ? { single } : {}), ...(cluster ? { cluster } : {}), ws, ...(ONLY.has('cluster') ? {} : { pending: 'not run (--scenarios)' }) }, errors };
}

function machine(): string[] {
  const cpus = os.cpus();
  let kamailio = 'unknown';
  let sipp = 'unknown';
  try {
    kamailio = execFileSync('kamailio', ['-v'], { encoding: 'utf8' }).split('\n')[0]!.replace(/^version:\s*/, '').trim();
    sipp = /v\d[\d.]*/.exec(execFileSync('sh', ['-c', 'sipp -v 2>&1 || true'], { encoding: 'utf8' }))?.[0] ?? sipp;
  } catch {
    // reported as unknown
  }
  const distro = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.platform();
  return [
    `${cpus.length} cores (${cpus[0]?.model ?? 'unknown CPU'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${distro}, kernel ${os.release()}`,
    `Node ${process.version} (Parley), ${kamailio}, sipp ${sipp}`,
    `servers pinned to core ${SERVER_CORE} (taskset), sipp and the bench process to core ${LOAD_CORE}; everything on 127.0.0.1 (UDP; TCP and TLS in scenarios 4-11, TLS through stunnel on core ${LOAD_CORE}); open-files limit ${fdLimit()}`,
  ];
}

const DRAIN_METHOD = 'After scenario 3\'s steps (pickup delay 1 h, so every entry is still waiting), the bench sets every waiting entry\'s next attempt to now, as if the pickup delay had ended for all of them at once (a backlog, e.g. after an outage), and polls `<dataDir>/parley.db` read-only (on PostgreSQL: Parley\'s database, on a connection of its own) every 100 ms until no entry is waiting or delivering. Parley\'s worker wakes within its 1 s idle poll and delivers rounds of `offlineIm.deliveryBatch` (64) entries; each entry becomes two mailbox items (the recipient\'s Missed Conversation and the sender\'s Conversation, each with the transcript of all its messages). Rates are over the busy interval, from the last sample before the first delivery to the first sample with the spool empty; the pairs are separate sender→recipient conversations, so entries/s counts separate Missed Conversations.';

async function main(): Promise<void> {
  requireTools();
  // every process the bench starts (servers, sipp, Redis, load generators) adds an exit listener that kills it
  process.setMaxListeners(64);
  // keep this process (memory sampling, the WebSocket client) off the servers' core
  execFileSync('taskset', ['-a', '-p', '-c', LOAD_CORE, String(process.pid)], { stdio: 'ignore' });
  const t0 = Date.now();
  const machineBusy0 = busyCpuSeconds('cpu');
  const own0 = ownCpuSeconds();
  // the PostgreSQL server's CPU over the whole run (Parley on PostgreSQL); '' matches no database
  const pgRun0 = ON_POSTGRES ? postgresCpu('') : undefined;
  const none: ServerResult = { errors: [] };
  const parley = ONLY.has('1') && SERVERS.includes('parley') ? await benchServer((users) => startParley(DOMAIN, users, PASSWORD, { ...ENGINE, label: 'sip' }), { register: true, message: false, label: 'scenario 1' }) : none;
  // Scenario 2 on Parley twice, back to back, each on a fresh server (so that each peak RSS is its
  // own): Conversation History on for every user, then off for every user.
  const relay = ONLY.has('2') && SERVERS.includes('parley');
  const parleyOn = relay ? await benchServer((users) => startParley(DOMAIN, users, PASSWORD, { ...ENGINE, label: 'relay-history-on', admin: [historyPolicy(true)] }), { register: false, message: true, label: 'history on' }) : none;
  const parleyOff = relay ? await benchServer((users) => startParley(DOMAIN, users, PASSWORD, { ...ENGINE, label: 'relay-history-off', admin: [historyPolicy(false)] }), { register: false, message: true, label: 'history off', messageRates: HISTORY_OFF_RATES }) : none;
  const sip12 = ONLY.has('1') || ONLY.has('2');
  const kamailio = sip12 && SERVERS.includes('kamailio') ? await benchServer((users) => startKamailio(DOMAIN, users, PASSWORD), { register: ONLY.has('1'), message: ONLY.has('2'), label: 'scenarios 1-2' }) : none;
  const parleyOffline = ONLY.has('3') && SERVERS.includes('parley')
    ? await benchOffline((users) => startParley(DOMAIN, users, PASSWORD, { ...ENGINE, pickupDelay: OFFLINE_PICKUP_DELAY, commitStats: true, label: 'offline', config: OFFLINE_CONFIG }), true)
    : undefined;
  const kamailioOffline = ONLY.has('3') && SERVERS.includes('kamailio') ? await benchOffline((users) => startKamailio(DOMAIN, users, PASSWORD, KAMAILIO_OFFLINE), false) : undefined;
  // scenarios 4-7: one certificate for both servers. The smoke run (which measures nothing) runs
  // both servers' at once, beside the idle-registration, fan-out and cluster parts, to stay under a minute.
  type Streams = Awaited<ReturnType<typeof benchStreams>>;
  const streamCases = STREAM_CASES.filter((c) => ONLY.has(streamOption(c.transport, c.connecting)));
  const runStreams = async (): Promise<{ parley?: Streams; kamailio?: Streams }> => {
    if (streamCases.length === 0) return {};
    openEphemeralPorts();
    const cert = await makeBenchCertificate(DOMAIN);
    try {
      const kinds = (['parley', 'kamailio'] as const).filter((k) => SERVERS.includes(k));
      const bench = (k: 'parley' | 'kamailio') => benchStreams(k, cert, streamCases);
      const out: { parley?: Streams; kamailio?: Streams } = {};
      if (smoke) (await Promise.all(kinds.map(bench))).forEach((r, i) => (out[kinds[i]!] = r));
      else for (const k of kinds) out[k] = await bench(k);
      return out;
    } finally {
      await cert.remove();
    }
  };
  const ws: WsReport[] = [];
  const tlsIdle: WsReport[] = [];
  let fanout: Awaited<ReturnType<typeof runPresenceFanout>> | undefined;
  const runIdleAndFanout = async (): Promise<void> => {
    if (ONLY.has('ws')) for (const n of IDLE_COUNTS ?? WS_COUNTS) ws.push(await benchWebSocket(n));
    if (ONLY.has('tls-idle')) for (const n of IDLE_COUNTS ?? WS_COUNTS) tlsIdle.push(await benchTlsIdle(n));
    // issue 6: one presentity with 1,000 watchers changes state (Parley only; SDK watchers over TCP)
    if (ONLY.has('fanout')) fanout = await runPresenceFanout({ watchers: smoke ? 200 : quick ? 1000 : 10_000, rounds: smoke ? 1 : quick ? 3 : 10, log });
  };
  const runCluster = async () => (ONLY.has('cluster') || ONLY.has('cluster-ws') ? await benchCluster() : undefined);
  let streams: Awaited<ReturnType<typeof runStreams>>;
  let clusterRun: Awaited<ReturnType<typeof runCluster>>;
  if (smoke) {
    // two lanes of about the same length (the smoke run measures nothing, so they may share the
    // cores): the stream scenarios, then the idle registrations and the fan-out; beside them the
    // cluster part, which is mostly starting processes and waiting for them
    const lane = async () => {
      const out = await runStreams();
      await runIdleAndFanout();
      return out;
    };
    [streams, clusterRun] = await Promise.all([lane(), runCluster()]);
  } else {
    streams = await runStreams();
    await runIdleAndFanout();
    clusterRun = await runCluster();
  }
  const noStreams: Streams = { runs: new Map(), errors: [] };
  const parleyStreams = streams.parley ?? noStreams;
  const kamailioStreams = streams.kamailio ?? noStreams;
  const notRun = 'not run (--scenarios)';
  // what the rest of the machine did meanwhile (another test run, a build): the numbers are only as good as the quiet
  const wallSec = (Date.now() - t0) / 1000;
  const otherShare = Math.max(0, busyCpuSeconds('cpu') - machineBusy0 - (ownCpuSeconds() - own0)) / (wallSec * os.cpus().length);
  const pgRun1 = ON_POSTGRES ? postgresCpu('') : undefined;
  const pgRunSec = pgRun0 && pgRun1 ? pgRun1.server - pgRun0.server : undefined;
  // the rows of Parley's runs name the engine when it is not the default
  const onEngine = ON_POSTGRES ? { label: 'Parley on PostgreSQL' } : {};
  const scenarios: ScenarioReport[] = [
    ONLY.has('1') ? { title: '1. REGISTER + digest', ...onEngine, parley: parley.register, kamailio: kamailio.register } : { title: '1. REGISTER + digest', pending: notRun },
    ONLY.has('2')
      ? { title: '2. MESSAGE relayed', label: `history on${ON_POSTGRES ? ', Parley on PostgreSQL' : ''}`, parley: parleyOn.message, kamailio: kamailio.message, variant: { label: `history off${ON_POSTGRES ? ', Parley on PostgreSQL' : ''}`, parley: parleyOff.message, fewerSteps: HISTORY_OFF_RATES !== RATES } }
      : { title: '2. MESSAGE relayed', pending: notRun },
    ONLY.has('3') ? { title: '3. MESSAGE to offline user', ...onEngine, parley: parleyOffline?.run, kamailio: kamailioOffline?.run } : { title: '3. MESSAGE to offline user', pending: notRun },
    ...STREAM_CASES.map((c): ScenarioReport => ONLY.has(streamOption(c.transport, c.connecting))
      ? { title: streamTitle(c), ...onEngine, parley: parleyStreams.runs.get(caseKey(c)), kamailio: kamailioStreams.runs.get(caseKey(c)) }
      : { title: streamTitle(c), pending: notRun }),
  ];
  // scenarios whose steps shared the server core with other work: their max rates are lower bounds
  const noisy: string[] = [];
  for (const sc of scenarios) {
    for (const { server, title, run: r } of runsOf(sc)) {
      const loaded = (r?.steps ?? []).filter((st) => (st.otherCpu ?? 0) > MAX_OTHER_CPU);
      if (loaded.length > 0) noisy.push(`${title} / ${server}: ${loaded.length} of ${r!.steps.length} steps, up to ${(Math.max(...loaded.map((st) => st.otherCpu ?? 0)) * 100).toFixed(0)} %`);
    }
  }
  const report: BenchReport = {
    quick,
    smoke,
    parleyDatabase: DATABASE,
    date: new Date().toISOString(),
    machine: machine(),
    criteria: [
      `Each step offers a fixed rate for ${STEP_SEC} s (at least 100 calls) with sipp, over UDP in scenarios 1-3; rates ${RATES.join(', ')} calls/s (scenario 3: ${OFFLINE_RATES.join(', ')}), stopping after two failed steps in a row or one that fell below 90 % of the offered rate.`,
      `A step passes with under ${MAX_FAILURE_RATIO * 100}% failed calls (failed, timed out, or not finished) and p99 under ${MAX_P99_MS} ms.`,
      `Scenarios 4-7 (issue 20), a connection per call (connection churn): scenarios 1 and 2 with the senders over TCP and over TLS, the same scenario files (bench/sipp/*.xml; \`[transport]\` fills the Via), users and step rules, each on a fresh server. sipp \`-t tn -max_socket ${STREAM_CONNECTIONS}\`: sipp opens one connection per call and closes it when the call ends, so every call pays for a TCP connection (and over TLS a full handshake: no session resumption) in the server's CPU, and up to ${STREAM_CONNECTIONS.toLocaleString('en')} are open at once (how many depends on how long calls take: few on a server that answers in a millisecond, hundreds on one that lags); past ${STREAM_CONNECTIONS.toLocaleString('en')} sipp shares sockets between calls, which fails with broken pipes against both servers, so such a step fails. This is connection churn, not ${STREAM_CONNECTIONS.toLocaleString('en')} long-lived client connections (those are scenarios 8-11). The MESSAGE receiver registers and receives over UDP in every scenario. TLS: Debian's sipp is built without OpenSSL (\`sipp -t ln\` exits with "To use a TLS transport you must compile SIPp with OpenSSL"), so sipp speaks TCP to stunnel (Debian's stunnel4, client mode, on core 1 with sipp), which opens one TLS connection to the server per TCP connection (TLS 1.3 as negotiated, TCP_NODELAY both sides) and verifies the server's certificate; both servers use the same throwaway certificate (ECDSA P-256, signed by a CA the bench makes with openssl in a temp dir) and ask no client certificate. Kamailio: \`-A WITH_TCP\` / \`-A WITH_TLS\` in bench/kamailio.cfg (tcp_children=2, tcp_max_connections=4096, the tls module; see the file). Parley: its TCP listener on the SIP port, its TLS listener (config \`tls\`, \`sipsPort\`).`,
      `Scenarios 8-11 (issue 20), ${STREAM_CONNECTIONS.toLocaleString('en')} long-lived connections (the clients people use connect once and send over their connection): the same requests, digest and step rules over TCP and TLS, but each sipp call is one client that keeps its connection for the whole step (bench/sipp/register-loop.xml, message-loop.xml; sipp \`-t tn -l ${STREAM_CONNECTIONS} -m ${STREAM_CONNECTIONS}\`): ${STREAM_CONNECTIONS.toLocaleString('en')} calls, each its own connection and its own user (user000…user999, all in both servers), opened at ${LONG_OPEN_RATE.toLocaleString('en')} a second before the load starts; each then sends a request every ${STREAM_CONNECTIONS.toLocaleString('en')}/rate seconds (at 8,000/s: every 125 ms) until its share of the step is sent, at absolute due times staggered over one period, so the offered rate is fixed: a client whose answer came late sends its next request at once, never two at a time. Here the offered and carried rates, the calls and the failures count requests (each the challenge and the authenticated request, two transactions, as a call of scenarios 1-7): a request not answered by the end (a client whose connection broke loses its remaining requests) is a failure; the carried rate is the answered requests over the time from the first due to the last answer (at least the nominal step). A REGISTER keeps its Call-ID and raises its CSeq, as a client refreshing its registration does; a sender's MESSAGEs all go to bob (UDP), its Call-ID kept, CSeq rising, a branch each. Over TLS, stunnel turns each of sipp's connections into one long-lived TLS connection: ${STREAM_CONNECTIONS.toLocaleString('en')} handshakes per step, before the load, instead of one per call. The step's CPU includes opening the connections (and their handshakes) and their ${((STREAM_CONNECTIONS / LONG_OPEN_RATE) + 0.5).toFixed(1)} s before the load.`,
      'Latency is the authenticated transaction (REGISTER + Authorization → 200; MESSAGE + Proxy-Authorization → 200 from the receiver, or → 202 for an offline recipient), from sipp -trace_rtt, whole milliseconds.',
      `A call is two transactions (challenge, then authenticated request). ${SIPP_USERS.length} users in both servers, one sipp receiver (bob) for MESSAGE.`,
      `Scenario 2 runs against Parley twice, each time on a fresh server (scenario 1 has one of its own), one right after the other: Conversation History on for every user (\`parley admin Set-CsClientPolicy -Identity Global -EnableIMAutoArchiving $True\` before the start, the default) and off for every user (\`$False\`)${HISTORY_OFF_RATES === RATES ? ', same rates' : `, the "off" run at ${HISTORY_OFF_RATES.join(', ')} calls/s only`}. All MESSAGEs go from the 200 senders to bob: 200 conversations, none ending during the run.`,
      `Scenario 3 (MESSAGE to an offline user): a fresh server of each kind (empty spool, its own peak memory) with the ${SIPP_USERS.length} senders and ${OFFLINE_USERS.length} users who never register; the calls walk through all ${SIPP_USERS.length * OFFLINE_USERS.length} sender→recipient pairs, each step going on where the last stopped, so messages open separate spool entries until the pairs run out and then join them. Parley's pickup delay is set to 1 h (\`parley admin Set-CsImConfiguration -OfflineImPickupDelay 01:00:00\`): nothing is delivered during the steps, so acceptance and the drain (below) are measured apart. Parley's per-user offline quotas (\`offlineIm.senderQuota\`, \`offlineIm.recipientQuota\`) are set to unlimited: 200 senders at 5,000/s are 25 messages a second each, all undelivered; the quota checks (and the mailbox quota's lookups) still run on every message.`,
      ...(ON_POSTGRES
        ? ['Scenario 3 with `--database postgres`, what is durable before the 202: the same group commit (offlineIm.commitWindowMs 2 ms, commitMaxBatch 512), each batch one PostgreSQL transaction (SERIALIZABLE, run again on a conflict) with synchronous_commit on, i.e. the PostgreSQL server flushes its WAL (fdatasync, wal_sync_method) before the COMMIT returns; on PostgreSQL the spool writer runs on Parley\'s event loop over its connection pool (10 connections) instead of a worker thread, and the SQL crosses a Unix socket. The PostgreSQL server (15, the machine\'s, default settings: fsync on, full_page_writes on, commit_delay 0) runs outside the bench, unpinned, and serves other clients too. The paragraph below describes SQLite, for Parley\'s default and for Kamailio.']
        : []),
      'Scenario 3, what is on disk before the 202. Parley: the message, its spool entry and three trace rows are written in a group commit (offlineIm.commitWindowMs 2 ms, commitMaxBatch 512): one SQLite transaction per batch in WAL mode with synchronous=FULL, i.e. one fsync of the WAL per batch (plus the database file\'s when a checkpoint runs), written by a worker thread on its own connection (the same process, so on the same core here); the batch\'s 202s are sent after it. Kamailio: msilo m_store INSERTs one row per message through db_sqlite, each statement its own transaction; db_sqlite sets no PRAGMA, so SQLite\'s compiled default applies, synchronous=FULL (Debian\'s libsqlite3 3.40: DEFAULT_SYNCHRONOUS=2, DEFAULT_WAL_SYNCHRONOUS=2). The bench gives msilo its own file in WAL mode, one fdatasync of the WAL per message (strace); SQLite\'s default rollback journal would cost 4 fdatasyncs and a journal file created and unlinked per message.',
      `Scenario 3, Kamailio runs one UDP worker (children=${KAMAILIO_OFFLINE.children}): db_sqlite in Kamailio 5.6 sets no busy timeout, so with two workers m_store calls fail at once with "database is locked" (503): about half of them from 250 messages/s up in our tries; SQLite admits one writer at a time anyway. Its auth_db table is in another file, so the SELECTs of digest auth do not collide with the inserts.`,
      `Other load: the server core's busy time (/proc/stat) that was not the server's, over the step (kernel network work included). A step that failed with more than ${MAX_OTHER_CPU * 100} % of it is run again, once per scenario; both rows are in "Every step".`,
      'UDP drops: the kernel\'s Udp RcvbufErrors counter over the step (datagrams lost to full socket buffers, any process); each one costs a 500 ms retransmission.',
      'CPU: utime+stime from /proc of the server (all Kamailio processes) over the step wall time; 100 % = one core. Time blocked in fsync is not CPU.',
      'Peak memory: over the whole scenario, overloaded last steps included. Parley VmHWM (one process); Kamailio the sum of PSS over its processes (shared memory counted once, only touched pages of its 1024 MB shm pool), highest sample every 200 ms.',
      'Idle WebSocket registrations: a fresh Parley; RSS (VmRSS) 1 s after start, 2 s after the first N/2 connections registered (REGISTER, 401, REGISTER with MD5 digest, 200), and 2 s after the other N/2. "All" divides the whole growth by N; it includes one-time growth, mostly the JS heap\'s young generation filling to its full size (2 × 8 MiB, as bin/parley holds it) under the load of registering, so it reads high for small N. "Second half" divides the growth over the second half by N/2: what one more connection costs.',
      'Idle TLS registrations (tls-idle): the same over TLS to Parley\'s sips port (a P-256 certificate of a CA the bench makes; TLS 1.3, a full handshake per connection, no session resumption), SIP framed by Content-Length.',
    ].join('\n'),
    topRate: RATES[RATES.length - 1]!,
    scenarios,
    ws,
    tlsIdle,
    ...(parleyOffline?.drain ? { drain: parleyOffline.drain, drainMethod: DRAIN_METHOD } : {}),
    ...(fanout ? { fanout } : {}),
    ...(clusterRun ? { cluster: clusterRun.report } : {}),
    notes: [
      'Durability in scenarios 1-2: Parley keeps users in SQLite (WAL, synchronous=FULL), written only by `user add`; registrations are in memory, nothing is fsynced per request. Kamailio: usrloc db_mode 0 (memory only); auth_db reads SQLite; REGISTER runs msilo\'s m_dump (a SELECT). Scenario 3: see Method. See bench/kamailio.cfg.',
      `Kamailio runs 2 UDP worker processes (children=2; ${KAMAILIO_OFFLINE.children} in scenario 3) plus its helpers, all on core 0; Parley is one Node process on core 0 (no cluster yet), whose offline-spool commits (and their fsyncs) run on a worker thread of it.`,
      'sipp (the sender and the receiver) shares core 1; when both servers saturate at the same offered rate, the load generator may be the limit.',
      ...(smoke ? [`**Smoke run** (the test command's): one 1-s step per scenario at a low rate (200 calls in scenarios 4-7), no re-runs, no held check, shorter settling times before the RSS readings and the drain; scenarios 4-11 run on one server of each kind (all eight on it; the long-lived ones with ${LONG_CONNECTIONS} connections sending two requests each), both at once, then the idle registrations (WebSocket, TLS) and the fan-out, all beside the cluster part: it shows the harness and both servers work; its numbers say nothing about the servers' limits.`] : []),
      ...(quick && !smoke ? ['Quick steps last 3 s: one GC pause or scheduler hiccup moves a p99, so the max rates can move by one step between runs; use the full run for numbers to quote.'] : []),
      'Scenario 2 counts a MESSAGE as successful when the receiver\'s 200 comes back; the single sipp receiver answers every MESSAGE on core 1 next to the sender.',
      ...(cpuProfileDir() ? [`**Profiled run** (BENCH_CPU_PROF=${cpuProfileDir()}): every Parley ran under node --cpu-prof, which costs throughput; do not quote these rates.`] : []),
      ...parley.errors,
      ...parleyOn.errors,
      ...parleyOff.errors,
      ...kamailio.errors,
      ...(parleyOffline?.errors ?? []),
      ...(kamailioOffline?.errors ?? []),
      ...(clusterRun?.errors ?? []),
      ...parleyStreams.errors,
      ...kamailioStreams.errors,
      `Other load: processes outside the bench (and the kernel) used ${(otherShare * 100).toFixed(0)} % of the machine's CPU during the run${otherShare > 0.1 ? ' — **the machine was not quiet; treat the rates as lower bounds and run again when it is**' : ''}.`,
      ...(noisy.length > 0 ? [`Other work took more than ${MAX_OTHER_CPU * 100} % of the server core during some steps (see "other on core ${SERVER_CORE}" in Every step): ${noisy.join('; ')}. Those max rates are lower bounds.`] : []),
      ...(pgRunSec !== undefined ? [`PostgreSQL (not pinned; every postgres process, other clients' work included) used ${pgRunSec.toFixed(1)} CPU-s over the run, ${((pgRunSec / wallSec) * 100).toFixed(0)} % of one core on average; per step in "Every step" (+ PostgreSQL).`] : []),
      ...(ON_POSTGRES ? [`Parley on PostgreSQL: "other on core ${SERVER_CORE}" includes PostgreSQL's own work when the scheduler put it on that core (it is not pinned), so a step that failed with much of it is run again as for any other load.`] : []),
      ...(ON_POSTGRES ? ['Parley on PostgreSQL: a fresh database per server, its settings (the pickup delay, the client policies) set with `parley admin --database`; the presence fan-out runs on SQLite either way.'] : []),
      `Run took ${((Date.now() - t0) / 1000).toFixed(0)} s.`,
    ],
  };
  const history = historyComparison(scenarios.find((sc) => sc.variant));
  if (history) log(`MESSAGE relayed, history on / off: ${history.verdict}${history.sameRate && !history.fewerSteps ? `; at ${history.sameRate.rate}/s both passed, messages per CPU-second on / off ${history.sameRate.ratio.toFixed(2)}×` : ''}`);
  await writeReport(OUT_DIR, report);
  await closeTestPostgres();
  log(`wrote ${path.join(OUT_DIR, 'RESULTS.md')} and throughput.svg`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
