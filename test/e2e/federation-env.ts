// The federation test environment (issue 15): real parts only, on loopback addresses of their own.
//
//   const env = await startFederationEnv({ net: 1, orgs: [{ domain: 'org-a.test', users: ['alice'] }], kamailio: true });
//   … env.org('org-a.test').server (a RunningServer), env.kamailio, env.smtp, env.dns …
//   await env.stop();
//
// - a throwaway test CA made with openssl, and certificates from it for sip.org-a.test … sip.org-d.test
//   and an unrelated name (sip.other.test); a second CA nobody trusts, with its own sip.org-b.test;
// - dnsmasq on a high port of its own 127.x address, answering `_sipfederationtls._tcp.<domain>` SRV
//   records and the A records of the proxies, written once the servers listen (their ports are
//   chosen by the OS) and rewritten with `publish` (dnsmasq restarts on the same address and port:
//   it does not reload SRV records on SIGHUP);
// - Parley organisations: `parley serve` with a `federation` block (mutual TLS with the test CA,
//   dnsServers = the dnsmasq above), users added with `parley user add`, federation switched on with
//   the cmdlets (Set-CsAccessEdgeConfiguration, New-CsAllowedDomain, Set-CsExternalAccessPolicy);
// - Kamailio as org-c.test (federation-kamailio.cfg): a registrar for erin and frank, TLS towards the
//   partners, 480 for a user who is not registered;
// - an SMTP server standing for org-c's mail server, keeping what it receives.
//
// Addresses: 127.<net>.<org>.1 is an organisation's SIP and HTTP address, 127.<net>.<org>.2 its
// federation address (the A record of sip.<domain>), 127.<net>.53.1 the DNS server, 127.<net>.3.25
// org-c's mail server. Each test file takes its own <net>, so files running side by side never meet.
// Nothing here reaches a real network: every name is under .test and answered by our dnsmasq.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promises as dnsPromises } from 'node:dns';
import tls from 'node:tls';
import { SMTPServer } from 'smtp-server';
import type { IncomingMessage, SipClient } from '../../src/client/index.ts';
import { StreamFramer } from '../../src/sip/framing.ts';
import { arrivals, type Arrivals, type SdkClients } from '../harness/clients.ts';
import type { SipResponse } from '../../src/sip/message.ts';
import { REPO_ROOT, startServer, type HostPort, type RunningServer } from '../harness/server.ts';
import { findFreePort } from '../harness/sipp.ts';

export const TEST_DIR = path.join(REPO_ROOT, 'test', 'e2e');
const KAMAILIO_CFG = path.join(TEST_DIR, 'federation-kamailio.cfg');
/** sipp scenarios of org-c's users (Kamailio registers them without authentication) */
export const SIPP_UAS = path.join(TEST_DIR, 'federation-sipp-uas.xml');
export const SIPP_UAS_OOC = path.join(REPO_ROOT, 'test', 'interop', 'sipp', 'message-uas-ooc.xml');
export const SIPP_UAC = path.join(TEST_DIR, 'federation-sipp-uac.xml');
const DNSMASQ = existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq';
const KAMAILIO = existsSync('/usr/sbin/kamailio') ? '/usr/sbin/kamailio' : 'kamailio';
const KAMAILIO_MODULES = `/usr/lib/${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/kamailio/modules`;
const WAIT_MS = 15_000;

/** Children and directories to clean up even when a test process ends without `stop()`. */
const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooked = false;
function track(child: ChildProcess): void {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The test PKI

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** the trusted test CA's certificate (PEM file) */
  ca: string;
  /** the second CA, trusted by nobody */
  rogueCa: string;
  /** sip.org-a.test … sip.org-d.test and sip.other.test, from the test CA */
  leaf(name: string): CertFiles;
  /** sip.org-b.test from the rogue CA */
  rogue: CertFiles;
}

export const PKI_NAMES = ['sip.org-a.test', 'sip.org-b.test', 'sip.org-c.test', 'sip.org-d.test', 'sip.other.test'] as const;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string, cn: string): CertFiles {
  const files = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', files.key, '-out', files.cert]);
  return files;
}

