// Kamailio as org-c.test (kamailio-org-c.cfg beside this file): a registrar for its users, TLS towards
// the partners, 480 for a user who is not registered; and the sipp scenarios of its users.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, type HostPort } from '../../harness/server.ts';
import { findFreePort } from '../../harness/sipp.ts';
import { tlsHandshake } from './partner.ts';
import type { TestPki } from './pki.ts';
import { delay, requireInstalled, stopChild, track, WAIT_MS } from './processes.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const KAMAILIO_CFG = path.join(HERE, 'kamailio-org-c.cfg');
/** sipp scenarios of org-c's users (Kamailio registers them without authentication) */
export const SIPP_UAS = path.join(HERE, 'sipp-uas.xml');
export const SIPP_UAS_OOC = path.join(REPO_ROOT, 'test', 'interop', 'sipp', 'message-uas-ooc.xml');
export const SIPP_UAC = path.join(HERE, 'sipp-uac.xml');
const KAMAILIO = existsSync('/usr/sbin/kamailio') ? '/usr/sbin/kamailio' : 'kamailio';
const KAMAILIO_MODULES = `/usr/lib/${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/kamailio/modules`;

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
