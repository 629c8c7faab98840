// The connection guard of the SIP stream transports (src/sip/transport/guard.ts) as the server
// configures it: limits from `sip.connections`, the total kept under the process's open-file
// limit, and every refusal logged with its source and the setting that decided it.

import { readFileSync } from 'node:fs';
import type { Logger } from '../observability/logger.ts';
import { CONNECTION_GUARD_CODES, ConnectionGuard, type ConnectionGuardCode, type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from '../sip/index.ts';
import type { ConnectionSettings } from './config.ts';

const C = CONNECTION_GUARD_CODES;

/** The setting an operator changes when a refusal is wrong for them. */
const SETTING_OF: Record<ConnectionGuardCode, string> = {
  [C.SOURCE_LIMIT]: 'sip.connections.maxPerSource',
  [C.TOTAL_LIMIT]: 'sip.connections.maxTotal',
  [C.IDLE]: 'sip.connections.idleTimeout',
  [C.MESSAGE_TIMEOUT]: 'sip.connections.messageTimeout',
  [C.BUFFER_BUDGET]: 'sip.connections.unauthenticatedBufferBudget',
  [C.ACCEPT_FAILED]: 'sip.connections.maxTotal',
};

/**
 * The guard's limits from the settings. Connections beyond the open-file limit would fail to be
 * accepted at all (and so would the database's files), so the total stays under that limit less
 * a reserve for everything else the process opens.
 */
export function connectionLimits(settings: Readonly<ConnectionSettings>, openFileLimit: number | null): { limits: ConnectionLimits; lowered: boolean } {
  let maxTotal = settings.maxTotal;
  let lowered = false;
  if (openFileLimit !== null) {
    const room = openFileLimit - Math.max(256, Math.ceil(openFileLimit * 0.05));
    if (maxTotal > room) {
      maxTotal = Math.max(1, room);
      lowered = true;
    }
  }
  return {
    limits: {
      idleTimeoutMs: settings.idleTimeout * 1000,
      messageTimeoutMs: settings.messageTimeout * 1000,
      maxPerSource: settings.maxPerSource,
      maxTotal,
      unauthenticatedBufferBudget: settings.unauthenticatedBufferBudget,
    },
    lowered,
  };
}

/** The soft limit of open files of this process (Linux: /proc/self/limits), or null when unknown. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : null;
  } catch {
    return null;
  }
}

export function createConnectionGuard(settings: Readonly<ConnectionSettings>, logger: Logger, onEvent?: (code: string) => void): ConnectionGuard {
  const files = openFileLimit();
  const { limits, lowered } = connectionLimits(settings, files);
  if (lowered) {
    // the default meets a smaller machine: worth knowing; a number an operator chose: worth a warning
    const level = settings.maxTotal === DEFAULT_CONNECTION_LIMITS.maxTotal ? 'info' : 'warn';
    logger[level]({ setting: 'sip.connections.maxTotal', configured: settings.maxTotal, used: limits.maxTotal, openFileLimit: files }, 'sip.connections.maxTotal %d is more than the open-file limit (%d) leaves room for; %d connections are taken at most (raise ulimit -n to take more)', settings.maxTotal, files ?? 0, limits.maxTotal);
  }
  const log = logger.child({ component: 'connections' });
  return new ConnectionGuard(limits, (event) => {
    onEvent?.(event.code);
    const fields = { code: event.code, protocol: event.protocol, source: event.remote?.address, port: event.remote?.port, flow: event.flow ?? undefined, setting: SETTING_OF[event.code] };
    // Closing a silent connection is housekeeping; everything else is a refusal worth a look.
    if (event.code === C.IDLE) log.info(fields, '%s', event.message);
    else log.warn(fields, '%s', event.message);
  });
}