/** A leaf for `dns` (SAN DNS), usable as a TLS server and client alike (mutual TLS). */
function makeLeaf(dir: string, prefix: string, dns: string, ca: CertFiles, serial: number): CertFiles {
  const files = { cert: path.join(dir, `${prefix}${dns}.pem`), key: path.join(dir, `${prefix}${dns}.key`) };
  const csr = path.join(dir, `${prefix}${dns}.csr`);
  const ext = path.join(dir, `${prefix}${dns}.ext`);
  writeFileSync(ext, [`subjectAltName=DNS:${dns}`, 'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyAgreement', 'extendedKeyUsage=serverAuth,clientAuth', ''].join('\n'));
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${dns}`, '-keyout', files.key, '-out', csr]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial), '-days', '2', '-extfile', ext, '-out', files.cert]);
  return files;
}

export function makeTestPki(dir: string): TestPki {
  const ca = makeCa(dir, 'ca', 'Parley federation test CA');
  const rogueCa = makeCa(dir, 'rogue-ca', 'Parley untrusted test CA');
  const leaves = new Map<string, CertFiles>();
  PKI_NAMES.forEach((name, i) => leaves.set(name, makeLeaf(dir, '', name, ca, 100 + i)));
  const rogue = makeLeaf(dir, 'rogue-', 'sip.org-b.test', rogueCa, 200);
  return {
    dir,
    ca: ca.cert,
    rogueCa: rogueCa.cert,
    rogue,
    leaf(name) {
      const f = leaves.get(name);
      if (!f) throw new Error(`no test certificate for ${name}`);
      return f;
    },
  };
}

/** `openssl verify` of a certificate against a CA file: its output ("…: OK") or the error. */
export function opensslVerify(ca: string, cert: string): { ok: boolean; output: string } {
  try {
    return { ok: true, output: execFileSync('openssl', ['verify', '-CAfile', ca, cert], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

// ---------------------------------------------------------------------------------------------
// DNS: dnsmasq

export interface SrvRecord {
  /** `_sipfederationtls._tcp.org-a.test` */
  name: string;
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export interface DnsRecords {
  srv: SrvRecord[];
  /** host name → IPv4 address */
  a: Record<string, string>;
}

export interface TestDns {
  /** `127.x.53.1:port`, for a `dnsServers` entry */
  server: string;
  host: string;
  port: number;
  /** replaces every record (dnsmasq restarts on the same address and port) and waits until it answers */
  publish(records: DnsRecords): Promise<void>;
  /** a resolver asking only this server */
  resolver(): dnsPromises.Resolver;
  logs(): string;
  stop(): Promise<void>;
}

/** An actionable error when a system tool of these tests is missing. */
function requireInstalled(file: string, pkg: string): void {
  const found = file.startsWith('/') ? existsSync(file) : spawnSyncOk('sh', ['-c', `command -v ${file}`]);
  if (!found) throw new Error(`${file} is not installed (Debian package ${pkg}): run scripts/install-test-deps.sh`);
}
function spawnSyncOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function startDns(dir: string, host: string): Promise<TestDns> {
  requireInstalled(DNSMASQ, 'dnsmasq-base');
  const port = await findFreePort(host);
  const conf = path.join(dir, 'dnsmasq.conf');
  let child: ChildProcess | null = null;
  let logText = '';
  let generation = 0;

  const resolver = () => {
    const r = new dnsPromises.Resolver({ timeout: 1000, tries: 2 });
    r.setServers([`${host}:${port}`]);
    return r;
  };

  const publish = async (records: DnsRecords): Promise<void> => {
    generation += 1;
    const lines = [
      `port=${port}`,
      `listen-address=${host}`,
      'bind-interfaces',
      'no-resolv',
      'no-hosts',
      'no-poll',
      'no-negcache',
      'log-queries',
      // everything under .test is ours: a name we have no record for is NXDOMAIN, never forwarded
      'local=/test/',
      // a name that tells which records are being served, for the readiness check below
      `txt-record=generation.dns.test,${generation}`,
      ...records.srv.map((s) => `srv-host=${s.name},${s.target},${s.port},${s.priority ?? 0},${s.weight ?? 0}`),
      ...Object.entries(records.a).map(([name, address]) => `host-record=${name},${address}`),
    ];
    await writeFile(conf, `${lines.join('\n')}\n`);
    if (child) await stopChild(child);
    const c = spawn(DNSMASQ, ['--keep-in-foreground', '--log-facility=-', `--conf-file=${conf}`, '--pid-file=', '--user=root', '--group=root'], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(c);
    child = c;
    c.stdout?.setEncoding('utf8').on('data', (d: string) => (logText += d));
    c.stderr?.setEncoding('utf8').on('data', (d: string) => (logText += d));
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`dnsmasq exited ${c.exitCode}:\n${logText}`);
      try {
        const txt = await resolver().resolveTxt('generation.dns.test');
        if (txt.flat().join('') === String(generation)) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`dnsmasq on ${host}:${port} did not answer within ${WAIT_MS} ms:\n${logText}`);
      await delay(100);
    }
  };

  await publish({ srv: [], a: {} });
  return {
    server: `${host}:${port}`,
    host,
    port,
    publish,
    resolver,
    logs: () => logText,
    stop: async () => {
      if (child) await stopChild(child);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// SMTP: the stand-in for a partner's mail server

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
}

export interface SmtpStandIn {
  host: string;
  port: number;
  received: ReceivedMail[];
  stop(): Promise<void>;
}

export async function startSmtpStandIn(host: string): Promise<SmtpStandIn> {
  const received: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('smtp stand-in: no address');
  return { host, port: address.port, received, stop: () => new Promise((r) => server.close(() => r())) };
}

// ---------------------------------------------------------------------------------------------
// Parley organisations

export interface OrgSpec {
  domain: string;
  /** user names; each gets the password `<user>-pw`, as sdkClients expects */
  users: string[];
  /** more of the config file (merged over the federation block and smtpRoutes) */
  config?: Record<string, unknown>;
}

export interface ParleyOrg {
  domain: string;
  fqdn: string;
  /** the organisation's SIP and HTTP address */
  address: string;
  /** the federation port's address and port (the A and SRV records name them) */
  federation: HostPort;
  server: RunningServer;
  /**
   * A cmdlet through the server's admin API (`POST /admin/cmdlets/<cmdlet>`, the bearer token of
   * `<dataDir>/secrets/admin.token`): `admin('New-CsAllowedDomain', { Identity: 'org-b.test' })`.
   * Resolves with the results; throws on any status but 200. (The same cmdlets through the
   * `parley admin` process take a second or two each on a busy machine.)
   */
  admin(cmdlet: string, parameters: Record<string, unknown>): Promise<unknown[]>;
  stop(): Promise<void>;
}

/** The local TCP ports listening on `address` (from /proc/net/tcp): the OS-chosen federation port. */
function listeningPorts(address: string): number[] {
  const want = address.split('.').map(Number).reverse().map((b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
  const ports: number[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const [addr, port] = (f[1] ?? '').split(':');
    if (addr === want && f[3] === '0A') ports.push(parseInt(port ?? '0', 16));
  }
  return ports;
}

async function federationEndpoint(server: RunningServer, address: string): Promise<HostPort> {
  const field = /\bfederation=(\S+):(\d+)/.exec(server.readyLine);
  if (field) return { host: field[1]!.replace(/^\[|\]$/g, ''), port: Number(field[2]) };
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const ports = listeningPorts(address);
    if (ports.length === 1) return { host: address, port: ports[0]! };
    if (Date.now() > deadline) {
      throw new Error(`parley serve for ${server.domain} has ${ports.length} listening ports on its federation address ${address} (want 1): is the federation listener wired (src/server/start.ts)?\n${server.logs().slice(-4000)}`);
    }
    await delay(100);
  }
}

export async function startParleyOrg(spec: OrgSpec, net: number, index: number, pki: TestPki, dns: TestDns, smtpRoutes: Record<string, unknown>): Promise<ParleyOrg> {
  const address = `127.${net}.${index}.1`;
  const fedAddress = `127.${net}.${index}.2`;
  const fqdn = `sip.${spec.domain}`;
  const { cert, key } = pki.leaf(fqdn);
  const config = {
    federation: { fqdn, listen: fedAddress, port: 0, cert, key, ca: pki.ca, dnsServers: [dns.server], connectTimeout: 5 },
    smtpRoutes,
    // a device that does not answer counts as offline after a second (default 10 s)
    messaging: { deviceTimeout: 1 },
    ...spec.config,
  };
  const server = await startServer({
    domain: spec.domain,
    users: spec.users.map((u) => ({ address: `${u}@${spec.domain}`, password: `${u}-pw`, displayName: `${u[0]!.toUpperCase()}${u.slice(1)} of ${spec.domain}` })),
    config,
    extraArgs: ['--listen', address],
  });
  const admin = async (cmdlet: string, parameters: Record<string, unknown>): Promise<unknown[]> => {
    const token = readFileSync(path.join(server.dataDir, 'secrets', 'admin.token'), 'utf8').trim();
    const res = await fetch(`http://${server.http.host}:${server.http.port}/admin/cmdlets/${cmdlet}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ parameters }),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${cmdlet} ${JSON.stringify(parameters)} at ${spec.domain}: ${res.status} ${text}`);
    return (JSON.parse(text) as { results: unknown[] }).results;
  };
  let federation: HostPort;
  try {
    federation = await federationEndpoint(server, fedAddress);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { domain: spec.domain, fqdn, address, federation, server, admin, stop: () => server.stop() };
}

