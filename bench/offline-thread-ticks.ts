// The CPU each thread of this process has used, by thread name (the benches' split of a call's
// CPU: "MainThread", a writer thread is "WorkerThread", V8's helpers "V8Worker"), in clock ticks
// (10 ms, USER_HZ 100): utime + stime of each task's stat under /proc/self/task. Linux only.
import { readdirSync, readFileSync } from 'node:fs';

export function threadTicks(): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const task of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${task}/stat`, 'latin1');
    } catch {
      // the thread ended meanwhile
      continue;
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks.set(name, (ticks.get(name) ?? 0) + Number(fields[11]) + Number(fields[12]));
  }
  return ticks;
}

/** A clock tick in µs. */
export const TICK_US = 10_000;
