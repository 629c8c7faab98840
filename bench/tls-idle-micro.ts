// What an idle TLS connection costs node itself, with no Parley code (issue 20: the tls-idle
// scenario's target): a bare `tls.createServer` (or `net.createServer`) in a child process, and
// `--count` clients that each make a full handshake, exchange two small requests and answers (the
// sizes of REGISTER, 401, REGISTER, 200) and then stay open and silent. The child's VmRSS and
// V8 heap (after a full GC) are read with no connection, at half the count and at the count;
// the second half's growth divided by its connections is the cost of one more connection.
//
//   node bench/tls-idle-micro.ts [--count 10000] [--parallel 100] [--variants tcp,tls,tls-x25519]
//
// Variants: tcp (plain TCP, the floor of a node socket), tls (node's defaults: TLS 1.3, and
// X25519MLKEM768 with a client that offers it, as node 24 and OpenSSL >= 3.5 clients do),
// tls-x25519 (the server offers no ML-KEM group: what a client without ML-KEM negotiates anyway).
//
// Where one idle TLS 1.3 connection's ~47 KiB are (node 24.21, OpenSSL 3.5.8, December 2026):
// heaptrack's allocations still live with 3,000 connections open, a heap snapshot for V8, RSS
// differences for the rest.
//   OpenSSL, two record layers (read and write keys; OSSL_RECORD_LAYER, AES-GCM contexts)  11.1 KiB
//   OpenSSL, the SSL object (SSL_new)                                                        6.8 KiB
//   OpenSSL, the client's ML-KEM-768 public key, kept as the peer's key (X25519MLKEM768)      6.2 KiB
//   OpenSSL, the rest (session for the tickets 0.9, sigalgs, handshake hash, key share)      3.4 KiB
//   node, the encrypted-input buffer: sized by libuv's 64 KiB read hint (TLSWrap::OnStreamAlloc),
//     kept for the connection's life; only the pages written are resident                 ~4-8 KiB
//   node, the encrypted-output buffer (1 KiB, then 16 KiB when a flight is larger)           2.3 KiB
//   node, TLSWrap and TCPWrap (C++)                                                          1 KiB
//   V8 heap: TLSSocket and its net.Socket, their stream states, closures                     4.0 KiB
//   malloc headers and rounding (hundreds of small OpenSSL allocations)                     ~5 KiB
// Node sets SSL_MODE_RELEASE_BUFFERS on every SSL (TLSWrap::InitSSL), so OpenSSL's 16 KiB record
// buffers are already freed between records; no OpenSSL config directive sets modes.
// Measured and no help (10,000 connections, second half): session tickets off (SSL_OP_NO_TICKET)
// 46.6 KiB against 46.5; MALLOC_ARENA_MAX=2 47.4; 10 handshakes at a time instead of 100 48.8;
// malloc_trim(0) called in the server (gdb) with 10,000 open gave back 4 MiB of 540.
// MALLOC_MMAP_THRESHOLD_=65536 (glibc, read at start-up) puts the 64 KiB input buffer in its own
// mapping, where only written pages count: 2-4 KiB less here, about 4 KiB less in Parley's
// tls-idle scenario; it also maps every 64 KiB socket read (UDP too), which cost no CPU
// measurable here (5.6-6.3 us per datagram either way).
// Out of process: stunnel 5.68 (OpenSSL 3.0, a thread per connection) held 88 KiB per connection.

import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { makeBenchCertificate } from './tls.ts';
import { sourceAddress } from './ws-load.ts';

type Variant = 'tcp' | 'tls' | 'tls-x25519';
const VARIANTS: readonly Variant[] = ['tcp', 'tls', 'tls-x25519'];
const REQUEST_BYTES = [600, 700];
const ANSWER_BYTES = 400;

interface Sample {
  connections: number;
  rssKb: number;
  heapUsedKb: number;
}

const isVariant = (v: string): v is Variant => (VARIANTS as readonly string[]).includes(v);

