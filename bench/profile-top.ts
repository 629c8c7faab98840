// Hot spots of a V8 CPU profile (`node --cpu-prof`, see BENCH_CPU_PROF in bench/servers.ts):
//   node bench/profile-top.ts FILE.cpuprofile [--top 25] [--filter src/offline/] [--last SECONDS] [--busy]
// prints the functions with the most self time, the most inclusive time (the function and what it
// calls, each function counted once per stack), and self time per file, as shares of all samples
// (idle and GC included, so that the shares add up to the process's wall time on the profiler's clock).
// `--last S` keeps only the samples of the profile's last S seconds (e.g. the spool drain, which
// ends the offline scenario before the server stops). `--busy` leaves the idle samples out, so the
// shares are of the time the process was running (or blocked in a system call such as fsync).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function where(f: CallFrame): string {
  if (!f.url) return '(native)';
  let u = f.url;
  if (u.startsWith('file://')) u = path.relative(REPO_ROOT, fileURLToPath(u));
  return `${u}:${f.lineNumber + 1}`;
}

function label(f: CallFrame): string {
  const name = f.functionName || '(anonymous)';
  return f.url ? `${name} ${where(f)}` : name;
}

function fileOf(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  const w = where(f);
  return w.slice(0, w.lastIndexOf(':'));
}

export interface HotSpots {
  totalMs: number;
  self: Array<[string, number]>;
  inclusive: Array<[string, number]>;
  files: Array<[string, number]>;
}

export function hotSpots(profile: CpuProfile, lastSec?: number, busy = false): HotSpots {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // self time per node: the sampled intervals (timeDeltas) when present, else hit counts x 1 ms
  const selfUs = new Map<number, number>();
  if (profile.samples && profile.timeDeltas && profile.samples.length === profile.timeDeltas.length) {
    let from = 0;
    if (lastSec !== undefined) {
      // walk back from the end until lastSec of sampled time is covered
      let acc = 0;
      for (from = profile.samples.length - 1; from > 0 && acc < lastSec * 1e6; from--) acc += Math.max(0, profile.timeDeltas[from]!);
    }
    for (let i = from; i < profile.samples.length; i++) {
      // timeDeltas[i] is the time before sample i; charge it to the next sample's node (as DevTools does)
      const id = profile.samples[i]!;
      const dt = profile.timeDeltas[i + 1] ?? 0;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
    }
  } else {
    for (const n of profile.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * 1000);
  }
  let total = 0;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of selfUs) {
    if (us === 0) continue;
    const node = byId.get(id)!;
    if (busy && node.callFrame.functionName === '(idle)') continue;
    total += us;
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    const file = fileOf(node.callFrame);
    files.set(file, (files.get(file) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = label(byId.get(cur)!.callFrame);
      if (k === '(root)' || seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { totalMs: total / 1000, self: sorted(self), inclusive: sorted(incl), files: sorted(files) };
}

function main(): void {
  process.stdout.on('error', () => process.exit(0)); // piped into head
  const args = process.argv.slice(2);
  const withValue = new Set(['--top', '--filter', '--last']);
  const file = args.find((a, i) => !a.startsWith('--') && !withValue.has(args[i - 1] ?? ''));
  if (!file) {
    process.stderr.write('usage: node bench/profile-top.ts FILE.cpuprofile [--top N] [--filter TEXT]\n');
    process.exit(2);
  }
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const filterAt = args.indexOf('--filter');
  const filter = filterAt >= 0 ? args[filterAt + 1] : undefined;
  const lastAt = args.indexOf('--last');
  const h = hotSpots(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, lastAt >= 0 ? Number(args[lastAt + 1]) : undefined, args.includes('--busy'));
  const pct = (us: number) => `${((100 * us) / (h.totalMs * 1000)).toFixed(1).padStart(5)} %`;
  const show = (title: string, rows: Array<[string, number]>) => {
    process.stdout.write(`\n${title}\n`);
    for (const [k, us] of rows.filter(([k]) => !filter || k.includes(filter)).slice(0, top)) process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}\n`);
  };
  process.stdout.write(`${file}: ${(h.totalMs / 1000).toFixed(1)} s sampled${args.includes('--busy') ? ' (idle left out)' : ''}\n`);
  show('self time', h.self);
  show('inclusive time (function and its callees)', h.inclusive);
  show('self time per file', h.files);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
