// Outbound connections to partners' servers: one pooled TLS connection per partner domain and
// target, reused while it is open; the connection guard closes it once idle, like every stream
// connection. A target that fails hands over to the next one (the next SRV record, the next address).

import type tls from 'node:tls';
import type { Logger } from '../../observability/logger.ts';
import type { PartnerConnection } from '../../router/context.ts';
import type { Flow, PartnerPeer, StreamConnectResult } from '../../sip/index.ts';
import { checkPartnerIdentity, certificateNames } from './cert-names.ts';
import { routeTargets, targetAddresses } from './targets.ts';
import type { PartnerDns } from './targets.ts';
import type { PartnerRoute } from '../decision.ts';

/** Opens one TLS connection (src/sip connectStream with the server's sink and guard). */
export type Dial = (o: { address: string; port: number; tls: tls.ConnectionOptions; peerOf(socket: tls.TLSSocket): PartnerPeer }) => Promise<StreamConnectResult>;

export interface PoolOptions {
  dns: PartnerDns;
  dial: Dial;
  /** our certificate and key (the federation pair in use now) and the CAs partners' certificates must chain to */
  credentials(): { cert: Buffer; key: Buffer; ca: Buffer | undefined };
  logger: Logger;
  /** at most this many connection attempts for one connect(), over all targets and addresses */
  maxAttempts?: number;
  random?: () => number;
}

type Failure = { reason: 'timeout' | 'unreachable' | 'tls' | 'dns'; text: string };

export class PartnerPool {
  readonly #opts: PoolOptions;
  /** `domain>host:port` → the open connection */
  readonly #open = new Map<string, { flow: Flow; close(): void }>();
  /** connect() calls on their way, by domain: a second caller waits for the same connection */
  readonly #pending = new Map<string, Promise<PartnerConnection>>();
  #closed = false;

  constructor(opts: PoolOptions) {
    this.#opts = opts;
  }

  /** A connection for partner `domain` by `route`: an open one reused, else the targets tried in order. */
  connect(domain: string, route: PartnerRoute): Promise<PartnerConnection> {
    for (const [key, c] of this.#open) {
      if (c.flow.closed) this.#open.delete(key);
      else if (key.startsWith(`${domain}>`)) return Promise.resolve({ ok: true, flow: c.flow });
    }
    let pending = this.#pending.get(domain);
    if (pending === undefined) {
      pending = this.#connect(domain, route);
      const settle = () => this.#pending.delete(domain);
      pending.then(settle, settle);
      this.#pending.set(domain, pending);
    }
    return pending;
  }

  /** Ends every outbound connection (the server stops). */
  close(): void {
    this.#closed = true;
    for (const c of this.#open.values()) c.close();
    this.#open.clear();
  }

  get size(): number {
    return this.#open.size;
  }

  async #connect(domain: string, route: PartnerRoute): Promise<PartnerConnection> {
    const { dns, logger } = this.#opts;
    const found = await routeTargets(dns, domain, route, this.#opts.random);
    if (!found.ok) return { ok: false, status: 503, warning: found.warning };
    const failures: Failure[] = [];
    let attempts = this.#opts.maxAttempts ?? 6;
    for (const target of found.targets) {
      const addresses = await targetAddresses(dns, target.host);
      if (!addresses.ok) {
        failures.push({ reason: 'dns', text: `${target.host}:${target.port} (${target.source}): ${addresses.warning}` });
        continue;
      }
      for (const address of addresses.addresses) {
        if (attempts-- <= 0 || this.#closed) break;
        const { cert, key, ca } = this.#opts.credentials();
        const result = await this.#opts.dial({
          address,
          port: target.port,
          // servername: SNI names the host we want; checkServerIdentity: RFC 6125 on the same host
          tls: { cert, key, ...(ca === undefined ? {} : { ca }), servername: isName(target.host) ? target.host : undefined, rejectUnauthorized: true, checkServerIdentity: checkPartnerIdentity},
          peerOf: (socket) => ({ names: certificateNames(socket.getPeerCertificate()), openedFor: domain }),
        });
        if (result.ok) {
          const poolKey = `${domain}>${target.host}:${target.port}`;
          if (this.#closed) {
            result.close();
            return { ok: false, status: 503, warning: 'the server is stopping' };
          }
          this.#open.set(poolKey, { flow: result.flow, close: result.close });
          logger.info({ partner: domain, target: `${target.host}:${target.port}`, address, flow: result.flow.id, source: target.source }, 'connected to partner %s at %s:%d (%s)', domain, target.host, target.port, target.source);
          return { ok: true, flow: result.flow };
        }
        failures.push({ reason: result.reason, text: `${target.host}:${target.port} (${target.source}, ${address}): ${result.message}` });
        logger.info({ partner: domain, target: `${target.host}:${target.port}`, address, reason: result.reason }, 'connecting to partner %s at %s:%d failed: %s', domain, target.host, target.port, result.message);
      }
    }
    return unreachable(domain, failures);
  }
}

/**
 * What the sender is told: 480 when the servers did not answer in time (worth trying later), 503
 * when the partner cannot be reached as configured (DNS, refused connections, a certificate that
 * does not verify or does not name the server).
 */
export function unreachable(domain: string, failures: readonly Failure[]): PartnerConnection {
  if (failures.length === 0) return { ok: false, status: 503, warning: `${domain} has no server to connect to` };
  const timedOutOnly = failures.every((f) => f.reason === 'timeout');
  const status = timedOutOnly ? 480 : 503;
  return { ok: false, status, warning: `${domain} cannot be reached: ${failures.map((f) => f.text).join('; ').slice(0, 900)}` };
}

function isName(host: string): boolean {
  return /[a-z]/i.test(host) && !host.includes(':');
}
