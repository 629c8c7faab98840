// Writes bench/RESULTS.md and bench/throughput.svg from the measured steps. Only reports what
// was measured; a scenario that could not run says why.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DrainReport } from './drain.ts';
import type { HistoryStore } from './history-store.ts';
import type { PresenceFanoutResult } from './presence-fanout.ts';
import type { CommitTotals } from './servers.ts';
import type { StepResult } from './sipp-step.ts';

export interface StepRecord extends StepResult {
  /** CPU seconds of the server during the step / step wall time (1.0 = one core) */
  cpu: number;
  /** the rest of the server core's busy time over the step (kernel, other processes), same unit */
  otherCpu?: number;
  passed: boolean;
  /** UDP datagrams dropped for full socket buffers during the step (machine-wide) */
  udpDrops: number;
  /** the server's peak memory from its start to the end of this step, KiB (same measure as ServerRun.peakMemoryKb) */
  peakMemoryKb?: number;
  /** Parley's offline-spool group commits during the step (scenario 3; maxima over the run so far) */
  commit?: CommitTotals;
  /** Parley on PostgreSQL: CPU of the PostgreSQL server (not pinned) and of Parley's backends in it, over the step (1.0 = one core) */
  postgresCpu?: { server: number; database: number };
  /** a cluster's Redis (its private redis-server, on the load core): CPU over the step, same unit */
  redisCpu?: number;
}

/** Issue 20's held check: one long step at HOLD_SHARE of the run's highest passing rate (`ofRate`). */
export interface HeldStep extends StepRecord {
  ofRate: number;
}

/** what the held check's p99 must stay under (issue 20) */
export const HOLD_TARGET_P99_MS = 20;

export interface ServerRun {
  steps: StepRecord[];
  /** the held check (full runs), after the steps */
  held?: HeldStep;
  /** KiB: Parley VmHWM; Kamailio sum of PSS over its processes, max of samples */
  peakMemoryKb: number;
  /** Parley, scenario 2: what Conversation History kept, read at the end of the run */
  historyStore?: HistoryStore;
}

export interface ScenarioReport {
  title: string;
  /** what tells the Parley run from its variant ('history on'); rows then read "title, label" */
  label?: string;
  parley?: ServerRun;
  kamailio?: ServerRun;
  /** why it was not measured */
  pending?: string;
  /** why Kamailio's figures are not comparable (no ratio is given) */
  noRatio?: string;
  /**
   * The same scenario against Parley again under other settings (scenario 2: Conversation History
   * off), on a fresh server: a row of its own beside the same Kamailio run, and a series of its own
   * in the scenario's chart.
   */
  variant?: {
    label: string;
    parley?: ServerRun;
    /** the variant was offered fewer rates than the scenario (the quick pass): its max rate is not comparable */
    fewerSteps?: boolean;
  };
}

const rowTitle = (s: ScenarioReport, label = s.label) => (label ? `${s.title}, ${label}` : s.title);

/** Every run of a scenario with the server and row title it is reported under (Kamailio once). */
export function runsOf(s: ScenarioReport): Array<{ server: 'Parley' | 'Kamailio'; title: string; run: ServerRun | undefined }> {
  return [
    { server: 'Parley', title: rowTitle(s), run: s.parley },
    ...(s.variant ? [{ server: 'Parley' as const, title: rowTitle(s, s.variant.label), run: s.variant.parley }] : []),
    // Kamailio has no Conversation History: its rows carry the bare title
    { server: 'Kamailio', title: s.title, run: s.kamailio },
  ];
}

export interface WsReport {
  count: number;
  registered?: number;
  failed?: number;
  rssBeforeKb?: number;
  /** after the first half of the connections registered */
  rssHalfKb?: number;
  rssAfterKb?: number;
  /** connections registered in the second half */
  secondHalf?: number;
  firstError?: string;
  skipped?: string;
}

/** Idle WebSocket registrations spread over a cluster's nodes (bench/cluster.ts). */
export interface ClusterWsReport {
  count: number;
  /** seconds from the first connection to the last child's report */
  setupSec?: number;
  nodes: Array<{ node: string; core: string; registered: number; failed: number; rssBeforeKb: number; rssAfterKb: number }>;
  firstError?: string;
  /** Redis INFO memory (used_memory, used_memory_rss) and DBSIZE, before and after the registrations */
  redisBefore?: { usedBytes: number; rssBytes: number; keys: number };
  redisAfter?: { usedBytes: number; rssBytes: number; keys: number };
  skipped?: string;
}

/** bench/cluster-probe.ts: authenticated MESSAGE → 200, one at a time, microseconds */
export interface ProbeReport {
  samples: number;
  failed: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  meanUs: number;
  firstError?: string;
}

/** Issue 16: a cluster of Parley nodes against one node, both on PostgreSQL (bench/cluster.ts). */
export interface ClusterReport {
  /** how the nodes, sipp, Redis and PostgreSQL were placed on the cores, and what that means */
  placement: string;
  /** the method, one paragraph */
  method: string;
  cluster?: { register?: ServerRun; message?: ServerRun; probe?: ProbeReport };
  single?: { register?: ServerRun; message?: ServerRun; probe?: ProbeReport };
  ws: ClusterWsReport[];
  /** why the SIP part was not run */
  pending?: string;
}

