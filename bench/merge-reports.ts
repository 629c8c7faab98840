// Puts the reports of several bench runs of different scenarios into one bench/RESULTS.md:
//
//   node bench/merge-reports.ts --out bench A/report.json B/report.json ...
//
// Each `node bench/run.ts --scenarios … --out DIR` writes DIR/report.json beside its RESULTS.md. A
// full run takes most of an hour; run in parts (say scenarios 1-3, then the stream transports, then
// the idle and fan-out ones), each on a quiet machine, and merged here, the parts can be redone one at
// a time. The scenarios come in the order given; a scenario that several reports measured is taken from
// the last of them (a re-run replaces the earlier one); the same for the one-off sections (idle
// registrations, fan-out, drain, cluster). The machine lines and the date are the last report's,
// and a note lists the parts with their dates.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeReport } from './report.ts';
import type { BenchReport, ScenarioReport } from './report.ts';

const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
if (values.out === undefined || positionals.length === 0) {
  console.error('usage: node bench/merge-reports.ts --out DIR RUN1/report.json [RUN2/report.json ...]');
  process.exit(2);
}
const parts = positionals.map((file) => ({ file, rep: JSON.parse(readFileSync(file, 'utf8')) as BenchReport }));
if (parts.some((p) => p.rep.quick || p.rep.smoke)) {
  console.error('merge-reports: a --quick or --smoke report is not one to quote; merge full runs only');
  process.exit(2);
}

// by title: a run that did not measure a scenario still lists it ("not run"), which fills a gap
// but never replaces a measured one
const scenarios = new Map<string, ScenarioReport>();
for (const { rep } of parts) {
  for (const s of rep.scenarios) {
    if (s.pending && scenarios.has(s.title)) continue;
    scenarios.set(s.title, s);
  }
}
const last = parts.at(-1)!.rep;
const lastWith = <K extends keyof BenchReport>(k: K): BenchReport[K] | undefined => parts.map((p) => p.rep[k]).filter((v) => v !== undefined && !(Array.isArray(v) && v.length === 0)).at(-1);

const merged: BenchReport = {
  ...last,
  scenarios: [...scenarios.values()],
  ws: lastWith('ws') ?? [],
  topRate: Math.max(...parts.map((p) => p.rep.topRate)),
  notes: [
    ...new Set(parts.flatMap((p) => p.rep.notes)),
    `Put together from ${parts.length} runs (bench/merge-reports.ts): ${parts.map((p) => `${path.basename(path.dirname(p.file))} of ${p.rep.date} (${[...new Set(p.rep.scenarios.map((s) => s.title.split('.')[0]))].join(', ') || 'no SIP scenarios'}${p.rep.ws.length > 0 ? ', idle WebSocket' : ''}${p.rep.tlsIdle?.length ? ', idle TLS' : ''}${p.rep.fanout ? ', fan-out' : ''}${p.rep.cluster ? ', cluster' : ''})`).join('; ')}.`,
  ],
};
for (const k of ['tlsIdle', 'drain', 'drainMethod', 'fanout', 'cluster'] as const) {
  const v = lastWith(k);
  if (v === undefined) delete merged[k];
  else (merged as unknown as Record<string, unknown>)[k] = v;
}
await writeReport(path.resolve(values.out), merged);
console.log(`merge-reports: wrote ${path.resolve(values.out)}/RESULTS.md from ${parts.length} reports`);
