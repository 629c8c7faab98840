// What one TCP connection costs the server, apart from what is said on it: bench scenarios 4-5
// (sipp `-t tn`) open a connection per call — accept, REGISTER / 401 / REGISTER / 200, close.
// The server side here is the real one (listenStream, the StreamFramer, a started
// ConnectionGuard); its sink answers each request with a fixed response (no registrar, no
// digest), so the figure is the transport's: accept, the flow and its tracking, framing two
// requests, two writes, the close. The clients run in a child process (pinned to core 1 when
// the server is pinned to core 0: `taskset -c 0 node bench/tcp-connection-micro.ts`), CONCURRENT
// connections at a time, each opened, used for two exchanges and closed by the client as sipp
// does. Prints the server's CPU per connection (process.cpuUsage, user and system apart) for
// each round, then the least and median. On a shared machine compare runs taken one after the
// other, interleaved, several times.
//   node bench/tcp-connection-micro.ts [connections per round, 20000] [rounds, 5] [concurrent, 50]
//   STRACE: `strace -c -o FILE node bench/tcp-connection-micro.ts 20000 1` counts the server's
//   main-thread system calls (no -f: the clients are another process); divide by the connections.
import { execFileSync, fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, DEFAULT_SIP_LIMITS, listenStream, type TransportSink } from '../src/sip/index.ts';

const request = (cseq: number): string =>
  [
    'REGISTER sip:bench.test SIP/2.0',
    'Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-micro-' + cseq,
    'From: <sip:user001@bench.test>;tag=micro',
    'To: <sip:user001@bench.test>',
    'Call-ID: micro-call@127.0.0.1',
    `CSeq: ${cseq} REGISTER`,
    'Contact: <sip:user001@127.0.0.1:5070;transport=tcp>',
    'Max-Forwards: 70',
    'Expires: 3600',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');

if (process.argv[2] === 'client') {
  // argv: client PORT CONNECTIONS CONCURRENT; runs one round per 'go' message
  const port = Number(process.argv[3]);
  const total = Number(process.argv[4]);
  const concurrent = Number(process.argv[5]);
  const first = Buffer.from(request(1));
  const second = Buffer.from(request(2));
  // one connection: a request, its answer, the second request, its answer, the client closes
  const call = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      let answers = 0;
      socket.on('data', (chunk) => {
        // the answers end with an empty line and carry no body; count the ends seen
        for (let i = chunk.indexOf('\r\n\r\n'); i >= 0; i = chunk.indexOf('\r\n\r\n', i + 4)) answers++;
        if (answers === 1) socket.write(second);
        else if (answers >= 2) socket.end();
      });
      socket.on('connect', () => socket.write(first));
      socket.on('error', reject);
      socket.on('close', () => (answers >= 2 ? resolve() : reject(new Error('closed early'))));
    });
  process.on('message', async () => {
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < total) {
        started++;
        await call();
      }
    };
    await Promise.all(Array.from({ length: concurrent }, worker));
    process.send?.('done');
  });
  process.send?.('ready');
} else {
  const CONNECTIONS = Number(process.argv[2] ?? 20_000);
  const ROUNDS = Number(process.argv[3] ?? 5);
  const CONCURRENT = Number(process.argv[4] ?? 50);
  const answer = (cseq: string): string => `SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-micro\r\nFrom: <sip:user001@bench.test>;tag=micro\r\nTo: <sip:user001@bench.test>;tag=srv\r\nCall-ID: micro-call@127.0.0.1\r\nCSeq: ${cseq}\r\nServer: Parley/micro\r\nContent-Length: 0\r\n\r\n`;
  let flowsClosed = 0;
  const sink: TransportSink = {
    onMessage: (message, flow) => void flow.sendText?.(answer(message.headers.get('cseq') ?? '')),
    onParseError: (error) => {
      throw new Error(`unexpected parse error: ${error.message}`);
    },
    onFlowClosed: () => void flowsClosed++,
  };
  const guard = new ConnectionGuard(DEFAULT_CONNECTION_LIMITS, (event) => console.error('guard:', event.message));
  guard.start();
  const listener = await listenStream({ protocol: 'tcp', address: '127.0.0.1', port: 0, limits: DEFAULT_SIP_LIMITS, sink, guard });
  // the clients on the other core when this process is pinned to core 0
  const child = fork(fileURLToPath(import.meta.url), ['client', String(listener.local.port), String(CONNECTIONS), String(CONCURRENT)], { stdio: 'inherit' });
  // fork inherits this process's CPU affinity: the clients move to core 1 (all their threads)
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(child.pid)], { stdio: 'ignore' });
  } catch {
    // no taskset, or one core: the clients share the server's core, and its figures are still the server's own
  }
  const next = (): Promise<string> => new Promise((resolve) => child.once('message', (m) => resolve(String(m))));
  await next(); // ready
  const round = async (): Promise<{ user: number; system: number }> => {
    const closedBefore = flowsClosed;
    const done = next();
    child.send('go');
    const before = process.cpuUsage();
    await done;
    // the last connections' close may still be on its way
    while (flowsClosed - closedBefore < CONNECTIONS) await new Promise((r) => setImmediate(r));
    const used = process.cpuUsage(before);
    return { user: used.user / CONNECTIONS, system: used.system / CONNECTIONS };
  };
  await round(); // warm-up: the JIT, the buffers
  const results: { user: number; system: number }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = await round();
    results.push(r);
    console.log(`round ${i + 1}: ${(r.user + r.system).toFixed(1)} µs per connection (user ${r.user.toFixed(1)}, system ${r.system.toFixed(1)})`);
  }
  const by = (pick: (r: { user: number; system: number }) => number): { least: number; median: number } => {
    const sorted = results.map(pick).sort((a, b) => a - b);
    return { least: sorted[0] ?? 0, median: sorted[Math.floor(sorted.length / 2)] ?? 0 };
  };
  const [all, user, system] = [by((r) => r.user + r.system), by((r) => r.user), by((r) => r.system)];
  console.log(`least ${all.least.toFixed(1)} µs (user ${user.least.toFixed(1)}, system ${system.least.toFixed(1)}); median ${all.median.toFixed(1)} µs (user ${user.median.toFixed(1)}, system ${system.median.toFixed(1)}); ${CONNECTIONS} connections per round, ${CONCURRENT} at a time`);
  child.kill();
  guard.stop();
  await listener.close();
}