export interface BenchReport {
  quick: boolean;
  /** the test command's smoke run (--smoke): one short step per scenario */
  smoke?: boolean;
  /** where Parley kept its state (--database): SQLite in its data directory, or PostgreSQL */
  parleyDatabase?: 'sqlite' | 'postgres';
  date: string;
  machine: string[];
  criteria: string;
  /** the highest rate offered: a server passing it may go further */
  topRate: number;
  scenarios: ScenarioReport[];
  ws: WsReport[];
  /** idle SIP-over-TLS registrations (scenario tls-idle) */
  tlsIdle?: WsReport[];
  /** Parley's spool drain after scenario 3 */
  drain?: DrainReport;
  /** how the drain was measured, one paragraph */
  drainMethod?: string;
  /** presence fan-out: one state change to N watchers */
  fanout?: PresenceFanoutResult;
  /** the cluster scenarios (issue 16) */
  cluster?: ClusterReport;
  notes: string[];
}

const best = (r: ServerRun | undefined): StepRecord | undefined => r?.steps.filter((s) => s.passed).at(-1);
const f0 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(0));
const mib = (kb: number | undefined) => (kb === undefined ? '–' : `${(kb / 1024).toFixed(1)} MiB`);
/** the server's CPU at a step, and PostgreSQL's beside it when Parley ran there */
// PostgreSQL: Parley's own backends, then the whole server (other clients of it included)
const cpuText = (st: { cpu: number; postgresCpu?: { server: number; database: number }; redisCpu?: number }) =>
  `${(st.cpu * 100).toFixed(0)} %${st.postgresCpu ? ` + PostgreSQL ${(st.postgresCpu.database * 100).toFixed(0)} % (whole server ${(st.postgresCpu.server * 100).toFixed(0)} %)` : ''}${st.redisCpu === undefined ? '' : ` + Redis ${(st.redisCpu * 100).toFixed(0)} %`}`;

/** Issue 14's target: relay with Conversation History on at least this share of relay with it off. */
export const HISTORY_TARGET = 0.9;

/**
 * Where a run's max rate lies, given its steps: at least its best passed step, below the next
 * higher step it was offered (which failed), or unbounded when it passed the highest it was offered.
 */
function maxRateRange(r: ServerRun): { low: number; high: number } | undefined {
  const b = best(r);
  if (!b) return undefined;
  const above = r.steps.map((st) => st.rate).filter((rate) => rate > b.rate);
  return { low: b.rate, high: above.length > 0 ? Math.min(...above) : Infinity };
}

const roundRate = (n: number) => Math.max(100, Math.round(n / 100) * 100);

export interface HistoryComparison {
  on?: ServerRun;
  off?: ServerRun;
  kamailio?: ServerRun;
  /**
   * Max rate with history on / with it off, best passed step to best passed step, and the range the
   * true ratio lies in given the steps (each max rate is below the next step, which failed; a run
   * that passed its highest step has no upper end): the steps are 10-20 % apart near the top, as
   * coarse as the target, so a range on both sides of it asks for finer steps.
   */
  maxRate?: { ratio: number; low: number; high: number };
  /** the highest offered rate both runs passed, and what a message cost each there */
  sameRate?: { rate: number; on: StepRecord; off: StepRecord; kamailio?: StepRecord; ratio: number };
  /** the "off" run was offered fewer rates (the quick pass) */
  fewerSteps: boolean;
  /** one sentence: the ratio against the target */
  verdict: string;
}

/** Successful messages per second of the server's CPU (1 core fully busy for 1 s) at a step. */
export const perCpuSecond = (st: StepRecord): number => (st.cpu > 0 ? st.achieved / st.cpu : NaN);

/** Scenario 2's history-on run against its history-off variant (and Kamailio's run), if both ran. */
export function historyComparison(s: ScenarioReport | undefined): HistoryComparison | undefined {
  const on = s?.parley;
  const off = s?.variant?.parley;
  if (!s || !on || !off) return undefined;
  const bOn = best(on);
  const bOff = best(off);
  let maxRate: HistoryComparison['maxRate'];
  const rOn = maxRateRange(on);
  const rOff = maxRateRange(off);
  if (rOn && rOff && !s.variant?.fewerSteps) maxRate = { ratio: rOn.low / rOff.low, low: rOn.low / rOff.high, high: rOn.high / rOff.low };
  // the last passed step of a run at each rate (a retried step counts once)
  const passedAt = (r: ServerRun | undefined) => new Map((r?.steps ?? []).filter((st) => st.passed).map((st) => [st.rate, st]));
  const pOn = passedAt(on);
  const pOff = passedAt(off);
  const pK = passedAt(s.kamailio);
  const common = [...pOn.keys()].filter((r) => pOff.has(r)).sort((a, b) => b - a)[0];
  const sameRate = common === undefined ? undefined : { rate: common, on: pOn.get(common)!, off: pOff.get(common)!, kamailio: pK.get(common), ratio: perCpuSecond(pOn.get(common)!) / perCpuSecond(pOff.get(common)!) };
  const target = `target ≥ ${HISTORY_TARGET}×`;
  let verdict: string;
  if (s.variant?.fewerSteps) {
    const rates = [...new Set(off.steps.map((st) => st.rate))].join(', ');
    verdict = `history off ran at ${rates}/s only, so there is no max-rate ratio; ${sameRate ? `at ${sameRate.rate}/s, messages per CPU-second on / off ${sameRate.ratio.toFixed(2)}×` : 'no rate passed by both'} (indicative: the full run decides the ${target})`;
  } else if (!maxRate) verdict = `no max-rate ratio (${!bOn && !bOff ? 'neither run' : !bOn ? 'history on' : 'history off'} passed no step); ${target}`;
  else {
    verdict = `${maxRate.ratio.toFixed(2)}×, ${target}: ${maxRate.ratio >= HISTORY_TARGET ? 'met' : 'NOT met'}`;
    if (maxRate.low < HISTORY_TARGET && maxRate.high > HISTORY_TARGET) {
      // finer steps from the lower of the two max rates to the higher end of the two ranges decide
      const from = Math.min(rOn!.low, rOff!.low);
      const finite = [rOn!.high, rOff!.high].filter(Number.isFinite);
      const to = finite.length === 2 ? Math.max(...finite) : Math.max(rOn!.low, rOff!.low) * 1.5;
      const rates = [...new Set(Array.from({ length: 7 }, (_, i) => roundRate(from + ((to - from) * i) / 6)))];
      const why = Number.isFinite(rOn!.high) || Number.isFinite(rOff!.high) ? `the true ratio lies in ${rangeText(maxRate)}, on both sides of the target` : 'both runs passed their highest step';
      verdict += ` at these steps; ${why}, so more steps decide, e.g. \`npm run bench -- --scenarios 2 --servers parley --rates ${rates.join(',')}\``;
    }
  }
  return { on, off, kamailio: s.kamailio, maxRate, sameRate, fewerSteps: s.variant?.fewerSteps === true, verdict };
}

