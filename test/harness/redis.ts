// A real redis-server of the test's own, started and stopped by the test: the cluster tests never
// use the machine's Redis on 127.0.0.1:6379, which the private network namespace of the e2e runs
// cannot reach and which other runs share.
//
// It listens on a Unix socket in a temporary directory (works inside the namespace, no port to
// pick), and on a loopback TCP port too when asked (for the redis:// form of the address). Nothing
// is persisted (`--save '' --appendonly no`): a restart starts empty, as a lost Redis does.
//
//   const redis = await startRedis();
//   after(() => redis.stop());
//   … openRedis(redis.url) …

import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type NetConnectOpts } from 'node:net';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';

export interface TestRedis {
  /** `unix:///…/redis.sock` */
  readonly url: string;
  readonly socket: string;
  /** the loopback TCP port, when started with `tcp: true` */
  readonly port: number | null;
  /** the loopback TLS port and the PEM file of its self-signed certificate (for localhost), when started with `tls: true` */
  readonly tls: { readonly port: number; readonly ca: string } | null;
  /** stops the server (nothing kept) and starts it again on the same socket and port */
  restart(): Promise<void>;
  /** stops the server; `start()` brings it back on the same socket and port */
  halt(): Promise<void>;
  start(): Promise<void>;
  /** stops the server and removes its directory */
  stop(): Promise<void>;
}

export interface TestRedisOptions {
  /** also listen on a free loopback TCP port */
  readonly tcp?: boolean;
  /** also listen with TLS on a free loopback port, with a self-signed certificate for localhost */
  readonly tls?: boolean;
  /** `requirepass` */
  readonly password?: string;
}

