// Outbound SMTP for recipients in other organisations: a worker that drains the durable outbox
// (outbox.ts) with nodemailer's SMTP client. Where an entry goes: the recipient domain's configured
// route (smtpRoutes.domains), else the smarthost, else the domain's mail exchangers found in the DNS
// (mx.ts, RFC 5321 §5.1) unless smtpRoutes.mx is false. 5xx answers, and a domain the DNS says takes
// no mail (NXDOMAIN, a null MX), fail the entry for good; anything else (no answer, 4xx, the DNS not
// answering) is retried with exponential back-off until the maximum age. An entry with a trace id
// (an offline conversation e-mailed to a partner's user) has each attempt recorded in that trace.
import type { SendMailOptions } from 'nodemailer';
import { CachingResolver } from '../../dns/index.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Database, Sql } from '../../storage/index.ts';
import { transaction } from '../../storage/index.ts';
import { mailExchangers, SMTP_PORT } from './mx.ts';
import type { MailDns } from './mx.ts';
import { dueOutbound, enqueueOutbound, markOutboundAttemptFailed, markOutboundSent, traceOutbound } from './outbox.ts';
import type { OutboundMessage, OutboxEntry } from './outbox.ts';
import { nodemailerSend } from './send.ts';
import type { SmtpSend, SmtpServer } from './send.ts';

export interface SmtpRoute {
  host: string;
  port: number;
  /** implicit TLS (port 465 style); otherwise STARTTLS when offered */
  secure?: boolean;
  /** refuse to send without STARTTLS */
  requireTls?: boolean;
}

export interface SmtpRoutes {
  /** recipient domain (lower case) → its server */
  domains?: Readonly<Record<string, SmtpRoute>>;
  /** for every other domain */
  smarthost?: SmtpRoute;
  /** without a smarthost, a domain with no route goes to its MX hosts (RFC 5321 §5.1); default true; false: it is refused */
  mx?: boolean;
}

/** How an entry's domain is reached: a configured server, or its MX hosts looked up when it is sent. */
export type OutboundRoute =
  | { readonly kind: 'route'; readonly route: SmtpRoute; readonly via: 'domain route' | 'smarthost' }
  | { readonly kind: 'mx' };

/** The route for a recipient domain; undefined: none (no route, no smarthost, and smtpRoutes.mx false). */
export function routeFor(routes: SmtpRoutes, domain: string): OutboundRoute | undefined {
  const d = domain.toLowerCase();
  const own = routes.domains && Object.hasOwn(routes.domains, d) ? routes.domains[d] : undefined;
  if (own !== undefined) return { kind: 'route', route: own, via: 'domain route' };
  if (routes.smarthost !== undefined) return { kind: 'route', route: routes.smarthost, via: 'smarthost' };
  return routes.mx === false ? undefined : { kind: 'mx' };
}

/** Why routeFor found nothing, for a person to act on. */
export function noRouteReason(domain: string): string {
  return `no outbound SMTP route for ${domain}: smtpRoutes has no route for it and no smarthost, and MX routing is off (smtpRoutes.mx is false)`;
}

/** At most this many servers (MX hosts × addresses) are tried in one attempt. */
const MAX_SERVERS_PER_ATTEMPT = 8;

/** Queues a message for recipients outside the organisation: one outbox entry per recipient domain. */
export async function queueExternal(sql: Sql, sender: string, recipients: readonly string[], message: OutboundMessage, now: number): Promise<string[]> {
  const byDomain = new Map<string, string[]>();
  for (const r of new Set(recipients.map((a) => a.toLowerCase()))) {
    const domain = r.slice(r.lastIndexOf('@') + 1);
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), r]);
  }
  const ids: string[] = [];
  for (const rcpts of byDomain.values()) ids.push(await enqueueOutbound(sql, sender, rcpts, message, now));
  return ids;
}

/**
 * The message nodemailer writes for an entry (RFC 5322): both text and HTML make a
 * multipart/alternative, plain text first (RFC 2046 §5.1.4: the richest part last).
 */
export function mailOf(entry: Pick<OutboxEntry, 'sender' | 'recipients' | 'message'>): SendMailOptions {
  const m = entry.message;
  return {
    envelope: { from: entry.sender, to: entry.recipients },
    from: { name: m.from.name ?? '', address: m.from.address },
    to: m.to.map((x) => ({ name: x.name ?? '', address: x.address })),
    cc: m.cc.map((x) => ({ name: x.name ?? '', address: x.address })),
    subject: m.subject,
    ...(m.html !== null ? { html: m.html } : {}),
    ...(m.text !== null ? { text: m.text } : {}),
    messageId: m.messageId,
    date: new Date(m.date),
  };
}

export interface SmtpOutboundOptions {
  db: Database;
  logger: Logger;
  /** our name in EHLO */
  domain: string;
  routes: SmtpRoutes;
  /** the MX and address lookups of MX routing; default: a resolver asking the system's DNS servers */
  dns?: MailDns;
  /** sends one message to one server; default nodemailerSend (tests pass a fake: no socket) */
  send?: SmtpSend;
  /** orders MX hosts of equal preference; returns [0, 1) */
  random?: () => number;
  intervalMs?: number;
  /** how long an entry is retried before it fails; default 2 days */
  maxAgeMs?: number;
  /** first retry delay, doubled each attempt up to maxDelayMs */
  baseDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

export class SmtpOutbound {
  readonly #o: SmtpOutboundOptions;
  #dns: MailDns | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;

