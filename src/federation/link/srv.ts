// The order in which a partner's servers are tried: RFC 2782's priority and weight. Pure: the
// random numbers are passed in, so the order is testable.
import type { SrvRecord } from '../../dns/index.ts';

/**
 * RFC 2782, "Usage rules": the lowest priority first; within one priority, repeatedly pick a record
 * with probability proportional to its weight — "arrange all SRV RRs (that have not been ordered
 * yet) in any order, except that all those with weight 0 are placed at the beginning of the list",
 * take a random number between 0 and the sum of the weights (inclusive), select the first record
 * whose running sum is greater than or equal to it, remove it, and repeat. `random` returns [0, 1).
 */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const ordered: SrvRecord[] = [];
  for (const priority of priorities) {
    const left = records.filter((r) => r.priority === priority);
    // zero weights first (stable otherwise): they are picked only when the random number is 0
    left.sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (left.length > 0) {
      const total = left.reduce((sum, r) => sum + r.weight, 0);
      const pick = Math.min(total, Math.floor(random() * (total + 1)));
      let running = 0;
      let index = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += (left[i] as SrvRecord).weight;
        if (running >= pick) {
          index = i;
          break;
        }
      }
      ordered.push(...left.splice(index, 1));
    }
  }
  return ordered;
}

/** RFC 2782: a single record whose target is "." says the domain offers no such service. */
export function serviceRefused(records: readonly SrvRecord[]): boolean {
  return records.length === 1 && records[0]?.target === '';
}
