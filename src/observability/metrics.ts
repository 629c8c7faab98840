// The server's metrics in the Prometheus text format (GET /metrics, see src/server/metrics-route.ts),
// through prom-client. Only this folder knows prom-client: the capabilities keep their own plain
// counts (quota refusals, lockouts, subscription admissions), read here at scrape time through the
// `ServerState` getters; where an event must be counted as it happens (a SIP request, a response,
// a MESSAGE's outcome, a delivery batch, an EWS request), the lower folder declares a small
// interface (router's SipStats, offline's DeliveryStats, the EWS route's onRequest) and the
// methods here implement it structurally — no import climbs from those folders to this one.
//
// Hot paths (REGISTER, MESSAGE): a request costs one Map lookup and one `++` on a plain number.
// prom-client's own inc() hashes its label object into a string on every call, so the per-request
// counts are kept here and handed to prom-client at scrape time (collect); only rare events (an
// EWS request, a delivery batch, a connection refused) go through prom-client as they happen.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRICS_PREFIX = 'parley_';
/** what Prometheus sends and expects: the text format 0.0.4 */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * SIP methods counted under their own name; any other (a client may send any token) counts as
 * `other`, so a peer cannot grow the label set.
 */
export const SIP_METHODS = ['REGISTER', 'MESSAGE', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'OPTIONS', 'INVITE', 'ACK', 'CANCEL', 'BYE', 'INFO', 'UPDATE', 'PRACK', 'REFER'] as const;
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', '6xx'] as const;

/** What the running server keeps and /metrics reads at scrape time (start.ts supplies it). */
export interface ServerState {
  /** registration bindings per transport (udp, tcp, tls, ws) over this node's connections; asynchronous in a cluster (Redis) */
  registrations(): ReadonlyMap<string, number> | Promise<ReadonlyMap<string, number>>;
  /** cluster mode only: the bindings of every node per transport; absent: no parley_cluster_registrations */
  clusterRegistrations?(): Promise<ReadonlyMap<string, number>>;
  /** open SIP connections per stream transport (tcp, tls, ws) */
  connections(): ReadonlyMap<string, number>;
  /** spool entries per state; when the oldest waiting entry was created (epoch ms), null when none waits */
  spool(): Promise<{ byState: Readonly<Record<string, number>>; oldestWaitingCreatedAt: number | null }>;
  /** live subscriptions per event package */
  subscriptions(): ReadonlyMap<string, number>;
  /** since the start: SUBSCRIBEs refused per limit, and subscriptions replaced by a newer one */
  subscriptionAdmissions(): { refusedPerWatcher: number; refusedPerResource: number; replaced: number };
  /** since the start: offline messages refused by the spool's quota, per reason */
  spoolQuotaRefusals(): Readonly<Record<string, number>>;
  /** since the start: EWS and SMTP refusals of the mailbox quota, per limit */
  mailboxQuotaRefusals(): Readonly<Record<string, number>>;
  /** the sign-in guard: failures and lockouts since the start, and what is locked now */
  signIn(): { failures: number; lockouts: { source: number; account: number }; lockedNow: { source: number; account: number } };
  /** the database: its size and (SQLite) the free pages in it, bytes */
  database(): Promise<{ bytes: number; freeBytes: number | null }>;
  /** retention (src/retention): rows purged since the start per kind; when the oldest kept row of each kind was written (epoch ms, null: none) */
  retention(): { purged: Readonly<Record<string, number>>; oldest: Readonly<Record<string, number | null>> };
  /** Conversation History (src/history) since the start; absent: no parley_history_* metrics */
  history?(): { recorded: number; displayed: number; opened: number; closed: number; missed: number; entries: number; batches: number; failedBatches: number };
  now(): number;
}

/** one method's counts: requests, and responses per status class (index 0 is 1xx) */
interface MethodCounts {
  requests: number;
  readonly responses: number[];
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #methods = new Map<string, MethodCounts>();
  readonly #otherMethod: MethodCounts;
  readonly #messages = { relayed: 0, stored: 0, refused: 0 };
  readonly #connectionEvents: Counter<'code'>;
  readonly #deliveries: Counter<'connector' | 'outcome'>;
  readonly #deliveryDuration: Histogram<'connector'>;
  readonly #ews: Counter<'operation' | 'outcome'>;
  /** made at the first certificate: absent from /metrics while TLS is off (an unlabelled gauge would say 0) */
  #certificateExpiry: Gauge | undefined;
  readonly #certificateReloads: Counter<'outcome'>;