  constructor(opts: SmtpOutboundOptions) {
    this.#o = opts;
    this.#dns = opts.dns;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.runOnce(), this.#o.intervalMs ?? 5000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One pass over the due entries; returns how many were sent. Passes never overlap. */
  runOnce(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<number> {
    const now = this.#o.now ?? Date.now;
    let sent = 0;
    for (const entry of dueOutbound(this.#o.db, now())) {
      if (await this.#send(entry, now)) sent++;
    }
    return sent;
  }

  /** The servers to try for an entry's domain, in order; or why there are none (permanent: fail the entry). */
  async #servers(domain: string): Promise<{ ok: true; servers: SmtpServer[] } | { ok: false; permanent: boolean; reason: string }> {
    const route = routeFor(this.#o.routes, domain);
    if (route === undefined) return { ok: false, permanent: true, reason: noRouteReason(domain) };
    if (route.kind === 'route') {
      const r = route.route;
      return { ok: true, servers: [{ host: r.host, port: r.port, secure: r.secure ?? false, requireTls: r.requireTls ?? false, verifyCertificate: true, label: `${r.host}:${r.port} (${route.via})` }] };
    }
    this.#dns ??= new CachingResolver({ servers: [] });
    const found = await mailExchangers(this.#dns, domain, this.#o.random);
    if (!found.ok) return found;
    // RFC 7435 opportunistic security: an MX host's name comes from unauthenticated DNS, so its
    // certificate proves nothing a forger could not also arrange; STARTTLS when offered encrypts
    // against passive eavesdroppers, and an unverifiable certificate does not stop the mail (as
    // mail servers do by default). A domain route or smarthost, named by the administrator, is verified.
    const servers = found.exchangers.flatMap((x) => x.addresses.map((address) => ({
      host: address,
      port: SMTP_PORT,
      secure: false,
      requireTls: false,
      servername: x.host,
      verifyCertificate: false,
      label: `${x.host}[${address}]:${SMTP_PORT} (${found.implicit ? 'A/AAAA of the domain, which has no MX record' : `MX ${x.preference}`})`,
    })));
    return { ok: true, servers: servers.slice(0, MAX_SERVERS_PER_ATTEMPT) };
  }

  async #send(entry: OutboxEntry, now: () => number): Promise<boolean> {
    const o = this.#o;
    const log = o.logger.child({ outbox: entry.id, messageId: entry.message.messageId });
    const domain = entry.recipients[0]?.split('@')[1] ?? '';
    const found = await this.#servers(domain);
    if (!found.ok) {
      this.#failed(entry, now(), found.reason, found.permanent, { domain });
      log.warn({ domain }, 'outbound mail to %s: %s', domain, found.reason);
      return false;
    }
    const m = entry.message;
    const mail = mailOf(entry);
    // a server that cannot be reached hands over to the next (RFC 5321 §5.1: "try at least two
    // addresses"); a server that answers speaks for the domain: 5xx fails, 4xx is retried later
    const unreachable: string[] = [];
    for (const server of found.servers) {
      try {
        await (o.send ?? nodemailerSend)(server, mail, { name: o.domain, timeoutMs: o.timeoutMs });
      } catch (err) {
        const code = (err as { responseCode?: number }).responseCode;
        const reason = err instanceof Error ? err.message : String(err);
        if (code === undefined) {
          unreachable.push(`${server.label}: ${reason}`);
          log.info({ err, server: server.label }, 'outbound mail: %s cannot be reached; trying the next server if any', server.label);
          continue;
        }
        this.#failed(entry, now(), reason, code >= 500, { host: server.label });
        log.warn({ err, server: server.label, attempts: entry.attempts + 1 }, 'outbound mail refused by %s (%d)', server.label, code);
        return false;
      }
      transaction(o.db, () => {
        markOutboundSent(o.db, entry.id, now());
        traceOutbound(o.db, entry, now(), 'mail-sent', { to: entry.recipients, host: server.servername ?? server.host, address: server.host, port: server.port, via: server.label, messageId: m.messageId });
      });
      log.info({ recipients: entry.recipients, server: server.label }, 'outbound mail sent to %s via %s', entry.recipients.join(', '), server.label);
      return true;
    }
    this.#failed(entry, now(), unreachable.join('; '), false, { host: found.servers.map((s) => s.label).join(', ') });
    log.warn({ attempts: entry.attempts + 1 }, 'outbound mail: no server of %s could be reached', domain);
    return false;
  }

  /** A failed attempt: failed for good when permanent (or too old), else retried after the back-off; the trace says which. */
  #failed(entry: OutboxEntry, at: number, reason: string, permanent: boolean, detail: Record<string, unknown>): void {
    const o = this.#o;
    const delay = Math.min(o.maxDelayMs ?? 3_600_000, (o.baseDelayMs ?? 60_000) * 2 ** entry.attempts);
    const state = transaction(o.db, () => {
      const next = markOutboundAttemptFailed(o.db, entry.id, reason, permanent, at, at + delay, o.maxAgeMs ?? 2 * 86_400_000);
      traceOutbound(o.db, entry, at, next === 'failed' ? 'mail-failed' : 'mail-retry', { reason, attempt: entry.attempts + 1, ...detail, ...(next === 'failed' ? {} : { nextAttemptAt: new Date(at + delay).toISOString() }) });
      return next;
    });
    o.logger.child({ outbox: entry.id }).debug({ state, attempts: entry.attempts + 1 }, 'outbound mail attempt failed (%s)', state === 'failed' ? 'giving up' : 'will retry');
  }
}
