// Parley organisations of the federation tests: `parley serve` with a `federation` block (mutual TLS
// with the test CA, the test DNS server), its users added with `parley user add`, cmdlets through its
// admin API; and SDK clients that take messages.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { IncomingMessage, SipClient } from '../../../src/client/index.ts';
import { arrivals, type Arrivals, type SdkClients } from '../../harness/clients.ts';
import { startServer, type HostPort, type RunningServer } from '../../harness/server.ts';
import type { TestDns } from './dns.ts';
import type { TestPki } from './pki.ts';
import { delay, WAIT_MS } from './processes.ts';

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
  /** the config file `parley serve` was started with (its `federation` block, say, for `check-config`) */
  config: Record<string, unknown>;
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

/** ParleyOrg.admin of a running server: a cmdlet through its admin API. */
export function adminOf(server: RunningServer): ParleyOrg['admin'] {
  return async (cmdlet, parameters) => {
    const token = readFileSync(path.join(server.dataDir, 'secrets', 'admin.token'), 'utf8').trim();
    const res = await fetch(`http://${server.http.host}:${server.http.port}/admin/cmdlets/${cmdlet}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ parameters }),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${cmdlet} ${JSON.stringify(parameters)} at ${server.domain}: ${res.status} ${text}`);
    return (JSON.parse(text) as { results: unknown[] }).results;
  };
}

export async function startParleyOrg(spec: OrgSpec, net: number, index: number, pki: TestPki, dns: TestDns, smtpRoutes: Record<string, unknown>): Promise<ParleyOrg> {
  const address = `127.${net}.${index}.1`;
  const fedAddress = `127.${net}.${index}.2`;
  const fqdn = `sip.${spec.domain}`;
  const { cert, key } = pki.leaf(fqdn);
  const config = {
    // the test's DNS for everything: the link's SRV records (federation.dnsServers left to it) and outbound mail's MX
    dnsServers: [dns.server],
    federation: { fqdn, listen: fedAddress, port: 0, cert, key, ca: pki.ca, connectTimeout: 5 },
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
  const admin = adminOf(server);
  let federation: HostPort;
  try {
    federation = await federationEndpoint(server, fedAddress);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { domain: spec.domain, fqdn, address, federation, config, server, admin, stop: () => server.stop() };
}

export interface EnableFederationOptions {
  /** partner domain → its ProxyFqdn (`sip.org-b.test:5061`): that partner is reached there, not through DNS SRV */
  proxyFqdn?: Record<string, string>;
  /**
   * only these users (`alice@org-a.test`) get a policy enabling federation (Tag:Federated); the
   * others keep the Global one, which does not. Default: every user (Global enables it).
   */
  users?: string[];
}

/**
 * Federation on, the partners allowed (found through DNS SRV unless `proxyFqdn` names them), every
 * user's policy enabling it (Global, or Tag:Federated for `users`), and offline messages picked up
 * after 2 s.
 */
export async function enableFederation(org: ParleyOrg, partners: string[], options: EnableFederationOptions = {}): Promise<void> {
  await org.admin('Set-CsAccessEdgeConfiguration', { AllowFederatedUsers: true });
  for (const p of partners) {
    const proxy = options.proxyFqdn?.[p];
    await org.admin('New-CsAllowedDomain', { Identity: p, ...(proxy === undefined ? {} : { ProxyFqdn: proxy }) });
  }
  if (options.users === undefined) {
    await org.admin('Set-CsExternalAccessPolicy', { Identity: 'Global', EnableFederationAccess: true });
  } else {
    await org.admin('New-CsExternalAccessPolicy', { Identity: 'Tag:Federated', EnableFederationAccess: true });
    for (const user of options.users) await org.admin('Grant-CsExternalAccessPolicy', { Identity: user, PolicyName: 'Federated' });
  }
  await org.admin('Set-CsImConfiguration', { OfflineImPickupDelay: '00:00:02' });
}

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
