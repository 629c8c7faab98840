// The heap's shape under load: the young generation's size, and how far the old one grows between
// collections (below).
//
// The young generation's size. V8 grows it (two semi-spaces a scavenge copies live objects between)
// up to 2 × 32 MiB on this kind of machine when much survives a scavenge, and keeps it: for
// Parley under load, 64-128 MiB of RSS and scavenges of 10-100 ms (hundreds on a busy core: the
// p99 of a first bench step), as a scavenge copies what is alive and a large young generation
// holds more requests in flight. Held at 2 × 8 MiB, a scavenge comes every 8 MiB allocated and
// copies only the requests in flight then (issue 20: at 800 requests/s, scavenges of 1-5 ms, peak
// RSS 20-90 MiB lower for about the same CPU; at 2 × 1 MiB, 40 scavenges a second).
//
// `--max-semi-space-size` says it directly, but V8 reads it only when the isolate is made, before
// any JS runs; bin/parley passes it. For `node src/cli.ts` (npm start, the bench, the tests) the
// growth factor, which V8 reads at each resize, does it instead: after each collection it is set
// so that the next growth reaches 2 × 8 MiB exactly, and to 1 (no growth) once there. V8 also
// shrinks the young generation when the process idles, so this is kept up for the process's
// life, not set once. A --max-semi-space-size given to Node (NODE_OPTIONS, the command line) is
// left to rule.
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** one semi-space's capacity held, bytes */
const SEMI_SPACE_BYTES = 8 * 1024 * 1024;

/** true when Node was given the V8 flag `name` (command line or NODE_OPTIONS): it is left to rule */
function givenToNode(name: string): boolean {
  return [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) => flag.startsWith(name));
}

if (!givenToNode('--max-semi-space-size')) {
  let factor = 2; // V8's default
  const hold = (): void => {
    // a semi-space's capacity: what is used of it and what is left (new_space's size counts both
    // semi-spaces, or one when V8 has given the idle one's memory back)
    const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    const semi = space === undefined ? SEMI_SPACE_BYTES : space.space_used_size + space.space_available_size;
    const wanted = Math.max(1, Math.round(SEMI_SPACE_BYTES / Math.max(semi, 1)));
    if (wanted === factor) return;
    factor = wanted;
    setFlagsFromString(`--semi-space-growth-factor=${factor}`);
  };
  hold();
  new PerformanceObserver(hold).observe({ entryTypes: ['gc'] });
}

// The old generation. After each mark-compact V8 lets the old generation grow to its live size
// times a factor it picks from how fast it marks against how fast the program allocates: for
// Parley, 4 (its largest), as marking 25-30 MiB of live objects is quick. What grows it between
// collections is what scavenges promoted and is dead by the next mark-compact (requests that
// were in flight at a scavenge): ~0.4 KB per REGISTER call, 3 MB/s at 8,000 calls/s, so the old
// generation reached ~100 MiB of RSS before V8 collected it (issue 20: peak RSS 267 MiB). At 1.5
// it is collected at ~40 MiB: at 8,000/s a mark-compact every few seconds, each a ~10 ms pause
// and some incremental marking, instead of one every ~20 s. `--heap-growing-percent` given to
// Node wins.
const OLD_GENERATION_GROWTH_PERCENT = 50;
if (!givenToNode('--heap-growing-percent')) {
  setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWTH_PERCENT}`);
}
