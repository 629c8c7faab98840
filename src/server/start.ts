// `parley serve`: one process runs the organisation. This module builds the parts and connects
// them; each part lives in its capability's folder.

import { hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { AcmeCertificates, AcmeChallenges, CertificateKeeper } from '../certs/index.ts';
import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { AUTH_MIGRATIONS, Authenticator, BasicSignIn, FairQueue, LockoutKeeper, basicCaller } from '../auth/index.ts';
import type { DigestAccount } from '../auth/index.ts';
import { cachedUserLookup, createDirectoryRoute, DIRECTORY_MIGRATIONS } from '../directory/index.ts';
import type { UserRecord } from '../directory/index.ts';
import type { Logger } from '../observability/logger.ts';
import { EventService } from '../events/index.ts';
import { MessageSummaryPackage } from '../mailbox/index.ts';
import { PRESENCE_MIGRATIONS, PresenceService, createPresenceRoute, databaseBlockList, databaseContactLists } from '../presence/index.ts';
import { ProvisioningPackage, recordAudit } from '../settings/index.ts';
import { SETTINGS_MIGRATIONS } from '../settings/index.ts';
import { CachingResolver } from '../dns/index.ts';
import { FEDERATION_MIGRATIONS, FederationLink, PartnerCas, PartnerPool, certificateNames } from '../federation/index.ts';
import { createRegistrationEvents, MemoryLocationService, registerHandler } from '../registrar/index.ts';
import type { Binding } from '../registrar/location.ts';
import { ClusterHopPool, type ClusterMember, joinCluster, NodeRegistry, RedisPublications, shareEvents } from '../cluster/index.ts';
import type { SipContext } from '../router/context.ts';
import { createDispatcher } from '../router/dispatch.ts';
import { messageHandler } from '../router/message.ts';
import { optionsHandler } from '../router/options.ts';
import { databaseSize, migrate, openStorage, postgresSize, staleVersionedCaches } from '../storage/index.ts';
import { RetentionScheduler } from '../retention/index.ts';
import { EMBEDDED, OFFLINE_MIGRATIONS, OfflineService, createMailboxRouting, spoolCounts, spoolerEndpoints } from '../offline/index.ts';
import { createConversationsRoute } from '../conversations/index.ts';
import { HISTORY_MIGRATIONS, HistoryService } from '../history/index.ts';
import { ServerMetrics } from '../observability/metrics.ts';
import { createMetricsRoute } from './metrics-route.ts';
import { createReadyRoute, databaseWritable, postgresWritable, type ReadinessCheck } from './readiness.ts';
import { RequestDrain } from '../router/drain.ts';
import { TRACE_MIGRATIONS } from '../observability/trace.ts';
import { traceEndpoint } from '../observability/trace-endpoint.ts';
import { EmbeddedMailboxConnector, MAILBOX_MIGRATIONS, MailboxQuota, SmtpOutbound, createAutodiscoverRoute, createEwsRoute, startSmtpInbound } from '../mailbox/index.ts';
import { largestBody, type ServerConfig } from './config.ts';
import { listenHttp, type HttpListener, type HttpRoute } from './http.ts';
import { formatAuthority, OwnNames, parseHostHeader, type RequestPlace, webSocketBase } from './own-names.ts';
import { OwnOrigins } from './origins.ts';
import { SESSION_MIGRATIONS, WebSessions, createSessionRoute, sessionCaller } from '../session/index.ts';
import { loadAdminToken, loadSecret, secretPath } from './secrets.ts';
import { lockDataDir } from './pid-lock.ts';
import { createAdminRoute, serverCmdlets } from '../admin/index.ts';
import { createConnectionGuard } from './connections.ts';
import { createWebRoute, lazyWebBundle } from '../web/index.ts';
import { createSipSink } from './sip-service.ts';

import { isWildcardAddress, type ConnectionGuard, connectStream, createWebSocketAcceptor, type Endpoint, type Flow, formatEndpoint, listenStream, listenUdp, NonceIssuer, type SipLimits, sipLimits, type StreamListener, TransactionLayer, type UdpListener, warmSipPaths } from '../sip/index.ts';

export const PRODUCT = 'Parley/0.1.0';
/** how long a connection to another node of the cluster may take before that node counts as unreachable, ms */
const HOP_CONNECT_TIMEOUT_MS = 3_000;

export interface RunningServer {
  readonly udp: Endpoint;
  readonly tcp: Endpoint;
  readonly tls: Endpoint | null;
  readonly http: Endpoint;
  /** the federation link's mutual-TLS port for partners (config federation); null when off */
  readonly federation: Endpoint | null;
  /** HTTPS and WSS (config httpsPort); null when off */
  readonly https: Endpoint | null;
  readonly wsUrl: string;
  /** the web client's URL for a person: publicUrl, or an address of this server (never 0.0.0.0; localhost when the machine has none) */
  readonly webUrl: string;
  /** the line printed when ready; tests read the ports from it */
  readonly readyLine: string;
  /**
   * Drains, then stops (SIGTERM): /ready answers DRAINING, new connections and SIP requests are
   * refused, the requests in flight are answered (for up to half of shutdownTimeout), the spool's
   * open group commit is written (its 202s go out), WebSockets close with 1001, connections close.
   */
  close(): Promise<void>;
  /** reads the TLS certificate and key files again (SIGHUP); never throws, an unusable pair is logged and kept out */
  reloadCertificates(reason: string): void;
  /** the step close() is at, for the log line when it does not finish in time */
  stopStep(): string;
}

export async function startServer(config: Readonly<ServerConfig>, logger: Logger): Promise<RunningServer> {
  // The durable state: SQLite in the data directory, or PostgreSQL when `database` names one (the
  // data directory then keeps the secrets and the pid file only)
  const storage = await openStorage({ dataDir: config.dataDir, database: config.database });
  const { sql } = storage;
  // parley.pid: `parley restore` and a second `serve` learn that this directory is in use
  let unlock: () => void;
  try {
    unlock = lockDataDir(config.dataDir);
  } catch (err) {
    await sql.close();
    throw err;
  }
  try {
    await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS, OFFLINE_MIGRATIONS, TRACE_MIGRATIONS, PRESENCE_MIGRATIONS, AUTH_MIGRATIONS, SESSION_MIGRATIONS, HISTORY_MIGRATIONS, FEDERATION_MIGRATIONS]);
  } catch (err) {
    unlock();
    await sql.close();
    throw err;
  }
  // Cluster mode (issue 16): the secrets every node shares (PostgreSQL), Redis for the location
  // service, the node registry and the bus. Not opened at all on a single process.
  let cluster: ClusterMember | null = null;
  if (config.cluster !== null) {
    try {
      cluster = await joinCluster({ nodeId: config.cluster.nodeId, redis: config.cluster.redis, sql, logger: logger.child({ component: 'cluster', node: config.cluster.nodeId }) });
    } catch (err) {
      unlock();
      await sql.close();
      throw err;
    }
  }

  // Sign-in protection (SIP digest and HTTP Basic alike): failed sign-ins lock out their source,
  // then the account for unfamiliar sources; HTTP password checks wait in a fair, bounded queue.
  const { lockout } = config.auth;
  const lockouts = new LockoutKeeper({
    sql,
    logger: logger.child({ component: 'sign-in' }),
    policy: { sourceThreshold: lockout.sourceThreshold, accountThreshold: lockout.accountThreshold, windowMs: lockout.window * 1000, durationMs: lockout.duration * 1000, maxDurationMs: lockout.maxDuration * 1000 },
    // the server locks, so the audit log names the system as who did it
    audit: (tx, identity, property, oldValue, newValue) => recordAudit(tx, { actor: 'system', cmdlet: 'sign-in guard', now: Date.now }, identity, property, oldValue, newValue),
  });
  const signIn = new BasicSignIn({
    sql,
    domain: config.domain,
    guard: lockouts.guard,
    queue: new FairQueue({ concurrency: config.auth.hashConcurrency, maxQueued: config.auth.hashQueue, maxPerSource: config.auth.hashQueuePerSource }),
    cacheMs: config.auth.credentialCache * 1000,
    trustedProxies: config.auth.trustedProxies,
  });

  // The names that are this server's, for every URL given to clients (never a foreign Host
  // header); the HTTP port is known once HTTP listens.
  let httpPort = config.httpPort;
  let httpsPort = config.httpsPort;
  const ownNames = new OwnNames({ listen: config.listen, domain: config.domain, publicHosts: config.publicHosts, publicUrl: config.publicUrl, httpPort: () => httpPort });
  const advertise = config.sip.advertise ?? undefined;
  const advertisedHost = advertise === undefined ? undefined : parseHostHeader(advertise)?.host;
  /** The request's place for OwnNames: its Host, the local address of its connection, TLS or not. */
  const placeOf = (req: http.IncomingMessage, secure: boolean) => ({ host: req.headers.host, localAddress: req.socket.localAddress, secure });
  // The pages that may use a browser session and open SIP over WebSocket: the server's own names on
  // the HTTP port, the origins the operator lists (a reverse proxy's), and publicUrl's (the pages
  // clients are sent to)
  const ownOrigins = new OwnOrigins({ names: ownNames, httpPort: () => httpPort, httpsPort: () => httpsPort, allowed: [...config.web.allowedOrigins, ...(config.publicUrl === null ? [] : [config.publicUrl])] });
  const isOwnOrigin = (origin: string): boolean => ownOrigins.isOwn(origin);
  // Browser sessions (src/session), and who is calling an HTTP route: the session cookie or HTTP Basic
  const webSessions = new WebSessions({ sql });
  const basic = basicCaller(signIn, config.domain);
  const apiCaller = sessionCaller({ sessions: webSessions, basic, isOwnOrigin, challenge: false });
  // The event packages (RFC 6665): SUBSCRIBE and PUBLISH are part of Allow; the event service
  // starts the packages once the context exists. The EWS URL names the HTTP port, known once HTTP
  // listens; without publicUrl it names the sip.advertise host, else the address the subscriber reached.
  const presence = new PresenceService({
    ...config.presence,
    blocks: databaseBlockList(sql),
    contacts: databaseContactLists(sql),
    // cluster mode: the publications of every node, in Redis; changes told over the bus
    ...(cluster === null ? {} : { shared: new RedisPublications(cluster.redis, cluster.bus, { node: cluster.node, onError: (err) => logger.warn({ err }, 'presence: %s', err.message) }) }),
  });
  const findUser = cachedUserLookup(sql);
  const userExists = async (address: string): Promise<boolean> => (await findUser(address)) !== undefined;
  const digestAccount = (user: UserRecord | undefined): DigestAccount | undefined => {
    if (!user) return undefined;
    if (user.realm !== config.domain) {
      logger.warn({ user: user.address, realm: user.realm }, 'password of %s was set for realm %s; set it again for %s', user.address, user.realm, config.domain);
      return undefined;
    }
    return { address: user.address, ha1: user.ha1 };
  };
  const displayName = async (address: string): Promise<string | null> => (await findUser(address))?.displayName ?? null;
  // Where each user's mailbox is: the embedded store, or an external EWS server (config.mailboxes).
  // The embedded mailboxes' quotas apply to EWS, SMTP and the offline spool alike.
  const mailboxQuota = new MailboxQuota(config.mailboxQuota);
  const mailboxes = createMailboxRouting(config.mailboxes, new EmbeddedMailboxConnector({ sql, userExists, quota: mailboxQuota }));
  // The DNS the server asks (config dnsServers, else the system's): the MX hosts of outbound mail,
  // and the federation link's SRV records unless federation.dnsServers names other servers. One
  // cache: answers are kept for their TTLs whoever asked.
  const dns = new CachingResolver({ servers: config.dnsServers });
  const messageSummary = new MessageSummaryPackage({ summary: (address) => mailboxes.connectorFor(address).connector.missedSummary(address) });
  // a mailbox changed, settings changed: this node's subscribers, and in a cluster every node's (shareEvents below)
  let mailboxChanged = (address: string): void => messageSummary.mailboxChanged(address);
  const settingsChangedHere = (): void => {
    // what this process wrote counts at once, before the version triggers' NOTIFY comes back
    staleVersionedCaches(sql);
    provisioning.settingsChanged();
  };
  let settingsChanged = settingsChangedHere;
  const provisioning = new ProvisioningPackage({ sql, ewsUrl: (local) => `${ownNames.clientBase(advertisedHost ?? local)}/EWS/Exchange.asmx` });
  // in a cluster, the dialog proxy's flow tokens are signed with the cluster's key: any node reads them
  const events = new EventService({ packages: [presence, messageSummary, provisioning], limits: config.events, ...(cluster === null ? {} : { dialogKey: cluster.dialogKey }) });
  const handlers = [registerHandler, messageHandler, optionsHandler, ...presence.handlers, ...events.handlers];
  const location = cluster?.location ?? new MemoryLocationService();
  const registrations = createRegistrationEvents();
  /** bindings dropped at once (a closed connection, expiry, a dead node): logged, and presence and history told */
  const announceGone = (gone: readonly Binding[], why: string): void => {
    for (const b of gone) logger.info({ aor: b.aor, flow: b.flow.id }, 'binding of %s dropped: %s', b.aor, why);
    for (const aor of new Set(gone.map((b) => b.aor))) registrations.emit('changed', aor);
  };
  const connections = new Map<string, Flow>();
  const udpListeners: UdpListener[] = [];
  // The framing reads no body larger than the largest any method accepts: a longer one would be
  // refused once read anyway, so it is refused (413) before it is held.
  const limits: SipLimits = sipLimits({ maxBody: largestBody(config) });
  // before any socket opens: the first requests find the parser and the digest check compiled
  warmSipPaths(limits);

  // The offline-IM pipeline: the router hands it what no registration took; its worker delivers.
  const offline = new OfflineService({
    sql,
    // the same across restarts, and one per node: a cluster's node id, else host and data directory
    node: config.cluster?.nodeId ?? `${hostname()}:${resolvePath(config.dataDir)}`,
    // the nodes of a cluster admit into and deliver from one spool: the quotas follow the spool
    shared: cluster !== null,
    logger: logger.child({ component: 'offline' }),
    domain: config.domain,
    routing: mailboxes,
    // an e-mail to a partner's user (issue 15) is refused before the 202 when no route reaches its
    // domain: only with smtpRoutes.mx false (MX routing reaches every domain)
    smtpRoutes: config.smtpRoutes,
    displayName,
    retry: { baseMs: config.offlineIm.retryBase * 1000, maxMs: config.offlineIm.retryMax * 1000 },
    deliveryBatch: config.offlineIm.deliveryBatch,
    leaseMs: config.offlineIm.deliveryLease * 1000,
    commitWindowMs: config.offlineIm.commitWindowMs,
    commitMaxBatch: config.offlineIm.commitMaxBatch,
    timeZone: config.offlineIm.timeZone,
    quota: { sender: config.offlineIm.senderQuota, recipient: config.offlineIm.recipientQuota },
    // RFC 3842: the recipient's subscribed clients learn of the new Missed Conversation
    onDelivered: (entry) => mailboxChanged(entry.recipient),
    stats: { batch: (connector, succeeded, failed, seconds) => metrics.batch(connector, succeeded, failed, seconds) },
  });

  // Conversation History: the router tells the recorder what became of each MESSAGE (after the
  // answer went out; a group commit off the relay path); ended conversations and unread messages
  // become spool entries, which the offline worker delivers
  const history = new HistoryService({
    sql,
    logger: logger.child({ component: 'history' }),
    commitWindowMs: config.history.commitWindowMs,
    displayName,
    registrations,
    bindings: async (aor) => (await location.lookup(aor, Date.now())).length,
    onSpooled: (pickupAt) => offline.worker.kick(pickupAt),
  });

  // /metrics: the counts the capabilities keep, read at scrape time, and the events counted as they happen
  const metrics = new ServerMetrics({
    // in a cluster: the bindings over this node's connections, and the whole cluster's apart
    registrations: () => location.countByTransport(Date.now()),
    ...(cluster === null ? {} : { clusterRegistrations: () => cluster.location.countClusterByTransport(Date.now()) }),
    // the guard watches every stream connection from its accept on (the flows map only once a message came)
    connections: () => guard.countByProtocol(),
    spool: () => spoolCounts(sql),
    subscriptions: () => events.subscriptions.live.countByPackage(),
    subscriptionAdmissions: () => events.subscriptions.live.admissions,
    spoolQuotaRefusals: () => offline.quota.refusals,
    mailboxQuotaRefusals: () => mailboxQuota.refusals,
    signIn: () => ({ ...lockouts.guard.counts, lockedNow: lockouts.guard.lockedNow() }),
    database: async () => (storage.sqlite !== null ? databaseSize(storage.sqlite) : { bytes: await postgresSize(sql), freeBytes: null }),
    retention: () => retention.stats,
    history: () => history.counts(),
    now: Date.now,
  });

  // Retention: delivered offline messages, trace, audit, the change log… purged in small batches
  // on a connection of its own (src/retention), so SIP and the spool writer never wait long for it
  const retention = new RetentionScheduler({ sql, policy: config.retention, logger: logger.child({ component: 'retention' }), lockoutWindowMs: lockout.window * 1000 });

  // the name partners reach this server by is one of its own (a Route naming it is for us)
  const federationFqdn = config.federation?.fqdn.toLowerCase().replace(/\.$/, '');
  // SIGTERM: new requests are refused while those in flight are answered (close() below)
  const drain = new RequestDrain(config.shutdownTimeout);
  const ctx: SipContext = {
    domain: config.domain,
    isOwnHost: (host) => {
      const name = host.toLowerCase().replace(/^\[|\]$/g, '');
      return name === advertisedHost || name === federationFqdn || ownNames.isOwn(host);
    },
    allow: handlers.map((h) => h.method),
    product: PRODUCT,
    logger,
    auth: new Authenticator({
      realm: config.domain,
      algorithms: config.sip.digestAlgorithms,
      checkDigestUri: config.sip.checkDigestUri,
      nonces: new NonceIssuer({ secret: cluster?.nonceKey ?? loadSecret(config.dataDir, 'nonce.key'), lifetimeSeconds: config.sip.nonceLifetime }),
      guard: lockouts.guard,
      findAccount(username) {
        const user = findUser(`${username}@${config.domain}`);
        return user instanceof Promise ? user.then(digestAccount) : digestAccount(user);
      },
    }),
    location,
    registrations,
    registrar: config.registrar,
    transactions: undefined as unknown as TransactionLayer, // set just below: the layer needs the dispatcher
    resolveFlow(ref) {
      if (ref.protocol !== 'udp') return connections.get(ref.id);
      const socket = udpListeners.find((l) => l.local.port === ref.local.port) ?? udpListeners[0];
      return socket?.flowTo(ref.remote);
    },
    userExists,
    user: findUser,
    messaging: config.messaging,
    events,
    offline,
    history: history.recorder,
    now: Date.now,
    stats: metrics,
    drain,
  };
  const dispatch = createDispatcher(ctx, handlers);
  const transactions = new TransactionLayer(config.sip, { onRequest: dispatch });
  ctx.transactions = transactions;
  events.start(ctx);
  const sink = createSipSink({ logger, transactions, location, registrations, connections, ctx, events });

  const closers: Array<() => Promise<void> | void> = [];
  // the cluster's parts close last: the bindings of this node's connections are dropped from Redis
  // until then (clusterClosers, below)
  const clusterClosers: Array<() => Promise<void> | void> = [];
  // the live nodes (cluster mode), once this node's listeners are known
  let registry: NodeRegistry | null = null;
  if (cluster !== null) {
    const member = cluster;
    closers.push(async () => {
      for (const close of clusterClosers.reverse()) await close();
      await member.close();
    });
  }
  // Limits and timeouts of every SIP connection (TCP, TLS, WebSocket), counted together.
  const guard = createConnectionGuard(config.sip.connections, logger, (code) => metrics.connectionEvent(code));
  guard.start();
  closers.push(() => guard.stop());
  try {
    if (cluster !== null) {
      const member = cluster;
      const shared = await shareEvents(member.bus, {
        registrations,
        mailboxChanged: (address) => messageSummary.mailboxChanged(address),
        settingsChanged: settingsChangedHere,
        watchedAors: () => events.subscriptions.ofPackage(presence.name).map((sub) => sub.resource),
        onError: (err) => logger.warn({ err }, 'publishing on the cluster bus failed: the other nodes miss that event (%s)', err.message),
      });
      mailboxChanged = shared.mailboxChanged;
      settingsChanged = shared.settingsChanged;
      clusterClosers.push(() => shared.close());
      // the bindings a previous life of this node left (a crash): their connections are gone
      announceGone(await member.location.removeNode(member.node), 'this node restarted');
    }
    // closed after the spool (closers run in reverse): the connections IMAP connectors keep
    closers.push(() => mailboxes.close());
    // started first, stopped last: what the transports accepted until the end gets committed
    await offline.start();
    const closeOffline = once(() => offline.close());
    closers.push(closeOffline);
    // after the spool (its entries go there), stopped before it: what it recorded until the end gets committed
    history.start();
    const closeHistory = once(() => history.close());
    closers.push(closeHistory);
    await lockouts.start();
    closers.push(() => lockouts.close());
    retention.start();
    closers.push(() => retention.close());
    const [tcp, udp] = await listenTcpAndUdp(config.listen, config.sipPort, limits, sink, guard, advertise);
    udpListeners.push(udp);
    const closeStreams = once(async () => {
      await tcp.close();
      await tls?.close();
      await federationListener?.close();
      partnerPool?.close();
    });
    closers.push(once(() => udp.close()), closeStreams);

    // SIP over TLS and HTTPS start once the certificate is there (after HTTP: ACME's challenges)
    let tls: StreamListener | null = null;
    let federationListener: StreamListener | null = null;
    let partnerPool: PartnerPool | null = null;
    let federationCertificates: CertificateKeeper | null = null;
    let reloadPartnerCas: (reason: string) => void = () => {};
    const tlsWanted = config.tls !== null || config.acme !== null;
    const challenges = config.acme === null ? null : new AcmeChallenges();

    const webSocketAcceptor = (secure: boolean) =>
      createWebSocketAcceptor({
        path: '/sip',
        secure,
        limits,
        sink,
        guard,
        originAllowed: isOwnOrigin,
        onOriginRefused: (origin, remote) => {
          logger.warn({ origin: origin.slice(0, 200), remote: formatEndpoint(remote) }, 'WebSocket upgrade from a page of %s refused: not one of this server\'s origins', origin.slice(0, 200));
          metrics.connectionEvent('SIP_WEBSOCKET_ORIGIN');
        },
      });
    const websocket = webSocketAcceptor(false);
    // SIP over secure WebSocket on the HTTPS port
    const secureWebsocket = tlsWanted && config.httpsPort !== null ? webSocketAcceptor(true) : null;
    const closeWebSockets = once(async () => {
      await websocket.close();
      await secureWebsocket?.close();
    });
    closers.push(closeWebSockets);
    // /ready: what a load balancer asks before it sends traffic here (open, like /health)
    let http: HttpListener | undefined;
    const listenerBound = (kind: 'SIP', where: string, bound: () => boolean): ReadinessCheck => ({ name: `${kind} ${where}`, probe: () => (bound() ? null : `${kind} listener ${where} is not bound`) });
    const checks: ReadinessCheck[] = [
      storage.sqlite !== null ? databaseWritable(storage.sqlite) : postgresWritable(sql),
      { name: 'spool writer', probe: () => (offline.writerRunning ? null : 'spool writer thread is not running') },
      listenerBound('SIP', `udp ${formatEndpoint(udp.local)}`, () => udp.bound),
      listenerBound('SIP', `tcp ${formatEndpoint(tcp.local)}`, () => tcp.bound),
      // the HTTP port is known once it listens
      { get name() { return `HTTP ${config.listen}:${httpPort}`; }, probe: () => (http?.bound === true ? null : `HTTP listener ${config.listen}:${httpPort} is not bound`) },
    ];
    // Each capability that serves HTTP adds its route here (EWS, admin API, web client).
    const routes: HttpRoute[] = [createReadyRoute({ checks, draining: () => drain.draining, product: PRODUCT })];
    // ACME's HTTP-01 challenges: /.well-known/acme-challenge/<token>, plain HTTP (RFC 8555 §8.3)
    if (challenges !== null) routes.push(challenges);
    routes.push(createEwsRoute({ sql, userExists, logger, domain: config.domain, product: PRODUCT, names: ownNames, signIn, smtpRoutes: config.smtpRoutes, quota: mailboxQuota, onMailboxChanged: (address) => mailboxChanged(address), onRequest: (operation, fault) => metrics.ewsRequest(operation, fault) }));
    routes.push(createAutodiscoverRoute({ displayName, logger, domain: config.domain, product: PRODUCT, names: ownNames, signIn }));
    // a user's blocked watchers and contact list: /presence/blocked, /presence/contacts (HTTP Basic, as EWS)
    routes.push(createPresenceRoute({ sql, logger, domain: config.domain, product: PRODUCT, userExists, caller: sessionCaller({ sessions: webSessions, basic, isOwnOrigin, challenge: true }), onBlocksChanged: () => void presence.blocksChanged(), onContactsChanged: (owner) => presence.contactsChanged(owner),
      // partners' users on contact lists (issue 15): the link is wired below, so it is read per request
      ...(config.federation === null ? {} : { outboundRefusal: (sender: string, domain: string) => (ctx.federation === undefined ? { code: 'FEDERATION_DISABLED', warning: `the federation link of ${config.domain} is not running` } : ctx.federation.outboundRefusal(sender, domain)) }) }));
    // the web client's sign-in: /api/session (the session cookie)
    routes.push(createSessionRoute({ sql, logger, domain: config.domain, product: PRODUCT, signIn, sessions: webSessions, isOwnOrigin, baseFor: (req, tls) => ownNames.baseFor(placeOf(req, tls)).base, trustedProxies: config.auth.trustedProxies,
      // in a cluster: every live node's, so the web client can move to another when this one fails
      ...(cluster === null ? {} : { clusterWebSocketUrls: () => registry?.webSocketUrls() ?? [] }) }));
    // the organisation's address book for signed-in users: /api/directory
    routes.push(createDirectoryRoute({ sql, logger, product: PRODUCT, caller: apiCaller }));
    // Missed Conversations and Conversation History of the embedded mailbox: /api/conversations;
    // marking one read notifies the user's message-summary subscribers, as EWS does
    routes.push(
      createConversationsRoute({
        sql,
        logger,
        product: PRODUCT,
        caller: apiCaller,
        isExternal: (address) => mailboxes.connectorFor(address).name !== EMBEDDED,
        displayName,
        onMailboxChanged: (address) => mailboxChanged(address),
      }),
    );
    const adminToken = loadAdminToken(config.dataDir);
    routes.push(createMetricsRoute({ render: () => metrics.render(), token: adminToken, trustedProxies: config.auth.trustedProxies, product: PRODUCT, logger }));
    routes.push(
      createAdminRoute({
        sql,
        logger,
        token: adminToken,
        domain: config.domain,
        product: PRODUCT,
        endpoints: [...spoolerEndpoints(sql, { spool: offline.quota, mailbox: mailboxQuota }), traceEndpoint(sql)],
        // Get-CsUserPresence reads the live presence; block changes NOTIFY the watcher at once; lockout
        // clears reach the sign-in guard at once
        cmdlets: serverCmdlets({ presence, lockouts }),
        // clients subscribed to their provisioning hear of the change at once
        onSettingsChanged: () => settingsChanged(),
      }),
    );
    // the web client at / (built by esbuild at the first request); its CSP lets it connect only to this server's own names
    routes.push(createWebRoute({ bundle: lazyWebBundle(), logger: logger.child({ component: 'web' }), product: PRODUCT, ownAuthorities: (req) => [...webSocketAuthorities(ownNames, placeOf(req, false)), ...clusterAuthorities(registry)] }));
    // A WebSocket upgrade request is held to the SIP message timeout, like the messages after it
    // (never longer than Node's default for HTTP).
    http = await listenHttp({
      address: config.listen,
      port: config.httpPort,
      websocket,
      product: PRODUCT,
      routes,
      headersTimeoutMs: Math.min(guard.limits.messageTimeoutMs, 60_000),
      onAcceptError: (err) => guard.acceptFailed('ws', err),
    });
    httpPort = http.port;
    // Listening on every interface with nothing to name: say what to set before a client gets a URL it cannot use
    const addressWarning = ownNames.startupWarning(config.sip.advertise);
    if (addressWarning !== null) logger.warn({ listen: config.listen }, addressWarning);
    const httpListener = http;
    // The certificate of SIP over TLS and HTTPS (src/certs): PEM files (tls), or from an ACME CA
    // (acme), ordered now when none usable is stored, the HTTP port answering its challenges. Checked
    // now (a bad pair stops the start), then reloaded when its files change or on SIGHUP.
    let acmeCertificates: AcmeCertificates | null = null;
    let certificates: CertificateKeeper | null = null;
    const certificateLogger = logger.child({ component: 'certificates' });
    if (config.acme !== null && challenges !== null) {
      const files = { cert: secretPath(config.dataDir, 'acme-cert.pem'), key: secretPath(config.dataDir, 'acme-key.pem'), accountKey: config.acme.accountKeyFile ?? secretPath(config.dataDir, 'acme-account.pem') };
      const issuer = new AcmeCertificates({ settings: config.acme, files, challenges, logger: logger.child({ component: 'acme' }), onIssued: () => certificates?.reload('ACME certificate issued') });
      acmeCertificates = issuer;
      closers.push(() => issuer.close());
      await issuer.ensure();
      certificates = new CertificateKeeper({ files: { cert: files.cert, key: files.key, certSetting: 'acme (stored certificate)', keySetting: 'acme (stored key)' }, logger: certificateLogger, stats: metrics });
    } else if (config.tls !== null) {
      certificates = new CertificateKeeper({ files: { cert: config.tls.cert, key: config.tls.key, certSetting: 'tls.cert', keySetting: 'tls.key' }, logger: certificateLogger, stats: metrics });
    }
    const keeper = certificates;
    if (keeper !== null) {
      closers.push(() => keeper.close());
      const listener = await listenStream({ protocol: 'tls', address: config.listen, port: config.sipsPort, limits, sink, guard, tls: keeper.secureContextOptions(), advertise });
      tls = listener;
      keeper.attach(listener);
      checks.push(listenerBound('SIP', `tls ${formatEndpoint(listener.local)}`, () => listener.bound));
    }

    // HTTPS: the same routes, and SIP over secure WebSocket, with the certificate of SIP over TLS
    let https: HttpListener | null = null;
    if (certificates !== null && secureWebsocket !== null && config.httpsPort !== null) {
      https = await listenHttp({
        address: config.listen,
        port: config.httpsPort,
        websocket: secureWebsocket,
        product: PRODUCT,
        routes,
        headersTimeoutMs: Math.min(guard.limits.messageTimeoutMs, 60_000),
        onAcceptError: (err) => guard.acceptFailed('wss', err),
        tls: certificates.secureContextOptions(),
      });
      httpsPort = https.port;
      certificates.attach(https);
      const httpsListener = https;
      checks.push({ name: `HTTPS ${formatEndpoint({ address: https.address, port: https.port })}`, probe: () => (httpsListener.bound ? null : `HTTPS listener ${formatEndpoint({ address: httpsListener.address, port: httpsListener.port })} is not bound`) });
    }
    certificates?.watch();
    acmeCertificates?.start();

    // The federation link (issue 15): partners' own mutual-TLS port, its own certificate (reloaded
    // like the users' one), outbound connections to partners, and the gate the router asks.
    const fed = config.federation;
    if (fed !== null) {
      const fedKeeper = new CertificateKeeper({ files: { cert: fed.cert, key: fed.key, certSetting: 'federation.cert', keySetting: 'federation.key' }, logger: certificateLogger.child({ listener: 'federation' }) });
      federationCertificates = fedKeeper;
      // partners check that it names the host their SRV record or ProxyFqdn names (RFC 6125)
      if (new X509Certificate(fedKeeper.current.cert).checkHost(fed.fqdn, { partialWildcards: false }) === undefined) {
        logger.warn({ setting: 'federation.cert', fqdn: fed.fqdn, subject: fedKeeper.current.subject }, 'federation.cert does not name federation.fqdn %s (%s): partners will refuse this server', fed.fqdn, fedKeeper.current.subject);
      }
      closers.push(() => fedKeeper.close());
      const fedLogger = logger.child({ component: 'federation' });
      // undefined: node's bundled CAs, the system's trust for partners' certificates
      const cas = new PartnerCas(fed.ca, fedLogger);
      const withCa = ({ cert, key }: { cert: Buffer; key: Buffer }) => (cas.current === undefined ? { cert, key } : { cert, key, ca: cas.current });
      const peerOf = (socket: TLSSocket) => ({ names: certificateNames(socket.getPeerCertificate()) });
      const listener = await listenStream({
        protocol: 'tls',
        address: fed.listen ?? config.listen,
        port: fed.port,
        limits,
        sink,
        guard,
        tls: withCa(fedKeeper.current),
        advertise: fed.fqdn,
        partners: {
          peerOf,
          // who and why, at info: a partner misconfigured (or a scanner) is not the server's fault
          onRefused: (remote, reason, code) => fedLogger.info({ remote: formatEndpoint(remote), code }, 'federation handshake from %s failed: %s', formatEndpoint(remote), reason),
        },
      });
      federationListener = listener;
      // a new pair keeps the partners' CAs (setSecureContext replaces the whole context)
      fedKeeper.attach({ setSecureContext: (options) => listener.setSecureContext(withCa(options as { cert: Buffer; key: Buffer })) });
      reloadPartnerCas = (reason) => {
        if (cas.reload(reason)) listener.setSecureContext(withCa(fedKeeper.current));
      };
      fedKeeper.watch();
      checks.push(listenerBound('SIP', `federation ${formatEndpoint(listener.local)}`, () => listener.bound));
      // one cache for both: the SRV records that route a request also verify the partner's certificate
      const partnerDns = fed.dnsServers.length > 0 ? new CachingResolver({ servers: fed.dnsServers }) : dns;
      const sentBy = `${fed.fqdn}:${listener.local.port}`;
      const pool = new PartnerPool({
        dns: partnerDns,
        dial: (o) => connectStream({ ...o, timeoutMs: fed.connectTimeout * 1000, limits, sink, guard, advertise: sentBy }),
        credentials: () => ({ cert: fedKeeper.current.cert, key: fedKeeper.current.key, ca: cas.current }),
        logger: fedLogger,
      });
      partnerPool = pool;
      ctx.federation = new FederationLink({
        sql,
        domain: config.domain,
        sentBy,
        dns: partnerDns,
        pool,
        logger: fedLogger,
      });
    }
    const httpsListener = https;
    const closeHttp = once(async () => {
      await httpListener.close();
      await httpsListener?.close();
    });
    closers.push(closeHttp);

    const sweep = setInterval(() => {
      location.sweep(Date.now()).then(
        (gone) => announceGone(gone, 'expired'),
        (err: unknown) => logger.error({ err }, 'sweeping expired bindings failed'),
      );
    }, 30_000);
    sweep.unref();
    closers.push(() => clearInterval(sweep));
    closers.push(() => transactions.close());
    closers.push(() => events.close());

    // The cluster: this node announced to the others (where they relay to, its WebSocket URLs for
    // the web client), the others' announcements read, and the hop pool the router relays through
    if (cluster !== null) {
      const member = cluster;
      const reachHost = advertisedHost ?? (isWildcardAddress(config.listen) ? ownNames.usableHost() ?? config.listen : config.listen);
      const sipAddress = config.cluster?.sipAddress ?? formatAuthority(reachHost, tcp.local.port);
      const ownWebSockets = [`${webSocketBase(ownNames.clientBase(advertisedHost))}/sip`];
      if (https !== null) ownWebSockets.push(`wss://${formatAuthority(advertisedHost ?? ownNames.usableHost() ?? 'localhost', https.port)}/sip`);
      const nodes = await NodeRegistry.start(member.redis, {
        self: { node: member.node, sip: sipAddress, webSocketUrls: ownWebSockets },
        onGone: (node) => {
          logger.warn({ node }, 'cluster node %s stopped announcing itself: this node drops its registrations', node);
          member.location.removeNode(node).then(
            (gone) => announceGone(gone, `node ${node} is down`),
            (err: unknown) => logger.error({ err, node }, 'dropping the registrations of node %s failed', node),
          );
        },
        onJoined: (node) => logger.info({ node }, 'cluster node %s joined', node),
        onLeft: (node) => logger.warn({ node }, 'cluster node %s left (withdrawn, or silent for 10 s): its registrations count as unreachable', node),
        onError: (err) => logger.warn({ err }, 'cluster registry: %s', err.message),
      });
      registry = nodes;
      const pool = new ClusterHopPool({
        node: member.node,
        key: member.hopKey,
        registry: nodes,
        dial: (host, port) => connectStream({ address: host, port, tls: null, timeoutMs: HOP_CONNECT_TIMEOUT_MS, limits, sink, guard, advertise }),
      });
      ctx.cluster = pool;
      // withdrawn first (the others stop relaying here), then this node's bindings dropped: its connections close with it
      clusterClosers.push(async () => {
        await pool.close();
        announceGone(await member.location.removeNode(member.node), 'this node stopped');
      });
      clusterClosers.push(() => nodes.close());
      logger.info({ node: member.node, sip: sipAddress, nodes: nodes.nodes() }, 'cluster node %s joined (relayed requests reach it at %s); live nodes: %s', member.node, sipAddress, nodes.nodes().join(', '));
    }

    let smtp: Endpoint | null = null;
    if (config.smtpPort !== null) {
      const listener = await startSmtpInbound({ sql, logger, domain: config.domain, userExists, address: config.listen, port: config.smtpPort, quota: mailboxQuota });
      closers.push(() => listener.close());
      smtp = { address: listener.address, port: listener.port };
    }
    // mail to other organisations: by smtpRoutes, else to the recipient domain's MX hosts (RFC 5321 §5.1)
    const outbound = new SmtpOutbound({ sql, logger, domain: config.domain, routes: config.smtpRoutes, dns });
    outbound.start();
    closers.push(() => outbound.stop());

    const httpEndpoint = { address: http.address, port: http.port };
    let step = 'running';
    // the URL a client elsewhere would use: publicUrl, or a usable address (never 0.0.0.0)
    const wsUrl = `${webSocketBase(ownNames.clientBase(advertisedHost))}/sip`;
    const httpsEndpoint = https === null ? null : { address: https.address, port: https.port };
    const wssUrl = httpsEndpoint === null ? 'off' : `wss://${formatAuthority(advertisedHost ?? ownNames.usableHost() ?? 'localhost', httpsEndpoint.port)}/sip`;
    const readyLine =
      `Parley ready: domain=${config.domain} udp=${formatEndpoint(udp.local)} tcp=${formatEndpoint(tcp.local)} ` +
      `tls=${tls ? formatEndpoint(tls.local) : 'off'} http=${formatEndpoint(httpEndpoint)} https=${httpsEndpoint ? formatEndpoint(httpsEndpoint) : 'off'} ` +
      `ws=${wsUrl} wss=${wssUrl} smtp=${smtp ? formatEndpoint(smtp) : 'off'} federation=${federationListener ? formatEndpoint(federationListener.local) : 'off'}`;
    return {
      udp: udp.local,
      tcp: tcp.local,
      tls: tls?.local ?? null,
      federation: federationListener?.local ?? null,
      http: httpEndpoint,
      https: httpsEndpoint,
      wsUrl,
      webUrl: `${ownNames.publicUrl ?? `http://${formatAuthority(ownNames.usableHost() ?? 'localhost', http.port)}`}/`,
      readyLine,
      stopStep: () => step,
      reloadCertificates: (reason) => {
        if (certificates === null && federationCertificates === null) logger.info({ reason }, '%s: no certificate to reload (TLS is off)', reason);
        else certificates?.reload(reason);
        federationCertificates?.reload(reason);
        reloadPartnerCas(reason);
        // with ACME: renew now if due (an issued certificate reloads through the keeper)
        void acmeCertificates?.renewIfDue(reason);
      },
      close: once(async () => {
        const inFlightMs = (config.shutdownTimeout * 1000) / 2;
        step = 'refusing new connections and requests';
        drain.start();
        tcp.stopAccepting();
        tls?.stopAccepting();
        federationListener?.stopAccepting();
        websocket.stopAccepting();
        secureWebsocket?.stopAccepting();
        step = `answering the SIP requests in flight (${drain.inFlight})`;
        if (!(await drain.idle(inFlightMs))) logger.warn({ inFlight: drain.inFlight }, '%d SIP requests still in flight after %d ms; stopping anyway', drain.inFlight, inFlightMs);
        step = 'writing Conversation History\'s open group commit';
        await closeHistory();
        step = 'writing the spool\'s open group commit';
        await closeOffline();
        step = 'closing WebSockets (1001)';
        await closeWebSockets();
        step = 'closing TCP and TLS connections';
        await closeStreams();
        step = 'closing HTTP';
        await closeHttp();
        step = 'stopping the other services';
        for (const close of closers.reverse()) await close();
        await sql.close();
        unlock();
        step = 'stopped';
      }),
    };
  } catch (err) {
    for (const close of closers.reverse()) await close();
    await sql.close();
    unlock();
    throw err;
  }
}