/**
 * Federation on, the partners allowed (found through DNS SRV), every user's policy enabling it
 * (Global), and offline messages picked up after 2 s.
 */
export async function enableFederation(org: ParleyOrg, partners: string[]): Promise<void> {
  await org.admin('Set-CsAccessEdgeConfiguration', { AllowFederatedUsers: true });
  for (const p of partners) await org.admin('New-CsAllowedDomain', { Identity: p });
  await org.admin('Set-CsExternalAccessPolicy', { Identity: 'Global', EnableFederationAccess: true });
  await org.admin('Set-CsImConfiguration', { OfflineImPickupDelay: '00:00:02' });
}

// ---------------------------------------------------------------------------------------------
// Kamailio as org-c.test

export interface KamailioOrg {
  domain: 'org-c.test';
  fqdn: 'sip.org-c.test';
  /** where org-c's users register (UDP and TCP) */
  users: HostPort;
  /** the TLS federation port */
  federation: HostPort;
  logs(): string;
  stop(): Promise<void>;
}

export interface KamailioPorts {
  users: HostPort;
  federation: HostPort;
}

export async function kamailioPorts(net: number): Promise<KamailioPorts> {
  const userAddr = `127.${net}.3.1`;
  const fedAddr = `127.${net}.3.2`;
  return { users: { host: userAddr, port: await findFreePort(userAddr) }, federation: { host: fedAddr, port: await findFreePort(fedAddr) } };
}

