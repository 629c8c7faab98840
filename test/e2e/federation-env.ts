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
// - Parley organisations: `parley serve` with a `federation` block (mutual TLS with the test CA),
//   dnsServers = the dnsmasq above, no smtpRoutes (mail goes by MX), users added with `parley user
//   add`, federation switched on with the cmdlets through the server's admin API (enableFederation:
//   Set-CsAccessEdgeConfiguration, New-CsAllowedDomain, Set-CsExternalAccessPolicy);
// - Kamailio as org-c.test (federation/kamailio-org-c.cfg): a registrar for erin and frank, TLS towards the
//   partners, 480 for a user who is not registered;
// - an SMTP server standing for org-c's mail server, keeping what it receives: port 25 of its own
//   address, found through org-c.test's MX record (mail.org-c.test); it offers STARTTLS with a
//   certificate nobody could verify for it (the rogue CA's, for another name), as MX hosts often do.
//
// Addresses: 127.<net>.<org>.1 is an organisation's SIP and HTTP address, 127.<net>.<org>.2 its
// federation address (the A record of sip.<domain>), 127.<net>.53.1 the DNS server, 127.<net>.3.25
// org-c's mail server (the A record of mail.org-c.test). Each test file takes its own <net>, so files running side by side never meet.
// Nothing here reaches a real network: every name is under .test and answered by our dnsmasq.
//
// The parts live in test/e2e/federation/ (pki, dns, smtp, parley, kamailio, partner: a raw TLS
// partner, and a partner server that never answers a handshake); this file starts them together and
// exports them all. Records only known once it runs (an organisation's port behind another name)
// are added with `env.publish`.
import { mkdtemp, rm } from 'node:fs/promises';
import { after, before } from 'node:test';
import os from 'node:os';
import path from 'node:path';
import { startDns, type DnsRecords, type TestDns } from './federation/dns.ts';
import { kamailioPorts, startKamailio, type KamailioOrg } from './federation/kamailio.ts';
import { enableFederation, startParleyOrg, type OrgSpec, type ParleyOrg } from './federation/parley.ts';
import { sdkClients, type SdkClients } from '../harness/clients.ts';
import { makeTestPki, type TestPki } from './federation/pki.ts';
import { trackDir, untrackDir } from './federation/processes.ts';
import { startSmtpStandIn, type SmtpStandIn } from './federation/smtp.ts';

export * from './federation/dns.ts';
export * from './federation/kamailio.ts';
export * from './federation/parley.ts';
export * from './federation/partner.ts';
export * from './federation/pki.ts';
export * from './federation/smtp.ts';

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
  /** org-c's mail server (mail.org-c.test on port 25, org-c.test's MX: every Parley org sends org-c.test mail there) */
  smtp: SmtpStandIn;
  orgs: ParleyOrg[];
  org(domain: string): ParleyOrg;
  kamailio: KamailioOrg | null;
  /** the records being served */
  records: DnsRecords;
  /**
   * Serves `more` records besides those being served (names known only once the environment runs:
   * another SRV record for an organisation's port, say) and waits until dnsmasq answers them.
   */
  publish(more: DnsRecords): Promise<void>;
  stop(): Promise<void>;
}

const ORG_INDEX: Record<string, number> = { 'org-a.test': 1, 'org-b.test': 2, 'org-c.test': 3, 'org-d.test': 4 };

export async function startFederationEnv(options: FederationEnvOptions): Promise<FederationEnv> {
  const { net } = options;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'parley-federation-'));
  trackDir(dir);
  const stoppers: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stoppers.reverse()) await s().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    untrackDir(dir);
  };
  try {
    const pki = makeTestPki(dir);
    const dns = await startDns(dir, `127.${net}.53.1`);
    stoppers.push(() => dns.stop());
    const smtp = await startSmtpStandIn(`127.${net}.3.25`, { port: 25, tls: pki.rogue });
    stoppers.push(() => smtp.stop());
    // no route: the organisations find org-c's mail server by its MX record
    const smtpRoutes = {};

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
    const records: DnsRecords = {
      srv: [...(options.extraDns?.srv ?? [])],
      a: { ...options.extraDns?.a, 'mail.org-c.test': smtp.host },
      mx: [{ name: 'org-c.test', exchange: 'mail.org-c.test', preference: 10 }, ...(options.extraDns?.mx ?? [])],
    };
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
      async publish(more) {
        records.srv.push(...more.srv);
        Object.assign(records.a, more.a);
        records.mx = [...(records.mx ?? []), ...(more.mx ?? [])];
        await dns.publish(records);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** org-a.test and org-b.test federated with each other, with SDK clients at each (federatedPair). */
export interface FederatedPair {
  readonly env: FederationEnv;
  readonly orgA: ParleyOrg;
  readonly orgB: ParleyOrg;
  readonly atA: SdkClients;
  readonly atB: SdkClients;
  /** the end of both servers' logs, for an assertion's message */
  logs(): string;
}

/**
 * The setup the two-organisation files share: org-a.test (users `a`) and org-b.test (users `b`) on
 * 127.<net>.*, federation allowed both ways, started before the file's tests and stopped after them
 * (node:test hooks, so call it at the top of the file). The fields are there once `before` ran.
 */
export function federatedPair(net: number, users: { a: string[]; b: string[] }): FederatedPair {
  let env: FederationEnv | undefined;
  const need = (): FederationEnv => {
    if (env === undefined) throw new Error('federatedPair: the environment is not started yet (use it inside a test)');
    return env;
  };
  const pair: FederatedPair = {
    get env() {
      return need();
    },
    get orgA() {
      return need().org(A);
    },
    get orgB() {
      return need().org(B);
    },
    atA: sdkClients(() => pair.orgA.server, A, { requestTimeoutMs: 20_000 }),
    atB: sdkClients(() => pair.orgB.server, B, { requestTimeoutMs: 20_000 }),
    logs: () => `--- org-a ---\n${pair.orgA.server.logs().slice(-6000)}\n--- org-b ---\n${pair.orgB.server.logs().slice(-6000)}`,
  };
  before(async () => {
    env = await startFederationEnv({ net, orgs: [{ domain: A, users: users.a }, { domain: B, users: users.b }] });
    await enableFederation(env.org(A), [B]);
    await enableFederation(env.org(B), [A]);
  });
  after(async () => {
    await pair.atA.closeAll();
    await pair.atB.closeAll();
    await env?.stop();
  });
  return pair;
}

const A = 'org-a.test';
const B = 'org-b.test';

/** A PIDF document an open device publishes with these RPID activities (`<rpid:busy/>`), for `address`. */
export function pidf(address: string, activities: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${address}">
  <tuple id="dev"><status><basic>open</basic></status></tuple>
  <dm:person id="p"><rpid:activities>${activities}</rpid:activities></dm:person>
</presence>`;
}
