// The young generation's size, for the whole process (its threads too). V8 grows it, two
// semi-spaces that a scavenge copies live objects between, up to 2 × 32 MiB on this kind of machine
// when much survives a scavenge, and keeps it: for Parley, 64-128 MiB of RSS under load, and
// scavenges of 10-100 ms (several hundred on a busy core: the p99 of a first bench step), since a
// scavenge copies what is alive and a large new space holds more requests in flight. Held at 2 × 8
// MiB, a scavenge comes every 8 MiB allocated and copies only the requests in flight then (issue
// 20: at 800 requests/s, 2-5 ms scavenges, peak RSS 60-90 MiB lower; 2 × 1 MiB scavenged 40 times a
// second and cost measurably more CPU).
//
// `--max-semi-space-size` says it directly, but V8 reads it only when the isolate is made, before
// any JS runs; bin/parley passes it. For `node src/cli.ts` (npm start, the bench, the tests) the
// growth factor, which V8 reads at each resize, is set to 1 here instead: the young generation
// stays at the size loading the modules gave it (2 × 8 MiB: this module is imported first by
// cli.ts, but Node loads the whole import graph before it evaluates any module). A
// --max-semi-space-size given to Node (NODE_OPTIONS, the command line) is left to rule.
import { setFlagsFromString } from 'node:v8';

const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) => flag.startsWith('--max-semi-space-size'));
if (!given) setFlagsFromString('--semi-space-growth-factor=1');