/** UDP and TCP share one port number (RFC 3261 §18); with port 0 both must land on the same one. */
async function listenTcpAndUdp(
  address: string,
  port: number,
  limits: SipLimits,
  sink: Parameters<typeof listenUdp>[0]['sink'],
  guard: ConnectionGuard,
  advertise: string | undefined,
): Promise<[StreamListener, UdpListener]> {
  for (let attempt = 0; ; attempt++) {
    const tcp = await listenStream({ protocol: 'tcp', address, port, limits, sink, guard, advertise });
    try {
      const udp = await listenUdp({ address, port: tcp.local.port, limits, sink, advertise });
      return [tcp, udp];
    } catch (err) {
      await tcp.close();
      if (port !== 0 || attempt >= 20 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}

/**
 * The host[:port]s the web client may open its SIP WebSocket to (CSP connect-src): the page's own
 * when the browser named one of ours, and the one the session's webSocketUrl names.
 */
function webSocketAuthorities(names: OwnNames, place: RequestPlace): string[] {
  const given = new URL(names.baseFor(place).base).host;
  const asked = place.host === undefined ? undefined : parseHostHeader(place.host);
  const page = asked !== undefined && names.isOwn(asked.host) ? formatAuthority(asked.host, asked.port) : undefined;
  return page === undefined || page === given ? [given] : [given, page];
}

/** The host[:port]s of the other live nodes' WebSocket URLs (the web client may fail over to them); none on one process. */
function clusterAuthorities(registry: NodeRegistry | null): string[] {
  return registry === null ? [] : registry.webSocketUrls().map((url) => new URL(url).host);
}

/** A closer that runs once: the drain calls some early, the list of closers calls them again. */
function once(fn: () => Promise<void> | void): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= Promise.resolve().then(fn));
}
