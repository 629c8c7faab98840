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

const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) => flag.startsWith('--max-semi-space-size'));
if (!given) {
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
