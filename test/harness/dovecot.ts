// A real Dovecot (Debian dovecot-imapd; scripts/install-test-deps.sh installs it) started by a
// test with its own configuration in a temporary directory: passwd-file users, master users
// (`user*master`, or SASL PLAIN with an authorization identity), Maildir mail in that directory,
// IMAP on 127.0.0.1 on a port picked free, optionally TLS (a CA and a certificate for 127.0.0.1
// made for the test) and the ACL plugin. Started in the foreground (`dovecot -F`), so the test owns
// the process: stop() ends it, start() brings it back on the same port with the same mail.
//
//   const dovecot = await startDovecot({ users: [{ address: 'alice@example.test', password: 'pw' }], masters: [{ username: 'parley', password: 'master-pw' }] });
//   ... imap://127.0.0.1:${dovecot.port} ...
//   await dovecot.destroy();
//
// As root (the tests here run so), Dovecot's unprivileged processes run as the users its Debian
// package made (dovenull for logins, dovecot inside) and the mail belongs to nobody; as another user,
// everything runs as that user.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
// Dovecot takes its ports from its configuration (0 would mean "no listener"): ports free now
import { freePort } from './davmail.ts';

export const DOVECOT = '/usr/sbin/dovecot';
const DOVEADM = '/usr/bin/doveadm';
const NOBODY = 65534;

export interface DovecotUser {
  address: string;
  password: string;
}

export interface StartDovecotOptions {
  users: DovecotUser[];
  masters?: Array<{ username: string; password: string }>;
  /** TLS: STARTTLS on the IMAP port and an imaps port, with a certificate for 127.0.0.1 signed by `caFile` */
  tls?: boolean;
  /** the ACL plugin (rights per folder; master users get the owner's rights: acl_user = %u) */
  acl?: boolean;
}

export interface Dovecot {
  port: number;
  /** the imaps port (tls only) */
  imapsPort: number | undefined;
  /** the CA that signed the server's certificate (tls only) */
  caFile: string | undefined;
  dir: string;
  /** imap://127.0.0.1:PORT */
  url: string;
  running(): boolean;
  /** ends the server (SIGTERM), keeping its mail */
  stop(): Promise<void>;
  /** starts it again (same port, same mail) and waits for its greeting */
  start(): Promise<void>;
  /** stop, and remove the directory */
  destroy(): Promise<void>;
  log(): string;
  /** doveadm with this instance's configuration, e.g. ['acl', 'set', '-u', user, folder, 'user=' + user, 'lr'] */
  doveadm(args: string[]): string;
}

export function dovecotInstalled(): boolean {
  return existsSync(DOVECOT);
}