/** The child: one server of `variant`, answering each request with ANSWER_BYTES; measures itself when asked. */
function serve(variant: Variant, cert: string, key: string): void {
  const open = new Set<net.Socket>();
  const onSocket = (socket: net.Socket): void => {
    open.add(socket);
    socket.on('data', () => socket.write(Buffer.alloc(ANSWER_BYTES, 65)));
    socket.on('error', () => {});
    socket.on('close', () => open.delete(socket));
  };
  const secure = { cert: readFileSync(cert), key: readFileSync(key), ...(variant === 'tls-x25519' ? { ecdhCurve: 'X25519:P-256:P-384' } : {}) };
  const server = variant === 'tcp' ? net.createServer(onSocket) : tls.createServer(secure, onSocket);
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as net.AddressInfo).port }));
  process.on('message', (m) => {
    if (m !== 'measure') return process.exit(0);
    globalThis.gc!();
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
    const sample: Sample = { connections: open.size, rssKb, heapUsedKb: process.memoryUsage().heapUsed / 1024 };
    process.send!(sample);
  });
}

/** One client connection through its two exchanges; resolves with the idle socket and the key exchange it negotiated. */
function dial(variant: Variant, port: number, i: number): Promise<{ socket: net.Socket; group: string }> {
  return new Promise((resolve, reject) => {
    const at = { host: '127.0.0.1', port, localAddress: sourceAddress(i) };
    const socket = variant === 'tcp' ? net.connect(at) : tls.connect({ ...at, rejectUnauthorized: false });
    let answered = 0;
    let sent = 0;
    const send = () => socket.write(Buffer.alloc(REQUEST_BYTES[sent++]!, 66));
    socket.once('error', reject);
    socket.once(variant === 'tcp' ? 'connect' : 'secureConnect', send);
    socket.on('data', (chunk: Buffer) => {
      answered += chunk.length;
      if (answered < ANSWER_BYTES * sent) return;
      if (sent < REQUEST_BYTES.length) return send();
      socket.removeAllListeners('data');
      const group = socket instanceof tls.TLSSocket ? (socket.getEphemeralKeyInfo() as { name?: string }).name ?? '?' : 'none';
      resolve({ socket, group });
    });
  });
}

async function measureVariant(variant: Variant, count: number, parallel: number, cert: string, key: string): Promise<string> {
  const child = fork(import.meta.filename, ['--serve', variant, '--cert', cert, '--key', key], { execArgv: ['--expose-gc'] });
  const next = <T>() => new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));
  const { port } = await next<{ port: number }>();
  const sample = async (): Promise<Sample> => {
    await new Promise((r) => setTimeout(r, 2_000));
    child.send('measure');
    return next<Sample>();
  };
  const held: net.Socket[] = [];
  const groups = new Set<string>();
  let opened = 0;
  const openUpTo = (total: number) =>
    Promise.all(
      Array.from({ length: parallel }, async () => {
        while (opened < total) {
          const { socket, group } = await dial(variant, port, opened++);
          held.push(socket);
          groups.add(group);
        }
      }),
    );
  try {
    const none = await sample();
    await openUpTo(Math.floor(count / 2));
    const half = await sample();
    await openUpTo(count);
    const all = await sample();
    const per = (a: Sample, b: Sample, k: 'rssKb' | 'heapUsedKb') => ((b[k] - a[k]) / (b.connections - a.connections)).toFixed(1);
    return `${variant} (key exchange ${[...groups].join(', ')}): RSS ${none.rssKb} -> ${half.rssKb} -> ${all.rssKb} KiB; per connection ${per(none, half, 'rssKb')} KiB (first half), ${per(half, all, 'rssKb')} KiB (second half), of which V8 heap ${per(half, all, 'heapUsedKb')} KiB`;
  } finally {
    child.send('exit');
    for (const s of held) s.destroy();
  }
}

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '10000' },
    parallel: { type: 'string', default: '100' },
    variants: { type: 'string', default: VARIANTS.join(',') },
    serve: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
  },
});
if (values.serve !== undefined) {
  if (!isVariant(values.serve)) throw new Error(`unknown variant ${values.serve}`);
  serve(values.serve, values.cert!, values.key!);
} else {
  const variants = values.variants.split(',');
  const unknown = variants.filter((v) => !isVariant(v));
  if (unknown.length > 0) throw new Error(`unknown variant(s) ${unknown.join(', ')}; known: ${VARIANTS.join(', ')}`);
  const certificate = await makeBenchCertificate('bench.test');
  try {
    for (const v of variants.filter(isVariant)) console.log(await measureVariant(v, Number(values.count), Number(values.parallel), certificate.cert, certificate.key));
  } finally {
    await certificate.remove();
  }
}