/** Starts Kamailio routing `partners` (domain → federation address) and waits until a mutual-TLS handshake succeeds. */
export async function startKamailio(dir: string, ports: KamailioPorts, pki: TestPki, partners: Record<string, HostPort>): Promise<KamailioOrg> {
  requireInstalled(KAMAILIO, 'kamailio');
  requireInstalled(path.join(KAMAILIO_MODULES, 'tls.so'), 'kamailio-tls-modules');
  const { cert, key } = pki.leaf('sip.org-c.test');
  const tlsCfg = path.join(dir, 'kamailio-tls.cfg');
  const profile = (side: string) => [
    `[${side}:default]`,
    'method = TLSv1.2+',
    'verify_certificate = yes',
    'require_certificate = yes',
    `certificate = ${cert}`,
    `private_key = ${key}`,
    `ca_list = ${pki.ca}`,
    '',
  ];
  await writeFile(tlsCfg, [...profile('server'), ...profile('client')].join('\n'));
  const routes = Object.entries(partners)
    .map(([domain, at]) => `\tif ($rd == "${domain}") {\n\t\t$du = "sip:${at.host}:${at.port};transport=tls";\n\t\tif (!t_relay()) sl_reply_error();\n\t\texit;\n\t}`)
    .join('\n');
  const values: Record<string, string> = {
    DEBUG: process.env.PARLEY_KAMAILIO_DEBUG ?? '2',
    USER_ADDR: ports.users.host,
    USER_PORT: String(ports.users.port),
    FED_ADDR: ports.federation.host,
    FED_PORT: String(ports.federation.port),
    MODULES: KAMAILIO_MODULES,
    TLS_CFG: tlsCfg,
    PARTNER_ROUTES: routes,
  };
  const cfg = path.join(dir, 'kamailio.cfg');
  await writeFile(cfg, readFileSync(KAMAILIO_CFG, 'utf8').replace(/%([A-Z_]+)%/g, (m, name: string) => values[name] ?? m));
  const runDir = path.join(dir, 'kamailio-run');
  mkdirSync(runDir, { recursive: true });
  const child = spawn(KAMAILIO, ['-f', cfg, '-DD', '-E', '-Y', runDir, '-P', path.join(runDir, 'kamailio.pid'), '-m', '64', '-M', '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let logText = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (logText += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (logText += d));
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`kamailio exited ${child.exitCode}:\n${logText.slice(-6000)}`);
    const hs = await tlsHandshake(ports.federation, pki.leaf('sip.org-a.test'), pki.ca, 'sip.org-c.test');
    if (hs.ok) break;
    if (Date.now() > deadline) throw new Error(`kamailio's TLS port ${ports.federation.host}:${ports.federation.port} refused a handshake for ${WAIT_MS} ms (${hs.error}):\n${logText.slice(-6000)}`);
    await delay(200);
  }
  return {
    domain: 'org-c.test',
    fqdn: 'sip.org-c.test',
    users: ports.users,
    federation: ports.federation,
    logs: () => logText,
    stop: () => stopChild(child),
  };
}

