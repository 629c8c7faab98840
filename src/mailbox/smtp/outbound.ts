// Outbound SMTP for recipients in other organisations: a worker that drains the durable outbox
// (outbox.ts) through configured routes — a recipient domain's server, or a smarthost for all —
// with nodemailer's SMTP client. 5xx answers fail the entry for good; anything else (no answer,
// 4xx) is retried with exponential back-off until the maximum age. An entry with a trace id (an
// offline conversation e-mailed to a partner's user) has each attempt recorded in that trace.
// Routes are configured: there is no MX lookup; a domain without a route goes to the smarthost, or
// nowhere.
import nodemailer from 'nodemailer';
import type { SendMailOptions } from 'nodemailer';
import type { Logger } from '../../observability/logger.ts';
import type { Database } from '../../storage/index.ts';
import { transaction } from '../../storage/index.ts';
import { dueOutbound, enqueueOutbound, markOutboundAttemptFailed, markOutboundSent, traceOutbound } from './outbox.ts';
import type { OutboundMessage, OutboxEntry } from './outbox.ts';

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
}

export function routeFor(routes: SmtpRoutes, domain: string): SmtpRoute | undefined {
  const d = domain.toLowerCase();
  return (routes.domains && Object.hasOwn(routes.domains, d) ? routes.domains[d] : undefined) ?? routes.smarthost;
}

/** Queues a message for recipients outside the organisation: one outbox entry per recipient domain. */
export function queueExternal(db: Database, sender: string, recipients: readonly string[], message: OutboundMessage, now: number): string[] {
  const byDomain = new Map<string, string[]>();
  for (const r of new Set(recipients.map((a) => a.toLowerCase()))) {
    const domain = r.slice(r.lastIndexOf('@') + 1);
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), r]);
  }
  return [...byDomain.values()].map((rcpts) => enqueueOutbound(db, sender, rcpts, message, now));
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
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;

  constructor(opts: SmtpOutboundOptions) {
    this.#o = opts;
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

  async #send(entry: OutboxEntry, now: () => number): Promise<boolean> {
    const o = this.#o;
    const log = o.logger.child({ outbox: entry.id, messageId: entry.message.messageId });
    const domain = entry.recipients[0]?.split('@')[1] ?? '';
    const route = routeFor(o.routes, domain);
    if (route === undefined) {
      transaction(o.db, () => {
        markOutboundAttemptFailed(o.db, entry.id, `no SMTP route for ${domain}`, true, now(), now(), 0);
        traceOutbound(o.db, entry, now(), 'mail-failed', { reason: `no SMTP route for ${domain} (smtpRoutes)` });
      });
      log.warn({ domain }, 'outbound mail to %s failed: no route', domain);
      return false;
    }
    const transport = nodemailer.createTransport({
      host: route.host,
      port: route.port,
      secure: route.secure ?? false,
      requireTLS: route.requireTls ?? false,
      name: o.domain,
      connectionTimeout: o.timeoutMs ?? 30_000,
      greetingTimeout: o.timeoutMs ?? 30_000,
      socketTimeout: o.timeoutMs ?? 60_000,
    });
    const m = entry.message;
    try {
      await transport.sendMail(mailOf(entry));
      transaction(o.db, () => {
        markOutboundSent(o.db, entry.id, now());
        traceOutbound(o.db, entry, now(), 'mail-sent', { to: entry.recipients, host: route.host, port: route.port, messageId: m.messageId });
      });
      log.info({ recipients: entry.recipients, host: route.host }, 'outbound mail sent to %s', entry.recipients.join(', '));
      return true;
    } catch (err) {
      const code = (err as { responseCode?: number }).responseCode;
      const permanent = code !== undefined && code >= 500;
      const delay = Math.min(o.maxDelayMs ?? 3_600_000, (o.baseDelayMs ?? 60_000) * 2 ** entry.attempts);
      const at = now();
      const reason = err instanceof Error ? err.message : String(err);
      const state = transaction(o.db, () => {
        const next = markOutboundAttemptFailed(o.db, entry.id, reason, permanent, at, at + delay, o.maxAgeMs ?? 2 * 86_400_000);
        traceOutbound(o.db, entry, at, next === 'failed' ? 'mail-failed' : 'mail-retry', { reason, attempt: entry.attempts + 1, host: route.host, ...(next === 'failed' ? {} : { nextAttemptAt: new Date(at + delay).toISOString() }) });
        return next;
      });
      log.warn({ err, state, attempts: entry.attempts + 1 }, 'outbound mail attempt failed (%s)', state === 'failed' ? 'giving up' : 'will retry');
      return false;
    } finally {
      transport.close();
    }
  }
}