const rangeText = (m: { low: number; high: number }) => (Number.isFinite(m.high) ? `${m.low.toFixed(2)}–${m.high.toFixed(2)}×` : m.low > 0 ? `≥ ${m.low.toFixed(2)}×` : 'unbounded either way');

function historySection(rep: BenchReport, c: HistoryComparison): string[] {
  const out: string[] = [];
  const count = (n: number | undefined) => (n === undefined ? 'no table' : String(n));
  const store = (r: ServerRun | undefined) => (r?.historyStore ? `${count(r.historyStore.conversations)} / ${count(r.historyStore.messages)}` : '–');
  const dbSize = (r: ServerRun | undefined) => (r?.historyStore ? mib(r.historyStore.databaseBytes / 1024) : '–');
  const [on, off, k] = [cell(c.on, rep.topRate), cell(c.off, rep.topRate), cell(c.kamailio, rep.topRate)];
  const same = c.sameRate;
  const atSame = (st: StepRecord | undefined) => (st ? `${(st.cpu * 100).toFixed(0)} %, ${f0(perCpuSecond(st))} msg per CPU-s, p50/p99 ${st.p50Ms} / ${st.p99Ms} ms, peak mem so far ${mib(st.peakMemoryKb)}` : '–');
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}×` : '–');
  out.push('### MESSAGE relayed with Conversation History on and off (Parley)', '');
  out.push(
    `Scenario 2 against two fresh Parley servers, one after the other${c.fewerSteps ? ' (quick pass: the "off" run offers one step, which the "on" run offers too; they compare at that rate only)' : ', with the same steps'}: **history on** with \`EnableIMAutoArchiving\` True in the Global CsClientPolicy (every user: each relayed MESSAGE is recorded after its 200 is forwarded, in group commits of ≤ 10 ms on a worker thread of the same process, so on the same core; the bodies stay in \`history_messages\` until the conversation ends, ConversationIdleTimeout 10 min, longer than the run), **history off** with it False (nothing is recorded). Issue 14's target: relay with history at least ${HISTORY_TARGET}× relay without, on the max rate. The same-rate row is the finer measure: the highest rate both runs passed, with the server's CPU there and the messages it relays per CPU-second (1 core busy for 1 s), whose ratio is what history costs a message whatever the steps.`,
    '',
  );
  out.push('| | history on | history off | on / off | Kamailio |', '|---|---|---|---|---|');
  out.push(`| max rate | ${on[0]} | ${off[0]} | **${c.maxRate ? `${c.maxRate.ratio.toFixed(2)}×` : '–'}** (target ≥ ${HISTORY_TARGET}×)${c.maxRate ? `; ${rangeText(c.maxRate)} given the steps` : ''} | ${k[0]} |`);
  out.push(`| p50 / p99 at max rate | ${on[1]} | ${off[1]} | | ${k[1]} |`);
  out.push(`| CPU at max rate | ${on[2]} | ${off[2]} | | ${k[2]} |`);
  out.push(same ? `| at ${same.rate}/s (highest rate both passed) | ${atSame(same.on)} | ${atSame(same.off)} | ${same.ratio.toFixed(2)}× (msg per CPU-s) | ${atSame(same.kamailio)} |` : '| same rate | no rate passed by both | | | |');
  out.push(`| peak RSS (VmHWM over the run${c.fewerSteps ? ', each run its own steps' : ''}) | ${mib(c.on?.peakMemoryKb)} | ${mib(c.off?.peakMemoryKb)} | ${ratio(c.on?.peakMemoryKb, c.off?.peakMemoryKb)} | ${c.kamailio ? `${mib(c.kamailio.peakMemoryKb)} (PSS)` : '–'} |`);
  out.push(`| history conversations / messages stored at the end | ${store(c.on)} | ${store(c.off)} | | |`);
  out.push(`| parley.db + WAL at the end | ${dbSize(c.on)} | ${dbSize(c.off)} | | |`);
  out.push('', `History on / off: ${c.verdict}.`, '');
  return out;
}