// ---------------------------------------------------------------------------------------------
// A raw partner: a TLS client holding some certificate, for what no well-behaved partner sends

export interface HandshakeResult {
  ok: boolean;
  /** the peer certificate's SAN when ok */
  peerNames?: string;
  error?: string;
}

/**
 * One mutual-TLS connection with `client`'s certificate (the server must chain to `ca` and name
 * `servername`), proved by an OPTIONS answered over it. Under TLS 1.3 the server judges the client's
 * certificate after the client's handshake is done, so a refusal shows as an alert on the first
 * read, not as a failed connect: only an answer (any SIP response) counts as accepted.
 */
export function tlsHandshake(to: HostPort, client: CertFiles | null, ca: string, servername: string): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: to.host,
      port: to.port,
      servername,
      ca: readFileSync(ca),
      ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
    });
    let settled = false;
    const done = (r: HandshakeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: 'no answer within 10 s' }), 10_000);
    const framer = new StreamFramer();
    socket.once('secureConnect', () => {
      // any answer will do, a refusal of the request included: it came over an accepted connection
      socket.write(rawOptions(`sip:${servername}`, 'sip:probe@probe.test'));
    });
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type === 'message' && event.message.kind === 'response') done({ ok: true, peerNames: socket.getPeerCertificate().subjectaltname });
      }
    });
    socket.once('error', (err) => done({ ok: false, error: err.message }));
    socket.once('close', () => done({ ok: false, error: 'closed by the peer' }));
  });
}

