// dnsmasq answering the partners' _sipfederationtls._tcp SRV records and their proxies' A records,
// and the MX records of their mail domains, on a high port of its own 127.x address; nothing is
// forwarded (every name under .test is ours).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { promises as dnsPromises } from 'node:dns';
import path from 'node:path';
import { findFreePort } from '../../harness/sipp.ts';
import { delay, requireInstalled, stopChild, track, WAIT_MS } from './processes.ts';

const DNSMASQ = existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq';

export interface SrvRecord {
  /** `_sipfederationtls._tcp.org-a.test` */
  name: string;
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export interface MxRecord {
  /** the mail domain: `org-c.test` */
  name: string;
  /** its mail exchanger: `mail.org-c.test` (with an A record) */
  exchange: string;
  preference?: number;
}

export interface DnsRecords {
  srv: SrvRecord[];
  /** host name → IPv4 address */
  a: Record<string, string>;
  mx?: MxRecord[];
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
      ...(records.mx ?? []).map((m) => `mx-host=${m.name},${m.exchange},${m.preference ?? 10}`),
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
