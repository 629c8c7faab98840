// `parley check-config`: what start-up would refuse, found without starting (no port is bound, no
// file is written), so a service manager or an operator can test a configuration before a restart.
// loadConfig validates the settings; this adds what only the files they name can tell.

import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CertificateError, readPair } from '../certs/index.ts';
import { describeRetention } from '../retention/index.ts';
import { X509Certificate } from 'node:crypto';
import { ConfigError, type FederationConfig, type ServerConfig } from './config.ts';
import { secretPath } from './secrets.ts';
import { describeAddress, parseRedisAddress } from '../cluster/index.ts';
import type { ImapServerConfig } from '../offline/index.ts';

/** Throws ConfigError naming the setting; returns the lines of a summary when all is well. */
export function checkStartup(config: Readonly<ServerConfig>, now: Date = new Date()): string[] {
  checkDataDir(config.dataDir);
  const tls = config.tls !== null ? checkTls(config.tls, now) : config.acme !== null ? checkAcme(config, now) : 'off';
  const federation = config.federation === null ? 'off (other domains are refused)' : checkFederation(config.federation, config.listen, config.dnsServers, now);
  for (const [name, server] of Object.entries(config.mailboxes.servers ?? {})) {
    // the server reads them when it starts: an unreadable one would stop the start
    for (const [setting, file] of Object.entries(server)) if (setting.endsWith('File') && typeof file === 'string') readable(file, `mailboxes.servers.${name}.${setting}`);
    if (server.kind === 'graph' && server.certificateFile !== undefined) checkGraphCertificate(server.certificateFile, `mailboxes.servers.${name}.certificateFile`, now);
    if (server.kind === 'imap') checkImapFiles(server, `mailboxes.servers.${name}`);
  }
  return [
    `domain: ${config.domain}`,
    `listen: ${config.listen}`,
    `publicUrl: ${config.publicUrl ?? "not set (URLs given to clients name the request's Host when it is this server's, else the address the client connected to)"}`,
    `sip.advertise: ${config.sip.advertise ?? 'not set (Via and Contact name the local address of each connection)'}`,
    `ports: sip ${config.sipPort} (UDP, TCP), sips ${config.tls === null && config.acme === null ? `${config.sipsPort} (unused: TLS off)` : `${config.sipsPort} (TLS)`}, http ${config.httpPort} (EWS, WebSocket, admin API), https ${config.httpsPort ?? 'off'}, smtp ${config.smtpPort ?? 'off'}`,
    `tls: ${tls}`,
    `federation: ${federation}`,
    `cluster: ${describeCluster(config)}`,
    `outbound mail: ${describeSmtpRoutes(config)}`,
    `data dir: ${resolve(config.dataDir)}`,
    `mailboxes: ${describeMailboxes(config.mailboxes)}`,
    `connections: at most ${config.sip.connections.maxTotal} in all, ${config.sip.connections.maxPerSource} per source`,
    ...describeRetention(config.retention).map((line) => `retention: ${line}`),
  ];
}