export async function startDovecot(opts: StartDovecotOptions): Promise<Dovecot> {
  if (!dovecotInstalled()) throw new Error(`${DOVECOT} is not installed: run scripts/install-test-deps.sh`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-dovecot-'));
  // Dovecot's unprivileged processes must reach the files inside
  chmodSync(dir, 0o755);
  const root = process.getuid?.() === 0;
  const mail = path.join(dir, 'mail');
  mkdirSync(mail);
  if (root) chownSync(mail, NOBODY, NOBODY);
  const port = await freePort();
  const imapsPort = opts.tls === true ? await freePort() : undefined;
  const line = (u: { name: string; password: string }) => `${u.name}:{PLAIN}${u.password}::::::nodelay=yes\n`;
  writeFileSync(path.join(dir, 'users'), opts.users.map((u) => line({ name: u.address, password: u.password })).join(''));
  writeFileSync(path.join(dir, 'masters'), (opts.masters ?? []).map((m) => line({ name: m.username, password: m.password })).join(''));
  let caFile: string | undefined;
  if (opts.tls === true) caFile = makeCertificates(dir);
  const me = os.userInfo().username;
  const conf = [
    `instance_name = parley-test-${path.basename(dir)}`,
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    'protocols = imap',
    'listen = 127.0.0.1',
    'auth_mechanisms = plain login',
    // loopback counts as secure for Dovecot; said anyway, since the tests sign in in clear
    'disable_plaintext_auth = no',
    'auth_master_user_separator = *',
    // a refused password answers at once (the default waits 2 s), and repeated refusals from
    // 127.0.0.1 are not slowed down more and more (anvil's auth penalty spares trusted networks)
    'auth_failure_delay = 0',
    'login_trusted_networks = 127.0.0.0/8',
    `mail_location = maildir:${mail}/%u`,
    ...(root
      ? ['default_login_user = dovenull', 'default_internal_user = dovecot', 'mail_uid = nobody', 'mail_gid = nogroup']
      : [`default_login_user = ${me}`, `default_internal_user = ${me}`]),
    'first_valid_uid = 0',
    ...(opts.tls === true ? ['ssl = yes', `ssl_cert = <${dir}/server.crt`, `ssl_key = <${dir}/server.key`] : ['ssl = no']),
    ...(opts.acl === true
      ? ['mail_plugins = acl', 'protocol imap {', '  mail_plugins = $mail_plugins imap_acl', '}', 'plugin {', '  acl = vfile', '  acl_user = %u', '}']
      : []),
    'service imap-login {',
    '  inet_listener imap {',
    '    address = 127.0.0.1',
    `    port = ${port}`,
    '  }',
    '  inet_listener imaps {',
    '    address = 127.0.0.1',
    `    port = ${imapsPort ?? 0}`,
    ...(imapsPort !== undefined ? ['    ssl = yes'] : []),
    '  }',
    '}',
    'passdb {',
    '  driver = passwd-file',
    `  args = ${dir}/masters`,
    '  master = yes',
    // the user a master signs in as must exist: else AUTHORIZATIONFAILED, not an empty mailbox
    '  result_success = continue',
    '}',
    'passdb {',
    '  driver = passwd-file',
    `  args = ${dir}/users`,
    '}',
    'userdb {',
    '  driver = passwd-file',
    `  args = ${dir}/users`,
    '}',
  ];
  const confFile = path.join(dir, 'dovecot.conf');
  writeFileSync(confFile, conf.join('\n') + '\n');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  const logText = () => {
    try {
      return readFileSync(path.join(dir, 'dovecot.log'), 'utf8') + output;
    } catch {
      return output;
    }
  };
  const start = async () => {
    if (child !== undefined) return;
    const c = spawn(DOVECOT, ['-F', '-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    void exited.then(() => {
      if (child === c) child = undefined;
    });
    const end = Date.now() + 15_000;
    while (!(await greets(port))) {
      if (child !== c) throw new Error(`dovecot exited before listening:\n${logText().slice(-4000)}`);
      if (Date.now() > end) throw new Error(`dovecot did not greet on 127.0.0.1:${port} within 15 s:\n${logText().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child;
    if (c === undefined) return;
    c.kill('SIGTERM');
    await exited;
    child = undefined;
    // The master's children (auth, imap-login, imap) outlive it for a while and go on serving the
    // connections they hold: a "stopped" Dovecot would still take an APPEND on a kept connection.
    // They carry the instance name in their titles: ended here, so stopped means stopped.
    await endInstanceProcesses(`dovecot-parley-test-${path.basename(dir)}/`);
  };
  await start();
  return {
    port,
    imapsPort,
    caFile,
    dir,
    url: `imap://127.0.0.1:${port}`,
    running: () => child !== undefined,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: logText,
    doveadm: (args) => execFileSync(DOVEADM, ['-c', confFile, ...args], { encoding: 'utf8' }),
  };
}

/** Whether an IMAP server answers with its greeting (`* OK`) on the port. */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let seen = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('\r\n')) done(seen.startsWith('* OK'));
    });
  });
}

/** A CA and a server certificate for 127.0.0.1 and localhost signed by it; returns the CA file. */
function makeCertificates(dir: string): string {
  const file = (name: string) => path.join(dir, name);
  const openssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=Parley test IMAP CA', '-keyout', file('ca.key'), '-out', file('ca.crt')]);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr')]);
  writeFileSync(file('server.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-set_serial', '0x1', '-days', '2', '-extfile', file('server.ext'), '-out', file('server.crt')]);
  chmodSync(file('server.key'), 0o600);
  return file('ca.crt');
}

/**
 * A TCP relay in front of an IMAP server that can lose one answer: after cutNextAppendAnswer(),
 * the connection that next receives the server's answer to an APPEND (`OK [APPENDUID …]`) is cut
 * before that answer is passed on. The message is stored; the client never learns it.
 */
export interface ImapRelay {
  port: number;
  url: string;
  /** resolves once an APPEND answer was swallowed */
  cutNextAppendAnswer(): Promise<void>;
  close(): Promise<void>;
}

export async function startImapRelay(target: number): Promise<ImapRelay> {
  let armed: (() => void) | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      const cut = armed;
      if (cut !== undefined && /^[A-Za-z0-9.]+ OK \[APPENDUID /m.test(d.toString('latin1'))) {
        armed = undefined;
        end();
        cut();
        return;
      }
      client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `imap://127.0.0.1:${port}`,
    cutNextAppendAnswer: () => new Promise<void>((resolve) => (armed = resolve)),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Ends the processes whose title starts with `title` (SIGTERM, then SIGKILL after 2 s). */
async function endInstanceProcesses(title: string): Promise<void> {
  const pids = (): number[] =>
    execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim().match(/^(\d+) (.*)$/))
      .filter((m): m is RegExpMatchArray => m !== null && (m[2] ?? '').startsWith(title))
      .map((m) => Number(m[1]));
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of pids()) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone meanwhile
      }
    }
  };
  signal('SIGTERM');
  for (const end = Date.now() + 2_000; pids().length > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
  signal('SIGKILL');
}
