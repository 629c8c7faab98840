// TLS for the bench's stream scenarios (issue 20): a throwaway CA and a server certificate made
// with Debian's openssl in a temp dir, used by both servers (Parley's TLS listener, Kamailio's tls
// module); and the TLS client side, which sipp cannot be here.
//
// Debian's sipp (sip-tester 3.6.1, `sipp -v` says "SIPp v3.6.1-SCTP-PCAP-RTPSTREAM", no "TLS") is
// built without OpenSSL: `sipp -t ln` exits with "To use a TLS transport you must compile SIPp with
// OpenSSL", and Debian's source archive for it cannot be fetched here to rebuild it. So sipp speaks
// TCP (`-t tn`, one connection per call, at most -max_socket open) to stunnel (Debian's stunnel4)
// in client mode on the load core, which opens one TLS connection to the server for each TCP
// connection it accepts and verifies the server's certificate against the bench CA: the server
// does the real TLS work (a full handshake per call, record encryption), the same for both
// servers; the client side's TLS work is stunnel's, on core 1 beside sipp. sipp's Via says TCP, the hop it
// knows; both servers answer over the connection a request came on.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../test/harness/sipp.ts';
import { LOAD_CORE } from './servers.ts';

export interface BenchCertificate {
  dir: string;
  /** the CA's certificate (PEM file): what the client trusts */
  ca: string;
  /** the server's certificate and key (PEM files), for DNS:<domain> and IP:127.0.0.1 */
  cert: string;
  key: string;
  remove(): Promise<void>;
}

/**
 * A CA and a server certificate signed by it, both ECDSA P-256 (what Let's Encrypt issues by
 * default to ECDSA keys; an RSA-2048 server key would cost each handshake ~1 ms more of the server's CPU).
 */
export async function makeBenchCertificate(domain: string): Promise<BenchCertificate> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-tls-'));
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=Parley bench CA', '-keyout', f('ca-key.pem'), '-out', f('ca.pem'));
  openssl('req', ...ec, '-subj', `/CN=${domain}`, '-keyout', f('key.pem'), '-out', f('server.csr'));
  await writeFile(f('ext.cnf'), `subjectAltName=DNS:${domain},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`);
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('cert.pem'));
  return { dir, ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem'), remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface TlsRelay {
  /** where sipp connects (plain TCP) */
  port: number;
  /** stunnel's pid, to read its CPU */
  pid: number;
  stop(): Promise<void>;
}

/**
 * stunnel in client mode on the load core: accepts TCP on a free loopback port, and for each
 * connection opens a TLS connection to `target` (host:port), verifying its certificate chain
 * against `ca` and its name against `domain`. TCP_NODELAY both ways: without it Nagle's algorithm
 * holds the second small write of a transaction back for an ACK.
 */
export async function startTlsRelay(target: string, ca: string, domain: string): Promise<TlsRelay> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-stunnel-'));
  const port = await findFreePort();
  const conf = path.join(dir, 'stunnel.conf');
  await writeFile(
    conf,
    [
      'foreground = yes',
      'pid =',
      'debug = 3',
      'socket = l:TCP_NODELAY=1',
      'socket = r:TCP_NODELAY=1',
      '[sip]',
      'client = yes',
      `accept = 127.0.0.1:${port}`,
      `connect = ${target}`,
      `CAfile = ${ca}`,
      'verifyChain = yes',
      `checkHost = ${domain}`,
      '',
    ].join('\n'),
  );
  const child = spawn('taskset', ['-c', LOAD_CORE, 'stunnel', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.once('exit', () => child.kill('SIGKILL'));
  const until = Date.now() + 10_000;
  // ready once its port accepts
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`stunnel did not start: ${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(t);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