export async function startRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-redis-'));
  const socket = join(dir, 'redis.sock');
  const port = options.tcp ? await freePort() : null;
  const tls = options.tls ? { port: await freePort(), ca: selfSigned(dir) } : null;
  const args = [
    '--port', String(port ?? 0),
    '--bind', '127.0.0.1',
    '--unixsocket', socket,
    '--unixsocketperm', '700',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--loglevel', 'warning',
    ...(options.password ? ['--requirepass', options.password] : []),
    ...(tls ? ['--tls-port', String(tls.port), '--tls-cert-file', tls.ca, '--tls-key-file', join(dir, 'key.pem'), '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no'] : []),
  ];
  let child: ChildProcess | null = null;

  async function start(): Promise<void> {
    child ??= await spawnRedis(args, { path: socket });
  }

  async function halt(): Promise<void> {
    const proc = child;
    child = null;
    if (proc) await kill(proc);
    await rm(socket, { force: true });
  }

  await start();
  return {
    url: `unix://${socket}`,
    socket,
    port,
    tls,
    start,
    halt,
    async restart() {
      await halt();
      await start();
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestSentinel {
  /** the Sentinel's loopback port */
  readonly port: number;
  /** the name of the master it monitors */
  readonly name: string;
  stop(): Promise<void>;
}

/**
 * A Redis Sentinel on a free loopback port monitoring `master` (started with `tcp: true`: a
 * Sentinel gives out the master's address as host and port) under `name`. Quorum 1, so it never
 * needs another Sentinel.
 */
export async function startSentinel(master: TestRedis, name = 'parley-test'): Promise<TestSentinel> {
  if (master.port === null) throw new Error('startSentinel: start the master with { tcp: true }');
  const dir = await mkdtemp(join(tmpdir(), 'parley-sentinel-'));
  const port = await freePort();
  // a Sentinel rewrites its configuration file: it must be a file of its own
  const config = join(dir, 'sentinel.conf');
  await writeFile(config, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`, ''].join('\n'));
  const proc = await spawnRedis([config, '--sentinel', '--loglevel', 'warning'], { host: '127.0.0.1', port });
  return {
    port,
    name,
    async stop() {
      await kill(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Starts redis-server with `args` and resolves once it answers PING at `at`. */
async function spawnRedis(args: string[], at: NetConnectOpts): Promise<ChildProcess> {
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(proc, 'exit').then(() => {
    throw new Error(`redis-server exited at start: ${output.trim() || '(no output)'}`);
  });
  const spawnFailed = once(proc, 'error').then(([err]) => {
    throw new Error(`redis-server could not be started (is the redis-server package installed?): ${(err as Error).message}`);
  });
  exited.catch(() => undefined);
  spawnFailed.catch(() => undefined);
  // a test process that ends without stopping its servers (a crash, a timeout) takes them along
  const orphaned = () => proc.kill('SIGKILL');
  process.once('exit', orphaned);
  proc.once('exit', () => process.removeListener('exit', orphaned));
  try {
    await Promise.race([waitForPong(at), exited, spawnFailed]);
  } catch (err) {
    await kill(proc);
    throw err;
  }
  return proc;
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = once(proc, 'exit');
  proc.kill('SIGKILL');
  await gone;
}

/** Writes a self-signed certificate for localhost and 127.0.0.1 (cert.pem, key.pem) in `dir`; returns the certificate's path. */
function selfSigned(dir: string): string {
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', cert,
  ], { stdio: 'ignore' });
  return cert;
}

/** A port the OS says is free now (bound to port 0 and released); redis-server needs a number. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once a connection to `at` answers PING (or asks for a password). */
async function waitForPong(at: NetConnectOpts): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection(at);
      c.once('error', () => resolve(false));
      c.once('connect', () => c.write('PING\r\n'));
      c.once('data', (d) => {
        c.destroy();
        resolve(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH'));
      });
    });
    if (ok) return;
    if (attempt > 200) throw new Error(`redis-server did not answer at ${JSON.stringify(at)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface TestRedisCluster {
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` */
  readonly url: string;
  /** the masters' loopback ports */
  readonly ports: readonly number[];
  /** SIGKILL to the master on `port` (its slots are lost: the others go on serving theirs) */
  kill(port: number): Promise<void>;
  /** stops every node and removes their directory */
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of three masters (no replicas) on free loopback ports: cluster mode needs TCP
 * (its own bus between the nodes, on a second port each). Slots are spread over the three; resolves once every node says cluster_state:ok.
 */
export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-redis-cluster-'));
  const ports: number[] = [];
  const busPorts: number[] = [];
  const procs: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(procs.map(kill));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const busPort = await freePort();
      ports.push(port);
      busPorts.push(busPort);
      procs.push(await spawnRedis([
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-port', String(busPort),
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '2000',
        // a master lost (kill()) leaves the others serving their slots
        '--cluster-require-full-coverage', 'no',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
        '--daemonize', 'no',
        '--loglevel', 'warning',
      ], { host: '127.0.0.1', port }));
    }
    // what `redis-cli --cluster create` does, without its one-second waits: each master takes an
    // equal range of the 16384 slots, and the first one meets the others
    const per = Math.ceil(16384 / masters);
    for (const [i, port] of ports.entries()) {
      await execFileText('redis-cli', ['-p', String(port), 'cluster', 'addslotsrange', String(i * per), String(Math.min(16383, (i + 1) * per - 1))]);
      if (i > 0) await execFileText('redis-cli', ['-p', String(ports[0]), 'cluster', 'meet', '127.0.0.1', String(port), String(busPorts[i])]);
    }
    // Ready when every node knows every other one and sees all the slots served. cluster_state:ok
    // alone is not enough with full coverage not required: a node that has met only the first
    // one by gossip is "ok" already, and once the first is killed the other two never meet (the
    // bus test that kills a node then saw its messages go nowhere, one run in three).
    const ready = (info: string): boolean => info.includes('cluster_state:ok') && /cluster_known_nodes:(\d+)/.exec(info)?.[1] === String(masters) && /cluster_slots_ok:(\d+)/.exec(info)?.[1] === '16384';
    for (const port of ports) {
      for (let attempt = 0; !ready(await execFileText('redis-cli', ['-p', String(port), 'cluster', 'info'])); attempt++) {
        if (attempt > 400) throw new Error(`the Redis Cluster node on port ${port} did not come to know all ${masters} masters and their slots`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    ports,
    stop,
    async kill(port) {
      const proc = procs[ports.indexOf(port)];
      if (proc === undefined) throw new Error(`no Redis Cluster node on port ${port}`);
      await kill(proc);
    },
  };
}

async function execFileText(command: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(command, args);
  return stdout;
}
