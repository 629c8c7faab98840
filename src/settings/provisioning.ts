// In-band provisioning (issue 3): the `vnd-parley-provisioning` event package. A registered
// client subscribes to its own account and gets its effective settings as JSON; when an
// administrator changes settings, subscribers whose settings changed get a new NOTIFY.
//
// Administrators change settings from another process or node too (`parley admin` writes the
// database directly), so the package polls settings_version (moved by triggers with every write
// of what effectiveSettings reads, see effective.ts) about once a second; an in-process change
// (the admin HTTP API) calls settingsChanged() instead of waiting. Either way every subscriber's
// document is rebuilt and the event service sends only those that differ from what the
// subscriber last got.

import type { Authorization, EventNotifications, EventPackage } from '../events/index.ts';
import type { SipContext } from '../router/context.ts';
import type { Sql } from '../storage/index.ts';
import { effectiveSettings } from './effective.ts';
import type { EffectiveSettings } from './effective.ts';
import { formatTimeSpan } from './timespan.ts';

export const PROVISIONING_EVENT = 'vnd-parley-provisioning';
export const PROVISIONING_TYPE = 'application/vnd.parley.provisioning+json';
export const DEFAULT_PROVISIONING_POLL_MS = 1000;

/** The NOTIFY body: names as the cmdlets show them, TimeSpans as `00:02:00`. */
export interface ProvisioningDocument {
  EnableOfflineIm: boolean;
  EnableIMAutoArchiving: boolean;
  DisableSavingIM: boolean;
  OfflineImPickupDelay: string;
  OfflineImMaxAge: string;
  ConversationIdleTimeout: string;
  UnreadMissedTimeout: string;
  /** where the client reads its mailbox (Missed Conversations) */
  ewsUrl: string;
  /** the Identity each group of values came from */
  sources: { ImConfiguration: string; ClientPolicy: string };
}

export function provisioningDocument(settings: EffectiveSettings, ewsUrl: string): ProvisioningDocument {
  return {
    EnableOfflineIm: settings.EnableOfflineIm,
    EnableIMAutoArchiving: settings.EnableIMAutoArchiving,
    DisableSavingIM: settings.DisableSavingIM,
    OfflineImPickupDelay: formatTimeSpan(settings.OfflineImPickupDelaySeconds),
    OfflineImMaxAge: formatTimeSpan(settings.OfflineImMaxAgeSeconds),
    ConversationIdleTimeout: formatTimeSpan(settings.ConversationIdleTimeoutSeconds),
    UnreadMissedTimeout: formatTimeSpan(settings.UnreadMissedTimeoutSeconds),
    ewsUrl,
    sources: { ImConfiguration: settings.sources.ImConfiguration, ClientPolicy: settings.sources.ClientPolicy },
  };
}

/** The version of everything effectiveSettings reads; it moves with every change. */
async function settingsVersion(sql: Sql): Promise<number> {
  const row = await sql.get<{ v: number }>('SELECT v FROM settings_version');
  return Number(row?.v ?? 0);
}

export interface ProvisioningOptions {
  sql: Sql;
  /**
   * the EWS URL a subscriber is given, for the local address of the flow its subscription came on
   * (the address it reached the server at); a function, as the HTTP port is known only once it listens
   */
  ewsUrl: (localAddress: string) => string;
  /** how often settings_version is polled, ms; 0: never (default 1000) */
  pollMs?: number;
}

export class ProvisioningPackage implements EventPackage {
  readonly name = PROVISIONING_EVENT;
  readonly contentType = PROVISIONING_TYPE;
  readonly #sql: Sql;
  readonly #ewsUrl: (localAddress: string) => string;
  readonly #pollMs: number;
  #events: EventNotifications | undefined;
  #ctx: SipContext | undefined;
  /** the version the subscribers' documents were last built at; undefined until first read */
  #version: number | undefined;
  #polling = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: ProvisioningOptions) {
    this.#sql = opts.sql;
    this.#ewsUrl = opts.ewsUrl;
    this.#pollMs = opts.pollMs ?? DEFAULT_PROVISIONING_POLL_MS;
  }

  start(ctx: SipContext, events: EventNotifications): void {
    this.#ctx = ctx;
    this.#events = events;
    void this.poll();
    if (this.#pollMs > 0) {
      this.#timer = setInterval(() => void this.poll(), this.#pollMs);
      this.#timer.unref();
    }
  }

  /** Only the user may read their own settings. */
  authorize(_ctx: SipContext, watcher: string, resource: string): Authorization {
    if (watcher.toLowerCase() === resource) return 'ok';
    return { status: 403, warning: `${watcher} may not read the settings of ${resource}: subscribe to your own account` };
  }

  async body(sub: { resource: string; flow: { local: { address: string } } }): Promise<string> {
    return JSON.stringify(provisioningDocument(await effectiveSettings(this.#sql, sub.resource), this.#ewsUrl(sub.flow.local.address)));
  }

  /** Settings changed (the admin HTTP API calls this): every subscriber whose document changed gets a NOTIFY. */
  settingsChanged(): void {
    this.#events?.changedAll(this.name);
  }

  /** One look at settings_version: when it moved, settings may have changed. */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const version = await settingsVersion(this.#sql);
      const before = this.#version;
      this.#version = version;
      if (before !== undefined && version !== before) this.#events?.changedAll(this.name);
    } catch (err) {
      this.#ctx?.logger.error({ err }, 'reading the settings version for provisioning failed');
    } finally {
      this.#polling = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#events = undefined;
  }
}