/** The data directory, or the nearest existing folder above it (the server creates the rest), must be writable. */
function checkDataDir(dataDir: string): void {
  let dir = resolve(dataDir);
  for (;;) {
    let stat;
    try {
      stat = statSync(dir, { throwIfNoEntry: false });
    } catch (err) {
      throw new ConfigError(`dataDir: cannot read ${dir}: ${(err as Error).message}`);
    }
    if (stat !== undefined) {
      if (!stat.isDirectory()) throw new ConfigError(`dataDir: ${dir} exists but is not a directory; choose another with --data-dir or dataDir`);
      try {
        // access(2) also says EROFS for a read-only mount (systemd's ProtectSystem=strict)
        accessSync(dir, constants.W_OK | constants.X_OK);
      } catch (err) {
        const what = dir === resolve(dataDir) ? `the data directory ${dir}` : `${dir}, where the data directory ${resolve(dataDir)} would be created,`;
        throw new ConfigError(`dataDir: ${what} is not writable by this user: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      return;
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

/** Both PEM files readable, the certificate valid now, and the key its own (the checks of every reload). */
function checkTls(tls: { cert: string; key: string }, now: Date): string {
  let pair;
  try {
    pair = readPair({ cert: tls.cert, key: tls.key, certSetting: 'tls.cert', keySetting: 'tls.key' }, now);
  } catch (err) {
    if (err instanceof CertificateError) throw new ConfigError(err.message);
    throw err;
  }
  return `on (${pair.subject}; valid until ${pair.notAfter.toISOString()}; reloaded when the files change or on SIGHUP)`;
}

/**
 * The federation pair as the TLS checks take it, and the partners' CA bundle: readable, with at
 * least one certificate in it (an empty or garbled bundle would refuse every partner).
 */
function checkFederation(fed: Readonly<FederationConfig>, listen: string, dnsServers: readonly string[], now: Date): string {
  let pair;
  try {
    pair = readPair({ cert: fed.cert, key: fed.key, certSetting: 'federation.cert', keySetting: 'federation.key' }, now);
  } catch (err) {
    if (err instanceof CertificateError) throw new ConfigError(err.message);
    throw err;
  }
  // partners check that our certificate names the host their SRV record or ProxyFqdn names (RFC 6125)
  if (new X509Certificate(pair.cert).checkHost(fed.fqdn, { wildcards: true, partialWildcards: false }) === undefined) {
    throw new ConfigError(`federation.cert: the certificate in ${fed.cert} does not name federation.fqdn ${fed.fqdn} (${pair.subject}); partners would refuse it: use one whose subject alternative names include ${fed.fqdn}`);
  }
  const trust = fed.ca === null ? "the system's CAs" : `${caCertificates(fed.ca, 'federation.ca', "partners' certificates")} CA certificate(s) from ${fed.ca}`;
  const dns = describeDns(fed.dnsServers.length > 0 ? fed.dnsServers : dnsServers);
  return `${fed.fqdn} on ${fed.listen ?? listen}:${fed.port} (mutual TLS; ${pair.subject}; valid until ${pair.notAfter.toISOString()}; partners verified against ${trust}; DNS ${dns})`;
}

function describeDns(servers: readonly string[]): string {
  return servers.length === 0 ? 'the system resolver\'s servers' : servers.join(', ');
}

/** Where mail to other organisations goes: smtpRoutes, then the recipient domain's MX hosts. */
function describeSmtpRoutes(config: Readonly<ServerConfig>): string {
  const r = config.smtpRoutes;
  const parts = Object.entries(r.domains ?? {}).map(([domain, route]) => `${domain} to ${route.host}:${route.port}`);
  if (r.smarthost !== undefined) parts.push(`every other domain to the smarthost ${r.smarthost.host}:${r.smarthost.port}`);
  else if (r.mx === false) parts.push(parts.length === 0 ? 'off (no route, no smarthost, and smtpRoutes.mx is false)' : 'no other domain (smtpRoutes.mx is false)');
  else parts.push(`every other domain to its MX hosts on port 25 (DNS ${describeDns(config.dnsServers)})`);
  return parts.join('; ');
}

/** ACME: the CA bundle readable, and what the stored certificate is (or that one is ordered at start). */
function checkAcme(config: Readonly<ServerConfig>, now: Date): string {
  const acme = config.acme;
  if (acme === null) return 'off';
  if (acme.caBundle !== undefined) readable(acme.caBundle, 'acme.caBundle');
  let stored: string;
  try {
    const pair = readPair({ cert: secretPath(config.dataDir, 'acme-cert.pem'), key: secretPath(config.dataDir, 'acme-key.pem') }, now);
    stored = `stored certificate valid until ${pair.notAfter.toISOString()}, renewed ${acme.renewBeforeDays} days before`;
  } catch {
    stored = `none usable stored: ordered at start, validated over HTTP-01 on the HTTP port ${config.httpPort} (map port 80 to it)`;
  }
  return `ACME from ${acme.directoryUrl} for ${acme.domains.join(', ')}; ${stored}`;
}

/** How many certificates a CA bundle holds: readable, at least one, each one readable (else nothing it should verify ever would be). */
function caCertificates(file: string, setting: string, verifies: string): number {
  const pems = readable(file, setting).toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    for (const pem of pems) new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(`${setting}: ${file} holds a certificate that cannot be read: ${(err as Error).message}`);
  }
  if (pems.length === 0) throw new ConfigError(`${setting}: ${file} holds no PEM certificate; ${verifies} could never be verified`);
  return pems.length;
}

/** An IMAP mailbox server's files: the per-user credentials (a JSON object of address → password or { username, password }) and its CA. */
function checkImapFiles(server: ImapServerConfig, setting: string): void {
  if (server.ca !== undefined) caCertificates(server.ca, `${setting}.ca`, "the IMAP server's certificate");
  if (server.credentialsFile === undefined) return;
  const file = server.credentialsFile;
  let given: unknown;
  try {
    given = JSON.parse(readable(file, `${setting}.credentialsFile`).toString('utf8'));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${setting}.credentialsFile: ${file} is not JSON: ${(err as Error).message}`);
  }
  const usable = (c: unknown) => (typeof c === 'string' && c !== '') || (typeof c === 'object' && c !== null && typeof (c as { username?: unknown }).username === 'string' && typeof (c as { password?: unknown }).password === 'string');
  if (typeof given !== 'object' || given === null || Array.isArray(given) || !Object.values(given).every(usable)) {
    throw new ConfigError(`${setting}.credentialsFile: ${file} must be a JSON object of mailbox address → password (or { "username": …, "password": … })`);
  }
}

function readable(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${setting}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The Graph app's certificate: one Microsoft Entra ID can take (readable PEM, valid now). */
function checkGraphCertificate(file: string, setting: string, now: Date): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readable(file, setting));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${setting}: ${file} holds no certificate that can be read: ${(err as Error).message}`);
  }
  if (now < cert.validFromDate || now > cert.validToDate) throw new ConfigError(`${setting}: the certificate in ${file} is valid from ${cert.validFromDate.toISOString()} to ${cert.validToDate.toISOString()}, not now; Microsoft Entra ID would refuse the sign-in`);
}

const KIND_NAMES = { ews: 'EWS', graph: 'Microsoft Graph', imap: 'IMAP' } as const;

function describeMailboxes(m: ServerConfig['mailboxes']): string {
  const servers = Object.entries(m.servers ?? {}).map(([name, s]) => `${name} (${KIND_NAMES[s.kind ?? 'ews'] ?? s.kind})`);
  return servers.length === 0 ? 'embedded' : `embedded and ${servers.join(', ')}`;
}

/** The cluster block in a line: off, or the node, its Redis (no password) and where the other nodes reach it. */
function describeCluster(config: Readonly<ServerConfig>): string {
  const c = config.cluster;
  if (c === null) return 'off (one process)';
  const reach = c.sipAddress ?? `${config.sip.advertise === null ? config.listen : config.sip.advertise.replace(/:\d+$/, '')}:${config.sipPort} (sip.advertise or listen, and sipPort)`;
  return `node ${c.nodeId}, Redis ${describeAddress(parseRedisAddress(c.redis, 'cluster.redis'))}, other nodes relay to ${reach}`;
}
