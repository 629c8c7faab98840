// `parley mailbox test`: the steps a connector's check runs, in order, stopping at the first that
// fails — a later step cannot pass when an earlier one did not, and its error would only hide the
// cause. A step's error message is what the administrator reads, so it says what to fix.
import type { ConnectorCheck } from './connector.ts';

export interface CheckStep {
  step: ConnectorCheck['step'];
  /** what was found, in words; throws with what is missing */
  run(): Promise<string>;
}

export async function runChecks(steps: readonly CheckStep[]): Promise<ConnectorCheck[]> {
  const done: ConnectorCheck[] = [];
  for (const { step, run } of steps) {
    try {
      done.push({ step, ok: true, detail: await run() });
    } catch (error) {
      done.push({ step, ok: false, detail: error instanceof Error ? error.message : String(error) });
      break;
    }
  }
  return done;
}