/**
 * The held target is met by a step that passed (under 1 % failed, the rate carried) with its p99 at
 * most the target; a step whose calls all failed has no p99 (NaN, null once through report.json).
 */
const heldMet = (h: HeldStep): boolean => h.passed && typeof h.p99Ms === 'number' && Number.isFinite(h.p99Ms) && h.p99Ms <= HOLD_TARGET_P99_MS;

/** The held check's rows (full runs): 80 % of each run's max rate for 60 s, p99 against the target. */
function heldSection(rep: BenchReport): string[] {
  const rows: string[] = [];
  for (const s of rep.scenarios) {
    for (const { server, title, run } of runsOf(s)) {
      const h = run?.held;
      if (!h) continue;
      const secs = Math.round(h.calls / h.rate);
      rows.push(`| ${title} | ${server} | ${h.rate} (80 % of ${h.ofRate}) for ${secs} s | ${f0(h.achieved)} | ${h.calls} | ${h.failed} | ${h.p50Ms ?? '–'} / **${h.p99Ms ?? '–'}** ms | ${heldMet(h) ? 'yes' : 'NO'} | ${cpuText(h)} | ${h.otherCpu === undefined ? '–' : `${(h.otherCpu * 100).toFixed(0)} %`} | ${mib(run!.peakMemoryKb)} |`);
    }
  }
  if (rows.length === 0) return [];
  return [
    '### p99 held at 80 % of the max rate for 60 s',
    '',
    `After its steps, each run offers 80 % of its highest passing rate for 60 s, on the same server (issue 20's target: p99 ≤ ${HOLD_TARGET_P99_MS} ms in every run). Full runs only.`,
    '',
    `| scenario | server | offered/s | ok/s | calls | failed | p50 / p99 | p99 ≤ ${HOLD_TARGET_P99_MS} ms | CPU | other on core 0 | peak mem (whole run) |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ];
}

function cell(r: ServerRun | undefined, topRate: number): [string, string, string, string] {
  const b = best(r);
  if (!r) return ['–', '–', '–', '–'];
  if (!b) return ['none passed', '–', '–', mib(r.peakMemoryKb)];
  // issue 20 counts the peak up to the highest passing step; the whole run's adds the overloaded steps after it
  const memory = b.peakMemoryKb === undefined ? mib(r.peakMemoryKb) : `${mib(b.peakMemoryKb)} (run: ${mib(r.peakMemoryKb)})`;
  return [`${b.rate === topRate ? '≥ ' : ''}${b.rate} (${f0(b.achieved)} ok/s)`, `${b.p50Ms} / ${b.p99Ms} ms`, cpuText(b), memory];
}

function markdown(rep: BenchReport): string {
  const out: string[] = [];
  out.push('# Parley vs Kamailio: benchmark results', '');
  const flag = rep.smoke ? ' -- --smoke' : rep.quick ? ' -- --quick' : '';
  const what = rep.smoke ? ' **Smoke run**: one short step per scenario; it checks the harness, it measures nothing.' : rep.quick ? ' **Quick run**: few, short steps; numbers are indicative, not final.' : '';
  out.push(`Generated by \`npm run bench${flag}\` on ${rep.date}.${what}`, '');
  out.push(
    rep.parleyDatabase === 'postgres'
      ? '**Parley ran on PostgreSQL** (`--database postgres`): each Parley server on a fresh database of the machine\'s PostgreSQL server, reached through its Unix socket. PostgreSQL is a separate server the bench does not start and does **not** pin: its processes run on either core, so Parley + PostgreSQL had more than core 0. Its CPU is shown beside Parley\'s ("+ PostgreSQL"), read from /proc: the backends serving Parley\'s connections (their command line names the bench\'s database), then the whole server (every postgres process: its WAL writer and checkpointer, and any other client\'s work on the same server).'
      : 'Parley ran on SQLite in its data directory (the default; `--database postgres` runs it on PostgreSQL).',
    '',
  );
  out.push('## Machine', '', ...rep.machine.map((m) => `- ${m}`), '');
  out.push('## Method', '', rep.criteria, '');
  out.push('## Results', '');
  out.push('Max rate = highest offered rate (calls/s) meeting the criteria, with the successful calls per second sipp measured at it; "≥" when it is the highest step offered (the ratio is then a bound). The ratio is Parley / Kamailio. Scenario 2 runs against Parley twice, Conversation History on and off for every user (the comparison is below the table); Kamailio once. Latency and CPU (share of one core) are at that rate. Peak mem: the highest reading from the server\'s start to the end of the max rate\'s step, and in brackets over the whole run (the overloaded steps after it, and the held step, included).', '');
  out.push('| scenario | Parley max rate | Kamailio max rate | ratio | Parley p50/p99 | Kamailio p50/p99 | Parley CPU | Kamailio CPU | Parley peak mem | Kamailio peak mem |');
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const s of rep.scenarios) {
    if (s.pending) {
      out.push(`| ${s.title} | ${s.pending} | | | | | | | | |`);
      continue;
    }
    // the variant's row (history off) sits under the scenario's, against the same Kamailio run
    const rows: Array<{ title: string; parley: ServerRun | undefined }> = [{ title: rowTitle(s), parley: s.parley }];
    if (s.variant) rows.push({ title: rowTitle(s, s.variant.label), parley: s.variant.parley });
    for (const { title, parley } of rows) {
      const p = cell(parley, rep.topRate);
      const k = cell(s.kamailio, rep.topRate);
      const pb = best(parley);
      const kb = best(s.kamailio);
      const capped = pb?.rate === rep.topRate || kb?.rate === rep.topRate;
      const ratio = s.noRatio ? `none: ${s.noRatio}` : pb && kb ? `${capped ? '≈' : ''}${(pb.rate / kb.rate).toFixed(2)}×` : '–';
      out.push(`| ${title} | ${p[0]} | ${k[0]} | ${ratio} | ${p[1]} | ${k[1]} | ${p[2]} | ${k[2]} | ${p[3]} | ${k[3]} |`);
    }
  }
  out.push('');
  const history = historyComparison(rep.scenarios.find((x) => x.variant));
  if (history) out.push(...historySection(rep, history));
  out.push(...heldSection(rep));
  out.push(...idleSection('Idle SIP-over-WebSocket registrations (Parley only)', rep.ws));
  if (rep.tlsIdle && rep.tlsIdle.length > 0) out.push(...idleSection('Idle SIP-over-TLS registrations (Parley only)', rep.tlsIdle));
  const offline = rep.scenarios.find((x) => x.title.startsWith('3.'));
  const commits = (offline?.parley?.steps ?? []).filter((st) => st.commit && st.commit.batches > 0);
  if (commits.length > 0) {
    out.push('### Offline MESSAGE: Parley\'s group commits (scenario 3)', '');
    out.push(
      rep.parleyDatabase === 'postgres'
        ? 'One commit = one PostgreSQL transaction (synchronous_commit on: the PostgreSQL server flushes its WAL before it answers the COMMIT) for every message of the batch, before their 202s. Commit time is from handing the batch to the spool writer (on PostgreSQL it runs on the event loop, over the connection pool) until its transaction committed; the event loop goes on meanwhile, and the messages that arrive wait for the next batch; the largest batch and the longest commit are over the run up to that step.'
        : 'One commit = one SQLite transaction = one WAL fsync for every message of the batch, before their 202s. Commit time is from handing the batch to the spool writer thread until it answered (its transaction: writes + fsync; the event loop goes on meanwhile, and the messages that arrive wait for the next batch); the largest batch and the longest commit are over the run up to that step.',
      '',
    );
    out.push('| offered/s | 202/s | commits/s | messages per commit (mean) | batch sizes | commit time (mean) | longest commit | largest batch |', '|---|---|---|---|---|---|---|---|');
    for (const st of commits) {
      const c = st.commit!;
      const wall = Math.max(st.elapsedSec, st.calls / st.rate);
      const sizes = Object.entries(c.sizes).sort((a, b) => Number(a[0].split('-')[0]) - Number(b[0].split('-')[0])).map(([k, v]) => `${k}: ${v}`).join(', ');
      out.push(`| ${st.rate} | ${f0(st.achieved)} | ${f0(c.batches / wall)} | ${(c.items / c.batches).toFixed(1)} | ${sizes} | ${(c.commitMs / c.batches).toFixed(2)} ms | ${c.maxCommitMs.toFixed(1)} ms | ${c.maxBatch} |`);
    }
    out.push('');
  }
  if (rep.fanout) {
    const f = rep.fanout;
    out.push(
      '### Presence fan-out (Parley only)',
      '',
      `One user with ${f.watchers} watchers (each its own TCP connection with one presence subscription; the watchers are raw clients in ${f.watcherProcesses === 1 ? 'a process' : `${f.watcherProcesses} processes`} on core 1 that answer like a sipp UAS: framing by Content-Length, a 200 copying the NOTIFY's Via, From, To, Call-ID and CSeq, no full parse) PUBLISHes a new state; every watcher gets a NOTIFY. Median of ${f.rounds} rounds after a warm-up; times from the PUBLISH to the NOTIFY's arrival. CPU per NOTIFY from /proc over the rounds (the server's includes reading the watcher's 200): where the watchers' is well under the server's, the times are the server's.`,
      '',
      '| watchers | NOTIFYs/s | first / median / last watcher | best / worst last watcher | subscribing all | server CPU over the rounds | server CPU per NOTIFY | watchers\' CPU per NOTIFY | server RSS |',
      '|---|---|---|---|---|---|---|---|---|',
      `| ${f.watchers} | ${f0(f.notifiesPerSecond)} | ${f0(f.firstNotifyMs)} / ${f0(f.medianNotifyMs)} / ${f0(f.lastNotifyMs)} ms | ${f0(f.best.lastNotifyMs)} / ${f0(f.worst.lastNotifyMs)} ms | ${f0(f.setupMs)} ms | ${f.serverCpuSeconds === null ? '–' : `${f.serverCpuSeconds.toFixed(2)} s`} | ${f.serverCpuPerNotifyUs === null ? '–' : `${f0(f.serverCpuPerNotifyUs)} µs`} | ${f0(f.loadCpuPerNotifyUs)} µs | ${f.serverRssMiB === null ? '–' : `${f.serverRssMiB.toFixed(1)} MiB`} |`,
      '',
    );
  }
  if (rep.drain) {
    const d = rep.drain;
    out.push('### Spool drain into the embedded mailbox (Parley only)', '');
    if (rep.drainMethod) out.push(rep.drainMethod, '');
    out.push('| spool entries | messages in them | delivered | failed | mailbox items created | drain time | entries/s | entries/s, first / second half | mailbox items/s | CPU |', '|---|---|---|---|---|---|---|---|---|---|');
    out.push(`| ${d.entries} | ${d.messages} (${(d.messages / Math.max(1, d.entries)).toFixed(1)} per entry) | ${d.delivered} | ${d.failed} | ${d.items} | ${d.busySec.toFixed(1)} s (first delivery after ${d.startSec.toFixed(1)} s) | ${f0(d.entriesPerSec)} | ${f0(d.halves[0])} / ${f0(d.halves[1])} | ${f0(d.itemsPerSec)} | ${cpuText({ cpu: d.cpu, postgresCpu: d.postgresCpu })} |`);
    if (d.incomplete) out.push('', `**Incomplete:** ${d.incomplete}.`);
    out.push('');
  }
  if (rep.cluster) out.push(...clusterSection(rep.cluster, rep.topRate));
  out.push('## Every step', '', '| scenario | server | offered/s | ok/s | calls | failed | p50 | p99 | CPU | other on core 0 | UDP drops | pass |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const s of rep.scenarios) {
    for (const { server: name, title, run: r } of runsOf(s)) {
      for (const st of r?.steps ?? []) {
        out.push(`| ${title} | ${name} | ${st.rate} | ${f0(st.achieved)} | ${st.calls} | ${st.failed} | ${st.p50Ms} ms | ${st.p99Ms} ms | ${cpuText(st)} | ${st.otherCpu === undefined ? '–' : `${(st.otherCpu * 100).toFixed(0)} %`} | ${st.udpDrops} | ${st.passed ? 'yes' : 'no'} |`);
      }
    }
  }
  out.push('', '![throughput](throughput.svg)', '', '## Notes', '', ...rep.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

/** The last step at each offered rate (a retried step counts once). */
const lastAt = (r: ServerRun | undefined) => new Map((r?.steps ?? []).map((st) => [st.rate, st]));
const ms = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : `${n.toFixed(2)} ms`);
const signedMs = (n: number) => (Number.isNaN(n) ? '–' : `${n >= 0 ? '+' : ''}${Number.isInteger(n) ? n : n.toFixed(2)} ms`);