function rawOptions(uri: string, from: string): string {
  const id = Math.random().toString(36).slice(2);
  return [`OPTIONS ${uri} SIP/2.0`, `Via: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bK${id}`, 'Max-Forwards: 70', `From: <${from}>;tag=${id}`, `To: <${uri}>`, `Call-ID: ${id}@probe`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n');
}

export interface PartnerConnection {
  /** sends a request and resolves with its final response */
  exchange(request: string, timeoutMs?: number): Promise<SipResponse>;
  /** requests the server sent us (after a handshake, on this connection) */
  received: string[];
  close(): void;
}

/** A TLS connection to a federation port presenting `client`'s certificate; rejects when the handshake fails. */
export function partnerConnection(to: HostPort, client: CertFiles, ca: string, servername: string): Promise<PartnerConnection> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: to.host, port: to.port, servername, ca: readFileSync(ca), cert: readFileSync(client.cert), key: readFileSync(client.key) });
    const framer = new StreamFramer();
    const waiting: Array<(r: SipResponse) => void> = [];
    const received: string[] = [];
    let error: Error | null = null;
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type !== 'message') continue;
        if (event.message.kind === 'response') {
          if (event.message.status >= 200) waiting.shift()?.(event.message);
        } else received.push(event.message.method);
      }
    });
    socket.once('error', (err) => {
      error = err;
      reject(err);
    });
    socket.once('secureConnect', () =>
      resolve({
        received,
        exchange: (request, timeoutMs = 10_000) =>
          new Promise<SipResponse>((res, rej) => {
            if (error) return rej(error);
            const timer = setTimeout(() => rej(new Error(`no final response within ${timeoutMs} ms`)), timeoutMs);
            waiting.push((r) => {
              clearTimeout(timer);
              res(r);
            });
            socket.write(request);
            socket.once('close', () => rej(new Error(`the server closed the connection${error ? `: ${error.message}` : ''}`)));
          }),
        close: () => socket.destroy(),
      }),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Clients

/** A registered SDK client whose incoming MESSAGEs are answered 200 and queued. */
export async function messageReceiver(clients: SdkClients, user: string, context?: () => string): Promise<{ client: SipClient; inbox: Arrivals<IncomingMessage> }> {
  let push: (m: IncomingMessage) => void = () => {};
  const inbox = arrivals<IncomingMessage>((p) => (push = p), { what: `a MESSAGE to ${user}`, timeoutMs: 15_000, context });
  const client = await clients.connect(user, {
    register: true,
    onMessage: (m) => {
      push(m);
      return 200;
    },
  });
  return { client, inbox };
}

/** `403 399 org-a.test "…"` and the servers' logs: an assertion's message. */
export function outcome(r: { status: number; headers: { get(name: string): string | undefined } }, logs?: () => string): string {
  return `${r.status} Warning: ${r.headers.get('warning') ?? '(none)'}${logs ? `\n${logs()}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// The whole environment

export interface FederationEnvOptions {
  /** the second octet of every address of this environment (one per test file) */
  net: number;
  /** Parley organisations, in order: the first is 127.<net>.1.*, the second 127.<net>.2.* */
  orgs: OrgSpec[];
  /** Kamailio as org-c.test, and org-c's mail server */
  kamailio?: boolean;
  /** more DNS records (an org-d whose server is a raw TLS server, say) */
  extraDns?: DnsRecords;
}

export interface FederationEnv {
  dir: string;
  pki: TestPki;
  dns: TestDns;
  /** org-c's mail server (smtpRoutes of every Parley org send org-c.test mail there) */
  smtp: SmtpStandIn;
  orgs: ParleyOrg[];
  org(domain: string): ParleyOrg;
  kamailio: KamailioOrg | null;
  /** the records being served */
  records: DnsRecords;
  stop(): Promise<void>;
}

const ORG_INDEX: Record<string, number> = { 'org-a.test': 1, 'org-b.test': 2, 'org-c.test': 3, 'org-d.test': 4 };

export async function startFederationEnv(options: FederationEnvOptions): Promise<FederationEnv> {
  const { net } = options;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'parley-federation-'));
  tempDirs.add(dir);
  const stoppers: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stoppers.reverse()) await s().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  };
  try {
    const pki = makeTestPki(dir);
    const dns = await startDns(dir, `127.${net}.53.1`);
    stoppers.push(() => dns.stop());
    const smtp = await startSmtpStandIn(`127.${net}.3.25`);
    stoppers.push(() => smtp.stop());
    const smtpRoutes = { domains: { 'org-c.test': { host: smtp.host, port: smtp.port } } };

    // side by side: each start adds its users with the CLI first, a few seconds on a busy machine
    const started = await Promise.allSettled(options.orgs.map((spec, i) => startParleyOrg(spec, net, ORG_INDEX[spec.domain] ?? i + 1, pki, dns, smtpRoutes)));
    const orgs: ParleyOrg[] = [];
    for (const r of started) {
      if (r.status === 'fulfilled') {
        stoppers.push(() => r.value.stop());
        orgs.push(r.value);
      }
    }
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const records: DnsRecords = { srv: [...(options.extraDns?.srv ?? [])], a: { ...options.extraDns?.a } };
    for (const org of orgs) {
      records.srv.push({ name: `_sipfederationtls._tcp.${org.domain}`, target: org.fqdn, port: org.federation.port });
      records.a[org.fqdn] = org.federation.host;
    }
    let kamailio: KamailioOrg | null = null;
    if (options.kamailio) {
      const ports = await kamailioPorts(net);
      records.srv.push({ name: '_sipfederationtls._tcp.org-c.test', target: 'sip.org-c.test', port: ports.federation.port });
      records.a['sip.org-c.test'] = ports.federation.host;
      kamailio = await startKamailio(dir, ports, pki, Object.fromEntries(orgs.map((o) => [o.domain, o.federation])));
      const k = kamailio;
      stoppers.push(() => k.stop());
    }
    await dns.publish(records);
    return {
      dir,
      pki,
      dns,
      smtp,
      orgs,
      kamailio,
      records,
      org(domain) {
        const o = orgs.find((x) => x.domain === domain);
        if (!o) throw new Error(`no organisation ${domain} in this environment`);
        return o;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
