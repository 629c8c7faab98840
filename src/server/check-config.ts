// `parley check-config`: what start-up would refuse, found without starting (no port is bound, no
// file is written), so a service manager or an operator can test a configuration before a restart.
// loadConfig validates the settings; this adds what only the files they name can tell.

import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { describeRetention } from '../retention/index.ts';
import { ConfigError, type ServerConfig } from './config.ts';

/** Throws ConfigError naming the setting; returns the lines of a summary when all is well. */
export function checkStartup(config: Readonly<ServerConfig>, now: Date = new Date()): string[] {
  checkDataDir(config.dataDir);
  const tls = config.tls === null ? 'off' : checkTls(config.tls, now);
  for (const [name, server] of Object.entries(config.mailboxes.servers ?? {})) {
    // the server reads it when it starts: an unreadable one would stop the start
    if (server.passwordFile !== undefined) readable(server.passwordFile, `mailboxes.servers.${name}.passwordFile`);
  }
  return [
    `domain: ${config.domain}`,
    `listen: ${config.listen}`,
    `ports: sip ${config.sipPort} (UDP, TCP), sips ${config.tls === null ? `${config.sipsPort} (unused: TLS off)` : `${config.sipsPort} (TLS)`}, http ${config.httpPort} (EWS, WebSocket, admin API), smtp ${config.smtpPort ?? 'off'}`,
    `tls: ${tls}`,
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

/** Both PEM files readable, the certificate valid now, and the key its own. */
function checkTls(tls: { cert: string; key: string }, now: Date): string {
  const cert = readable(tls.cert, 'tls.cert');
  const key = readable(tls.key, 'tls.key');
  let x509;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(`tls.cert: ${tls.cert} is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(`tls.key: ${tls.key} is not the private key of the certificate in tls.cert (${tls.cert}): ${(err as Error).message}`);
  }
  const from = new Date(x509.validFrom);
  const to = new Date(x509.validTo);
  if (now < from) throw new ConfigError(`tls.cert: the certificate in ${tls.cert} is valid only from ${from.toISOString()}`);
  if (now > to) throw new ConfigError(`tls.cert: the certificate in ${tls.cert} expired on ${to.toISOString()}`);
  return `on (${x509.subject.replace(/\n/g, ', ')}; valid until ${to.toISOString()})`;
}

function readable(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${setting}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function describeMailboxes(m: ServerConfig['mailboxes']): string {
  const servers = Object.keys(m.servers ?? {});
  return servers.length === 0 ? 'embedded' : `embedded and EWS servers ${servers.join(', ')}`;
}