function clusterSection(c: ClusterReport, topRate: number): string[] {
  const out: string[] = ['## Cluster (issue 16)', '', c.method, '', c.placement, ''];
  if (c.pending) out.push(`MESSAGE and REGISTER through the cluster: ${c.pending}.`, '');
  else {
    out.push('| scenario | one node: max rate | 2-node cluster: max rate | cluster / one node | one node p50/p99 | cluster p50/p99 | one node CPU | cluster CPU (both nodes) | one node peak mem | cluster peak mem (both nodes) |', '|---|---|---|---|---|---|---|---|---|---|');
    for (const [title, one, two] of [['REGISTER + digest', c.single?.register, c.cluster?.register], ['MESSAGE relayed (cluster: every one over a hop)', c.single?.message, c.cluster?.message]] as const) {
      const a = cell(one, topRate);
      const b = cell(two, topRate);
      const ba = best(one);
      const bb = best(two);
      out.push(`| ${title} | ${a[0]} | ${b[0]} | ${ba && bb ? `${(bb.rate / ba.rate).toFixed(2)}×` : '–'} | ${a[1]} | ${b[1]} | ${a[2]} | ${b[2]} | ${a[3]} | ${b[3]} |`);
    }
    out.push('');
    // the hop: the same offered rate on both, latency and CPU side by side
    const one = lastAt(c.single?.message);
    const two = lastAt(c.cluster?.message);
    const rates = [...one.keys()].filter((r) => two.has(r)).sort((a, b) => a - b);
    if (rates.length > 0) {
      out.push(
        'What the hop costs a relayed MESSAGE: the same offered rate through one node and through the cluster (every MESSAGE received by one node and delivered by the other), response times of the authenticated MESSAGE as sipp measured them (whole milliseconds per sample; the mean resolves what p50 cannot). CPU per message: the server processes\' CPU (both nodes for the cluster) over the messages carried.',
        '',
        '| offered/s | one node p50 / p99 / mean | cluster p50 / p99 / mean | added p50 / p99 / mean | one node CPU | cluster CPU | CPU per message, one node → cluster | both passed |',
        '|---|---|---|---|---|---|---|---|',
      );
      for (const r of rates) {
        const a = one.get(r)!;
        const b = two.get(r)!;
        const perMsg = (st: StepRecord) => (st.achieved > 0 ? `${((st.cpu / st.achieved) * 1e6).toFixed(0)} µs` : '–');
        out.push(`| ${r} | ${a.p50Ms} / ${a.p99Ms} / ${ms(a.meanMs)} | ${b.p50Ms} / ${b.p99Ms} / ${ms(b.meanMs)} | ${signedMs(b.p50Ms - a.p50Ms)} / ${signedMs(b.p99Ms - a.p99Ms)} / ${signedMs((b.meanMs ?? NaN) - (a.meanMs ?? NaN))} | ${cpuText(a)} | ${cpuText(b)} | ${perMsg(a)} → ${perMsg(b)} | ${a.passed && b.passed ? 'yes' : 'no'} |`);
      }
      out.push('');
    }
    const [p1, p2] = [c.single?.probe, c.cluster?.probe];
    if (p1 && p2) {
      const us = (n: number) => (Number.isNaN(n) ? '–' : `${(n / 1000).toFixed(3)} ms`);
      const added = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? '–' : `${b >= a ? '+' : ''}${((b - a) / 1000).toFixed(3)} ms`);
      out.push(
        `The hop alone, finer than sipp's milliseconds (bench/cluster-probe.ts, after the steps, the sipp receivers still registered): one sender, one MESSAGE at a time, ${p1.samples + p1.failed} of them 5 ms apart, each timed from the authenticated MESSAGE to the receiver's 200 (performance.now(), on core 1 beside the idle sipp processes).`,
        '',
        '| | MESSAGEs answered 200 | failed | p50 | p90 | p99 | mean |',
        '|---|---|---|---|---|---|---|',
        `| one node | ${p1.samples} | ${p1.failed}${p1.firstError ? ` (${p1.firstError})` : ''} | ${us(p1.p50Us)} | ${us(p1.p90Us)} | ${us(p1.p99Us)} | ${us(p1.meanUs)} |`,
        `| cluster, over a hop | ${p2.samples} | ${p2.failed}${p2.firstError ? ` (${p2.firstError})` : ''} | ${us(p2.p50Us)} | ${us(p2.p90Us)} | ${us(p2.p99Us)} | ${us(p2.meanUs)} |`,
        `| added by the hop | | | ${added(p1.p50Us, p2.p50Us)} | ${added(p1.p90Us, p2.p90Us)} | ${added(p1.p99Us, p2.p99Us)} | ${added(p1.meanUs, p2.meanUs)} |`,
        '',
      );
    }
    out.push('Every step:', '', '| run | offered/s | ok/s | calls | failed | p50 | p99 | mean | CPU | other on core 0 | UDP drops | pass |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const [title, r] of [['one node, REGISTER', c.single?.register], ['cluster, REGISTER', c.cluster?.register], ['one node, MESSAGE', c.single?.message], ['cluster, MESSAGE', c.cluster?.message]] as const) {
      for (const st of r?.steps ?? []) {
        out.push(`| ${title} | ${st.rate} | ${f0(st.achieved)} | ${st.calls} | ${st.failed} | ${st.p50Ms} ms | ${st.p99Ms} ms | ${ms(st.meanMs)} | ${cpuText(st)} | ${st.otherCpu === undefined ? '–' : `${(st.otherCpu * 100).toFixed(0)} %`} | ${st.udpDrops} | ${st.passed ? 'yes' : 'no'} |`);
      }
    }
    out.push('');
  }
  for (const w of c.ws) {
    out.push(`### ${w.count} idle WebSocket registrations across ${w.nodes.length || 'the'} nodes`, '');
    if (w.skipped) {
      out.push(`Not run: ${w.skipped}.`, '');
      continue;
    }
    const kib = (kb: number, n: number) => (n > 0 ? `${(kb / n).toFixed(1)} KiB` : '–');
    out.push('| node | core | registered | failed | RSS before | RSS after | per registration |', '|---|---|---|---|---|---|---|');
    for (const n of w.nodes) out.push(`| ${n.node} | ${n.core} | ${n.registered} | ${n.failed} | ${mib(n.rssBeforeKb)} | ${mib(n.rssAfterKb)} | ${kib(n.rssAfterKb - n.rssBeforeKb, n.registered)} |`);
    const registered = w.nodes.reduce((s, n) => s + n.registered, 0);
    const before = w.nodes.reduce((s, n) => s + n.rssBeforeKb, 0);
    const after = w.nodes.reduce((s, n) => s + n.rssAfterKb, 0);
    out.push(`| all | | ${registered} | ${w.nodes.reduce((s, n) => s + n.failed, 0)}${w.firstError ? ` (${w.firstError})` : ''} | ${mib(before)} | ${mib(after)} | ${kib(after - before, registered)} |`);
    if (w.redisBefore && w.redisAfter) {
      const grew = w.redisAfter.usedBytes - w.redisBefore.usedBytes;
      out.push(`| Redis | | keys ${w.redisBefore.keys} → ${w.redisAfter.keys} | | used_memory ${mib(w.redisBefore.usedBytes / 1024)} (RSS ${mib(w.redisBefore.rssBytes / 1024)}) | used_memory ${mib(w.redisAfter.usedBytes / 1024)} (RSS ${mib(w.redisAfter.rssBytes / 1024)}) | ${registered > 0 ? `${(grew / registered).toFixed(0)} B` : '–'} |`);
    }
    out.push('', `All ${registered} registered in ${w.setupSec?.toFixed(1) ?? '–'} s (REGISTER, 401, REGISTER with MD5 digest, 200 on each connection; 100 set up at once per load generator).`, '');
  }
  return out;
}