  constructor(state: ServerState) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRICS_PREFIX });
    // prom-client names these three gauges `_total`, which the exposition format keeps for counters
    // (promtool's lint says so); the same numbers are in the per-type gauges without the suffix
    // (parley_nodejs_active_handles{type=…} and friends)
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(METRICS_PREFIX + name);

    for (const method of SIP_METHODS) this.#methods.set(method, { requests: 0, responses: [0, 0, 0, 0, 0, 0] });
    this.#otherMethod = { requests: 0, responses: [0, 0, 0, 0, 0, 0] };
    const methods = this.#methods;
    const other = this.#otherMethod;
    const messages = this.#messages;
    new Counter({
      name: 'parley_sip_requests_total',
      help: 'SIP requests received (retransmissions not counted), per method (other: a method Parley does not know)',
      labelNames: ['method'] as const,
      registers,
      collect() {
        this.reset();
        for (const [method, counts] of methods) this.inc({ method }, counts.requests);
        this.inc({ method: 'other' }, other.requests);
      },
    });
    new Counter({
      name: 'parley_sip_responses_total',
      help: 'SIP responses sent to requests, per request method and status class',
      labelNames: ['method', 'status_class'] as const,
      registers,
      collect() {
        this.reset();
        // the classes a method has answered; a method never seen shows its requests only
        const add = (method: string, counts: MethodCounts) => counts.responses.forEach((n, i) => n > 0 && this.inc({ method, status_class: STATUS_CLASSES[i] }, n));
        for (const [method, counts] of methods) add(method, counts);
        add('other', other);
      },
    });
    new Counter({
      name: 'parley_sip_messages_total',
      help: 'MESSAGEs to local users by outcome: relayed (a device answered), stored (kept for offline delivery, 202), refused (480)',
      labelNames: ['outcome'] as const,
      registers,
      collect() {
        this.reset();
        for (const [outcome, n] of Object.entries(messages)) this.inc({ outcome }, n);
      },
    });

    this.#connectionEvents = new Counter({ name: 'parley_sip_connection_guard_events_total', help: 'SIP connections refused or closed by the connection guard, per code (SIP_CONNECTION_SOURCE_LIMIT, SIP_CONNECTION_IDLE, ...)', labelNames: ['code'] as const, registers });
    this.#deliveries = new Counter({ name: 'parley_offline_delivery_attempts_total', help: 'Items (Missed Conversations, sender copies) handed to a mailbox connector, per connector and outcome', labelNames: ['connector', 'outcome'] as const, registers });
    this.#deliveryDuration = new Histogram({
      name: 'parley_offline_delivery_duration_seconds',
      help: 'How long a mailbox connector took to take one batch of items, per connector',
      labelNames: ['connector'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#certificateReloads = new Counter({ name: 'parley_tls_certificate_reloads_total', help: 'Certificate reloads (file change, SIGHUP, ACME renewal), per outcome: ok (new pair in use), unchanged, refused (the old pair stays)', labelNames: ['outcome'] as const, registers });
    this.#ews = new Counter({ name: 'parley_ews_requests_total', help: 'EWS requests answered, per operation (unsupported: an operation Parley does not serve) and outcome (ok or fault)', labelNames: ['operation', 'outcome'] as const, registers });

    // Read at scrape time from what the capabilities keep.
    const registrationGauge = (name: string, help: string, read: () => ReadonlyMap<string, number> | Promise<ReadonlyMap<string, number>>): void => {
      new Gauge({
        name,
        help,
        labelNames: ['transport'] as const,
        registers,
        async collect() {
          const counts = await read();
          this.reset();
          for (const transport of ['udp', 'tcp', 'tls', 'ws']) this.set({ transport }, 0);
          for (const [transport, n] of counts) this.set({ transport }, n);
        },
      });
    };
    registrationGauge('parley_registrations', "Registration bindings now, per transport; in a cluster, those whose connection this node holds (the nodes' figures add up)", () => state.registrations());
    const cluster = state.clusterRegistrations?.bind(state);
    if (cluster !== undefined) registrationGauge('parley_cluster_registrations', 'Registration bindings now of every node of the cluster, per transport (the same figure on each node: do not add them up)', cluster);
    new Gauge({
      name: 'parley_sip_connections',
      help: 'Open SIP connections now, per transport',
      labelNames: ['transport'] as const,
      registers,
      collect() {
        this.reset();
        for (const transport of ['tcp', 'tls', 'ws']) this.set({ transport }, 0);
        for (const [transport, n] of state.connections()) this.set({ transport }, n);
      },
    });
    // one read of the spool per scrape, shared by its two gauges (collected side by side)
    let spool: ReturnType<ServerState['spool']> | undefined;
    new Gauge({
      name: 'parley_offline_spool_entries',
      help: 'Offline-IM spool entries now, per state (waiting, delivering, delivered, failed)',
      labelNames: ['state'] as const,
      registers,
      async collect() {
        spool = state.spool();
        for (const [s, n] of Object.entries((await spool).byState)) this.set({ state: s }, n);
      },
    });
    new Gauge({
      name: 'parley_offline_spool_oldest_waiting_age_seconds',
      help: 'Age of the oldest waiting spool entry (0 when none waits)',
      registers,
      async collect() {
        const read = spool ?? state.spool();
        spool = undefined;
        const at = (await read).oldestWaitingCreatedAt;
        this.set(at === null ? 0 : Math.max(0, (state.now() - at) / 1000));
      },
    });
    new Gauge({
      name: 'parley_subscriptions',
      help: 'Active SUBSCRIBE dialogs now, per event package (presence, message-summary, ...)',
      labelNames: ['package'] as const,
      registers,
      collect() {
        this.reset();
        for (const [pkg, n] of state.subscriptions()) this.set({ package: pkg }, n);
      },
    });
    const admissions = [
      ['refused', 'maxSubscriptionsPerWatcher', 'refusedPerWatcher'],
      ['refused', 'maxSubscriptionsPerResource', 'refusedPerResource'],
      ['replaced', 'maxSubscriptionsPerWatcherResource', 'replaced'],
    ] as const;
    new Counter({
      name: 'parley_subscription_limit_events_total',
      help: 'SUBSCRIBEs the subscription limits refused (403), or that replaced the oldest subscription of the same watcher and resource, per limit (events.*)',
      labelNames: ['outcome', 'limit'] as const,
      registers,
      collect() {
        const counts = state.subscriptionAdmissions();
        this.reset();
        for (const [outcome, limit, key] of admissions) this.inc({ outcome, limit }, counts[key]);
      },
    });
    new Counter({
      name: 'parley_offline_quota_refusals_total',
      help: 'Offline MESSAGEs refused (480) by the spool quota, per reason',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(state.spoolQuotaRefusals())) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'parley_mailbox_quota_refusals_total',
      help: 'EWS and SMTP requests refused by the mailbox quota, per limit',
      labelNames: ['limit'] as const,
      registers,
      collect() {
        this.reset();
        for (const [limit, n] of Object.entries(state.mailboxQuotaRefusals())) this.inc({ limit }, n);
      },
    });
    // the sign-in guard's numbers, read once per scrape for its three metrics
    let signIn: ReturnType<ServerState['signIn']> | undefined;
    const readSignIn = () => (signIn ??= state.signIn());
    new Counter({
      name: 'parley_signin_failures_total',
      help: 'Failed sign-ins (SIP digest and HTTP Basic) the sign-in guard counted',
      registers,
      collect() {
        this.reset();
        this.inc(readSignIn().failures);
      },
    });
    new Counter({
      name: 'parley_signin_lockouts_total',
      help: 'Lockouts the sign-in guard started, per kind (source address or account)',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        const { lockouts } = readSignIn();
        this.reset();
        this.inc({ kind: 'source' }, lockouts.source);
        this.inc({ kind: 'account' }, lockouts.account);
      },
    });
    new Gauge({
      name: 'parley_signin_locked',
      help: 'Source addresses and accounts locked out now, per kind',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        const { lockedNow } = readSignIn();
        signIn = undefined;
        this.set({ kind: 'source' }, lockedNow.source);
        this.set({ kind: 'account' }, lockedNow.account);
      },
    });
    // one read of the database's size per scrape, shared by its two gauges
    let size: ReturnType<ServerState['database']> | undefined;
    new Gauge({
      name: 'parley_database_size_bytes',
      help: 'Size of the database: the SQLite file (page_count × page_size, free pages included), or pg_database_size on PostgreSQL',
      registers,
      async collect() {
        size = state.database();
        this.set((await size).bytes);
      },
    });
    new Gauge({
      name: 'parley_database_free_bytes',
      help: 'Free pages in the SQLite file (freelist_count × page_size): reused by new rows, given back to the file system only by VACUUM; 0 on PostgreSQL, which keeps its free space itself (autovacuum)',
      registers,
      async collect() {
        const read = size ?? state.database();
        size = undefined;
        this.set((await read).freeBytes ?? 0);
      },
    });
    new Gauge({
      name: 'parley_retention_oldest_row_age_seconds',
      help: 'Age of the oldest kept row per kind (delivered, failed spool entries; trace, audit, change_log rows) as of the last retention run; 0 when there is none',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        this.reset();
        const now = state.now();
        for (const [kind, at] of Object.entries(state.retention().oldest)) this.set({ kind }, at === null ? 0 : Math.max(0, (now - at) / 1000));
      },
    });
    const history = state.history?.bind(state);
    if (history !== undefined) {
      // plain numbers the history service keeps, read at scrape time
      type Counts = ReturnType<typeof history>;
      const counter = (name: string, help: string, labelName: string | undefined, values: (c: Counts) => Record<string, number>) =>
        new Counter({
          name,
          help,
          labelNames: labelName === undefined ? [] : [labelName],
          registers,
          collect() {
            this.reset();
            for (const [label, n] of Object.entries(values(history()))) {
              if (labelName === undefined) this.inc(n);
              else this.inc({ [labelName]: label }, n);
            }
          },
        });
      counter('parley_history_messages_total', 'Conversation History: messages kept in a conversation (recorded), marked read by an IMDN displayed report (displayed), turned into a missed conversation when unread (missed)', 'event', (c) => ({ recorded: c.recorded, displayed: c.displayed, missed: c.missed }));
      counter('parley_history_conversations_total', 'Conversation History: conversations opened and closed', 'event', (c) => ({ opened: c.opened, closed: c.closed }));
      counter('parley_history_entries_total', 'Conversation History: spool entries made for Conversation History items (one per archiving participant of a closed conversation)', undefined, (c) => ({ all: c.entries }));
      counter('parley_history_commit_batches_total', 'Conversation History: group commits of recorded messages, per outcome (failed: their messages are missing from history)', 'outcome', (c) => ({ ok: c.batches, failed: c.failedBatches }));
    }
    new Counter({
      name: 'parley_retention_purged_rows_total',
      help: 'Rows the retention purge deleted since the start, per kind (delivered spool entries, trace, audit, change_log, mail_subscriptions, smtp_outbox, sessions, lockouts)',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(state.retention().purged)) this.inc({ kind }, n);
      },
    });
  }

  // router's SipStats

  request(method: string): void {
    (this.#methods.get(method) ?? this.#otherMethod).requests++;
  }

  response(method: string, status: number): void {
    const { responses } = this.#methods.get(method) ?? this.#otherMethod;
    const i = Math.min(5, Math.max(0, Math.floor(status / 100) - 1));
    responses[i] = (responses[i] ?? 0) + 1;
  }

  message(outcome: 'relayed' | 'stored' | 'refused'): void {
    this.#messages[outcome]++;
  }

  // offline's DeliveryStats

  batch(connector: string, succeeded: number, failed: number, seconds: number): void {
    // connectors are the configuration's (embedded, a mailboxes.servers name: EWS, Graph or IMAP): a bounded set
    if (succeeded > 0) this.#deliveries.inc({ connector, outcome: 'ok' }, succeeded);
    if (failed > 0) this.#deliveries.inc({ connector, outcome: 'failed' }, failed);
    this.#deliveryDuration.observe({ connector }, seconds);
  }

  /** the EWS route's onRequest: `operation` is a served one or `unsupported` */
  ewsRequest(operation: string, fault: boolean): void {
    this.#ews.inc({ operation, outcome: fault ? 'fault' : 'ok' });
  }

  /** the connection guard refused or closed a connection; `code` is one of CONNECTION_GUARD_CODES */
  connectionEvent(code: string): void {
    this.#connectionEvents.inc({ code });
  }

  // certs' CertificateStats

  certificateInUse(notAfter: Date): void {
    this.#certificateExpiry ??= new Gauge({ name: 'parley_tls_certificate_expiry_timestamp_seconds', help: 'When the certificate in use by SIP over TLS and HTTPS expires (Unix time, seconds); absent while TLS is off', registers: [this.registry] });
    this.#certificateExpiry.set(Math.floor(notAfter.getTime() / 1000));
  }

  certificateReload(outcome: 'ok' | 'unchanged' | 'refused'): void {
    this.#certificateReloads.inc({ outcome });
  }

  /** The text for GET /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