const PARLEY_COLOUR = '#d9480f';
const KAMAILIO_COLOUR = '#1c7ed6';
const VARIANT_COLOUR = '#f59f00';

function svg(rep: BenchReport): string {
  const measured = rep.scenarios.filter((s) => !s.pending);
  const W = 460;
  const H = 320;
  const pad = { l: 60, r: 20, t: 40, b: 50 };
  const parts: string[] = [];
  const PER_ROW = 4;
  measured.forEach((s, i) => {
    const x0 = (i % PER_ROW) * W;
    const y0 = Math.floor(i / PER_ROW) * H;
    const all = [...(s.parley?.steps ?? []), ...(s.variant?.parley?.steps ?? []), ...(s.kamailio?.steps ?? [])];
    const maxX = Math.max(1, ...all.map((p) => p.rate));
    const maxY = Math.max(1, ...all.map((p) => p.achieved), maxX);
    const sx = (v: number) => x0 + pad.l + (v / maxX) * (W - pad.l - pad.r);
    const sy = (v: number) => y0 + H - pad.b - (v / maxY) * (H - pad.t - pad.b);
    parts.push(`<text x="${x0 + W / 2}" y="${y0 + 20}" text-anchor="middle" font-size="12">${s.title}</text>`);
    parts.push(`<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(maxX)}" y2="${sy(0)}" stroke="#000"/><line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(0)}" y2="${sy(maxY)}" stroke="#000"/>`);
    parts.push(`<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(maxX)}" y2="${sy(maxX)}" stroke="#bbb" stroke-dasharray="4 4"/>`);
    for (let k = 0; k <= 4; k++) {
      const vx = (maxX * k) / 4;
      const vy = (maxY * k) / 4;
      parts.push(`<text x="${sx(vx)}" y="${y0 + H - pad.b + 16}" text-anchor="middle" font-size="10">${vx.toFixed(0)}</text>`);
      parts.push(`<text x="${sx(0) - 6}" y="${sy(vy) + 3}" text-anchor="end" font-size="10">${vy.toFixed(0)}</text>`);
    }
    parts.push(`<text x="${x0 + W / 2}" y="${y0 + H - 12}" text-anchor="middle" font-size="11">offered calls/s</text>`);
    parts.push(`<text x="${x0 + 14}" y="${y0 + H / 2}" font-size="11" transform="rotate(-90 ${x0 + 14} ${y0 + H / 2})" text-anchor="middle">successful calls/s</text>`);
    // the variant (scenario 2, history off): Parley's colour, dashed
    const series: Array<[ServerRun | undefined, string, string]> = [[s.parley, PARLEY_COLOUR, ''], [s.kamailio, KAMAILIO_COLOUR, ''], [s.variant?.parley, VARIANT_COLOUR, ' stroke-dasharray="6 3"']];
    for (const [r, color, dash] of series) {
      const pts = (r?.steps ?? []).map((p) => `${sx(p.rate).toFixed(1)},${sy(p.achieved).toFixed(1)}`);
      if (pts.length) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`);
      for (const p of r?.steps ?? []) parts.push(`<circle cx="${sx(p.rate).toFixed(1)}" cy="${sy(p.achieved).toFixed(1)}" r="3" fill="${p.passed ? color : '#fff'}" stroke="${color}"/>`);
    }
  });
  const width = Math.max(1, Math.min(PER_ROW, measured.length)) * W;
  const height = Math.max(1, Math.ceil(measured.length / PER_ROW)) * H;
  const variant = measured.find((s) => s.variant?.parley);
  const parleyName = 'Parley';
  const at = 140;
  parts.push(`<g font-size="11"><rect x="70" y="${pad.t - 8}" width="10" height="10" fill="${PARLEY_COLOUR}"/><text x="84" y="${pad.t + 1}">${parleyName}</text><rect x="${at}" y="${pad.t - 8}" width="10" height="10" fill="${KAMAILIO_COLOUR}"/><text x="${at + 14}" y="${pad.t + 1}">Kamailio</text><text x="${at + 80}" y="${pad.t + 1}">hollow = step failed the criteria</text>${variant ? `<line x1="70" y1="${pad.t + 12}" x2="80" y2="${pad.t + 12}" stroke="${VARIANT_COLOUR}" stroke-width="2" stroke-dasharray="4 2"/><text x="84" y="${pad.t + 16}">Parley, ${variant.variant!.label} (${variant.title})</text>` : ''}</g>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}

export async function writeReport(dir: string, rep: BenchReport): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'RESULTS.md'), markdown(rep));
  await writeFile(path.join(dir, 'throughput.svg'), svg(rep));
  // the report's data, so that runs of different scenarios can be put together (bench/merge-reports.ts)
  await writeFile(path.join(dir, 'report.json'), `${JSON.stringify(rep, null, 1)}\n`);
}

/** The table of idle registrations over one transport: RSS before, at half and after, per connection. */
function idleSection(title: string, runs: readonly WsReport[]): string[] {
  const out = [`### ${title}`, ''];
  out.push('| connections | registered | failed | RSS before | RSS at half | RSS after | per connection, all | per connection, second half |', '|---|---|---|---|---|---|---|---|');
  for (const w of runs) {
    if (w.skipped) {
      out.push(`| ${w.count} | not run: ${w.skipped} | | | | | | |`);
      continue;
    }
    const per = (from: number | undefined, to: number | undefined, n: number | undefined) => (from !== undefined && to !== undefined && n ? `${((to - from) / n).toFixed(1)} KiB` : '–');
    out.push(
      `| ${w.count} | ${w.registered} | ${w.failed}${w.firstError ? ` (${w.firstError})` : ''} | ${mib(w.rssBeforeKb)} | ${mib(w.rssHalfKb)} | ${mib(w.rssAfterKb)} | ${per(w.rssBeforeKb, w.rssAfterKb, w.registered)} | ${per(w.rssHalfKb, w.rssAfterKb, w.secondHalf)} |`,
    );
  }
  out.push('');
  return out;
}
