// Every URL Parley hands out must be reachable by the client it is handed to (README "URLs given
// to clients"): listening on 0.0.0.0 they name the address the client connected to, never
// 0.0.0.0; with publicUrl they name it; with sip.advertise the server's Via and Contact name it.
// IPv6: --listen ::1 and --listen :: (dual stack) over UDP, TCP and HTTP. And a "client host" in
// another network namespace, joined by a veth pair, reaches a server on 0.0.0.0 at 10.77.0.1 and
// is given URLs with that address.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SipClient, type IncomingMessage, type ProvisioningSettings } from '../../src/client/index.ts';
import { parseVia } from '../../src/sip/grammar.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { REPO_ROOT, runCli, startServer, type RunningServer } from '../harness/server.ts';
import { udpConnector } from '../harness/udp-connector.ts';
import { rawRequest } from './raw-sip.ts';

const DOMAIN = 'parley.test';
const USERS = ['alice', 'bob'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` }));

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** An HTTP request with full control of Host (a foreign one, say). */
function request(host: string, port: number, options: { method?: string; path: string; hostHeader?: string | null; headers?: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.hostHeader !== undefined && options.hostHeader !== null) headers.host = options.hostHeader;
    const req = http.request({ host, port, method: options.method ?? 'GET', path: options.path, setHost: options.hostHeader === undefined, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const basic = (user: string) => `Basic ${Buffer.from(`${user}@${DOMAIN}:${user}-pw`).toString('base64')}`;
const POX = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@${DOMAIN}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;
const SOAP =
  `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing">` +
  `<soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></soap:Header>` +
  `<soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>alice@${DOMAIN}</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>`;

/** The EWS URLs autodiscover (POX and SOAP) gives alice, asked with this Host header. */
async function autodiscovered(server: RunningServer, hostHeader: string | null): Promise<{ pox: string; soap: string }> {
  const ask = async (p: string, body: string, type: string) => {
    const res = await request('127.0.0.1', server.http.port, { method: 'POST', path: p, hostHeader, headers: { 'content-type': type, authorization: basic('alice') }, body });
    assert.equal(res.status, 200, res.body);
    return res.body;
  };
  const pox = /<EwsUrl>([^<]+)<\/EwsUrl>/.exec(await ask('/autodiscover/autodiscover.xml', POX, 'text/xml'))?.[1] ?? '';
  const soap = /<Value>([^<]+)<\/Value>/.exec(await ask('/autodiscover/autodiscover.svc', SOAP, 'text/xml; charset=utf-8'))?.[1] ?? '';
  return { pox, soap };
}

/** alice's session JSON's webSocketUrl, signed in with this Host (and the page's Origin). */
async function sessionWebSocketUrl(server: RunningServer, hostHeader: string | null, origin: string): Promise<string> {
  const res = await request('127.0.0.1', server.http.port, {
    method: 'POST',
    path: '/api/session',
    hostHeader,
    headers: { 'content-type': 'application/json', origin },
    body: JSON.stringify({ user: 'alice', password: 'alice-pw' }),
  });
  assert.equal(res.status, 201, res.body);
  return (JSON.parse(res.body) as { webSocketUrl: string }).webSocketUrl;
}

/** connect-src of the web client's CSP, asked with this Host. */
async function connectSrc(host: string, port: number, hostHeader: string | null): Promise<string> {
  const res = await request(host, port, { method: 'HEAD', path: '/', hostHeader });
  assert.equal(res.status, 200);
  return /connect-src ([^;]+)/.exec(String(res.headers['content-security-policy']))?.[1] ?? '';
}

/** A client of the server over `server` (tcp://host:port), over TCP or UDP. */
function client(server: string, user: string, over: 'tcp' | 'udp' = 'tcp', onMessage?: (m: IncomingMessage) => void): SipClient {
  const c = new SipClient({ server, aor: `sip:${user}@${DOMAIN}`, password: `${user}-pw`, requestTimeoutMs: 5000, keepAliveIntervalMs: 0, ...(over === 'udp' ? { connector: udpConnector() } : {}) });
  if (onMessage) c.on('message', onMessage);
  return c;
}

async function provisionedEwsUrl(c: SipClient): Promise<string> {
  const settings = new Promise<ProvisioningSettings>((resolve) => c.on('provisioning', resolve));
  await c.watchProvisioning();
  return (await settings).ewsUrl;
}

/** One datagram to the server from a socket of `family`; the first final response. */
function udpAsk(host: string, port: number, data: string): Promise<ReturnType<typeof parseMessage>> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no answer from ${host}:${port} over UDP`));
    }, 5000);
    socket.on('message', (msg) => {
      const parsed = parseMessage(msg);
      if (parsed.kind !== 'response' || parsed.status < 200) return;
      clearTimeout(timer);
      socket.close();
      resolve(parsed);
    });
    socket.send(data, port, host);
  });
}

describe('a server listening on 0.0.0.0 without publicUrl', () => {
  let server: RunningServer;
  const clients: SipClient[] = [];
  before(async () => {
    server = await startServer({ users: USERS, extraArgs: ['--listen', '0.0.0.0'] });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await server?.stop();
  });

  it('warns at start-up that it has no address to give, naming publicUrl and sip.advertise (this namespace has loopback only)', () => {
    assert.match(server.logs(), /listening on 0\.0\.0\.0, but this machine has no address other hosts can reach.*Set publicUrl.*sip\.advertise/);
    assert.doesNotMatch(server.readyLine, /ws=ws:\/\/0\.0\.0\.0/);
    assert.match(server.logs(), new RegExp(`will say parley\\.test:${server.http.port}\\.`), 'the HTTP port as it listens');
  });

  it('tells a person on this machine to open localhost, never 0.0.0.0', async () => {
    assert.match(await server.waitForLog(/^Open /), /^Open http:\/\/localhost:\d+\/ in a browser/);
  });

  it('provisioning over TCP gives an EWS URL naming the address the client connected to', async () => {
    const bob = client(`tcp://127.0.0.1:${server.tcp.port}`, 'bob');
    clients.push(bob);
    await bob.connect();
    assert.equal(await provisionedEwsUrl(bob), `http://127.0.0.1:${server.http.port}/EWS/Exchange.asmx`);
  });

  it('provisioning over UDP names the interface facing the client, not the wildcard the socket is bound to', async () => {
    const alice = client(`tcp://127.0.0.1:${server.udp.port}`, 'alice', 'udp');
    clients.push(alice);
    await alice.connect();
    await alice.register({ expires: 60 });
    assert.equal(await provisionedEwsUrl(alice), `http://127.0.0.1:${server.http.port}/EWS/Exchange.asmx`);
  });

  it('autodiscover (POX and SOAP) asked with a foreign Host names the connection\'s local address', async () => {
    const expected = `http://127.0.0.1:${server.http.port}/EWS/Exchange.asmx`;
    assert.deepEqual(await autodiscovered(server, 'evil.example'), { pox: expected, soap: expected });
    assert.match(server.logs(), /Host evil\.example is not a name of this server; answering with http:\/\/127\.0\.0\.1:/);
  });

  it('the session\'s webSocketUrl and the CSP name the local address when the Host is not ours, the Host when it is', async () => {
    const port = server.http.port;
    assert.equal(await sessionWebSocketUrl(server, 'evil.example', `http://127.0.0.1:${port}`), `ws://127.0.0.1:${port}/sip`);
    assert.equal(await sessionWebSocketUrl(server, `localhost:${port}`, `http://localhost:${port}`), `ws://localhost:${port}/sip`);
    assert.equal(await connectSrc('127.0.0.1', port, 'evil.example'), `'self' ws://127.0.0.1:${port} wss://127.0.0.1:${port}`);
    assert.equal(await connectSrc('127.0.0.1', port, `localhost:${port}`), `'self' ws://localhost:${port} wss://localhost:${port}`);
  });
});

describe('a server with publicUrl and sip.advertise', () => {
  let server: RunningServer;
  const clients: SipClient[] = [];
  before(async () => {
    server = await startServer({ users: USERS, extraArgs: ['--listen', '0.0.0.0'], config: { publicUrl: 'https://chat.example.com/', sip: { advertise: 'sip.example.com' } } });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await server?.stop();
  });

  it('starts without the address warning and says publicUrl in the ready and first-start lines', () => {
    assert.doesNotMatch(server.logs(), /no address other hosts can reach/);
    assert.equal(server.wsUrl, 'wss://chat.example.com/sip');
  });

  it('tells a person to open publicUrl', async () => {
    assert.match(await server.waitForLog(/^Open /), /^Open https:\/\/chat\.example\.com\/ in a browser/);
  });

  it('provisioning, autodiscover, the session and the CSP all name publicUrl', async () => {
    const ews = 'https://chat.example.com/EWS/Exchange.asmx';
    const bob = client(`tcp://127.0.0.1:${server.tcp.port}`, 'bob');
    clients.push(bob);
    await bob.connect();
    assert.equal(await provisionedEwsUrl(bob), ews);
    assert.deepEqual(await autodiscovered(server, 'evil.example'), { pox: ews, soap: ews });
    assert.deepEqual(await autodiscovered(server, `127.0.0.1:${server.http.port}`), { pox: ews, soap: ews }, 'also for a Host of its own (a proxy that rewrote Host)');
    // the page behind the proxy has publicUrl's origin: it may sign in
    assert.equal(await sessionWebSocketUrl(server, 'chat.example.com', 'https://chat.example.com'), 'wss://chat.example.com/sip');
    assert.match(await connectSrc('127.0.0.1', server.http.port, `127.0.0.1:${server.http.port}`), new RegExp(`^'self' ws://chat\\.example\\.com wss://chat\\.example\\.com ws://127\\.0\\.0\\.1:${server.http.port}`));
  });

  it('the Via of a relayed MESSAGE names sip.advertise with the SIP port', async () => {
    const received: IncomingMessage[] = [];
    const bob = client(`tcp://127.0.0.1:${server.tcp.port}`, 'bob', 'tcp', (m) => received.push(m));
    const alice = client(`tcp://127.0.0.1:${server.tcp.port}`, 'alice');
    clients.push(bob, alice);
    await bob.connect();
    await bob.register({ expires: 60 });
    await alice.connect();
    assert.equal((await alice.sendMessage(`sip:bob@${DOMAIN}`, 'hello')).status, 200);
    const via = parseVia(received[0]?.request.headers.get('via') ?? '');
    assert.equal(`${via.host}:${via.port}`, `sip.example.com:${server.tcp.port}`);
  });
});

describe('parley check-config', () => {
  it('shows publicUrl and sip.advertise as they will be used, and refuses a bad one naming the setting', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'parley-addr-'));
    try {
      const good = path.join(dir, 'good.json');
      await writeFile(good, JSON.stringify({ dataDir: path.join(dir, 'data'), publicUrl: 'https://Chat.Example.com:443/', sip: { advertise: '[2001:db8::5]:5060' } }));
      const ok = await runCli(['check-config', '--config', good]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^  publicUrl: https:\/\/chat\.example\.com$/m);
      assert.match(ok.stdout, /^  sip\.advertise: \[2001:db8::5\]:5060$/m);
      const unset = await runCli(['check-config', '--data-dir', path.join(dir, 'data')]);
      assert.match(unset.stdout, /^  publicUrl: not set \(URLs given to clients name the request's Host when it is this server's, else the address the client connected to\)$/m);
      const bad = path.join(dir, 'bad.json');
      await writeFile(bad, JSON.stringify({ publicUrl: 'https://chat.example.com/parley' }));
      const refused = await runCli(['check-config', '--config', bad]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /config\.publicUrl must be the URL clients reach this server at.*no path, query or fragment/);
      const flag = await runCli(['check-config', '--data-dir', path.join(dir, 'data'), '--public-url', 'http://0.0.0.0:8080']);
      assert.equal(flag.code, 2);
      assert.match(flag.stderr, /flag\.publicUrl .*"every address"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('IPv6', () => {
  it('--listen ::1: REGISTER and MESSAGE over TCP and UDP with the SDK, /health over HTTP, Via received/rport with IPv6', async () => {
    const server = await startServer({ users: USERS, extraArgs: ['--listen', '::1'] });
    const clients: SipClient[] = [];
    try {
      assert.equal(server.udp.host, '::1');
      assert.equal(server.wsUrl, `ws://[::1]:${server.http.port}/sip`);
      const health = await request('::1', server.http.port, { path: '/health' });
      assert.equal(health.status, 200);

      const got: IncomingMessage[] = [];
      const bobUdp = client(`tcp://[::1]:${server.udp.port}`, 'bob', 'udp', (m) => got.push(m));
      const aliceTcp = client(`tcp://[::1]:${server.tcp.port}`, 'alice', 'tcp', (m) => got.push(m));
      clients.push(bobUdp, aliceTcp);
      await bobUdp.connect();
      assert.equal((await bobUdp.register({ expires: 60 })).status, 200);
      await aliceTcp.connect();
      assert.equal((await aliceTcp.register({ expires: 60 })).status, 200);
      assert.equal((await aliceTcp.sendMessage(`sip:bob@${DOMAIN}`, 'over TCP to UDP')).status, 200);
      assert.equal((await bobUdp.sendMessage(`sip:alice@${DOMAIN}`, 'over UDP to TCP')).status, 200);
      assert.deepEqual(got.map((m) => m.text).sort(), ['over TCP to UDP', 'over UDP to TCP']);
      const viaToBob = parseVia(got.find((m) => m.text === 'over TCP to UDP')?.request.headers.get('via') ?? '');
      assert.equal(`${viaToBob.transport} ${viaToBob.host}:${viaToBob.port}`, `UDP [::1]:${server.udp.port}`);
      assert.equal(await provisionedEwsUrl(bobUdp), `http://[::1]:${server.http.port}/EWS/Exchange.asmx`);

      // a Via naming another host: the answer carries received=::1 (RFC 3261 §18.2.1) and the port (RFC 3581)
      const options = rawRequest('OPTIONS', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:${DOMAIN}`, transport: 'UDP' }).replace('127.0.0.1:9;branch', '[2001:db8::9]:9;rport;branch');
      const answer = await udpAsk('::1', server.udp.port, options);
      const via = parseVia(answer.headers.get('via') ?? '');
      assert.equal(via.params.get('received'), '::1');
      assert.match(via.params.get('rport') ?? '', /^\d+$/);
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      await server.stop();
    }
  });

  it('--listen :: (dual stack): IPv4 and IPv6 clients alike, IPv4 written plain (never ::ffff:)', async () => {
    const server = await startServer({ users: USERS, extraArgs: ['--listen', '::'] });
    const clients: SipClient[] = [];
    try {
      for (const host of ['127.0.0.1', '::1']) assert.equal((await request(host, server.http.port, { path: '/health' })).status, 200, host);
      const options = rawRequest('OPTIONS', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:${DOMAIN}`, transport: 'UDP' }).replace('127.0.0.1:9;branch', '192.0.2.9:9;rport;branch');
      const v4 = parseVia((await udpAsk('127.0.0.1', server.udp.port, options)).headers.get('via') ?? '');
      assert.equal(v4.params.get('received'), '127.0.0.1');
      const v6 = parseVia((await udpAsk('::1', server.udp.port, options.replace(/branch=z9hG4bK\w+/, 'branch=z9hG4bKsix'))).headers.get('via') ?? '');
      assert.equal(v6.params.get('received'), '::1');

      const over4 = client(`tcp://127.0.0.1:${server.tcp.port}`, 'alice', 'udp');
      const over6 = client(`tcp://[::1]:${server.tcp.port}`, 'bob');
      clients.push(over4, over6);
      await over4.connect();
      await over6.connect();
      assert.equal(await provisionedEwsUrl(over4), `http://127.0.0.1:${server.http.port}/EWS/Exchange.asmx`);
      assert.equal(await provisionedEwsUrl(over6), `http://[::1]:${server.http.port}/EWS/Exchange.asmx`);
      const expected = `http://127.0.0.1:${server.http.port}/EWS/Exchange.asmx`;
      assert.deepEqual(await autodiscovered(server, 'evil.example'), { pox: expected, soap: expected });
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      await server.stop();
    }
  });
});

describe('a client host on another network namespace (veth pair)', () => {
  // The test makes the second namespace and the veth pair; it needs the rights the suite's own
  // namespace gives (root, or root in a user namespace), and util-linux's unshare and nsenter.
  const suffix = String(process.pid % 100000);
  const near = `pa${suffix}`;
  const far = `pb${suffix}`;
  let host: ChildProcess | undefined;
  let ready = '';

  before(async () => {
    try {
      host = spawn('unshare', ['--net', 'sleep', '600'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300));
      const ns = `/proc/${host.pid}/ns/net`;
      execFileSync('ip', ['link', 'add', near, 'type', 'veth', 'peer', 'name', far, 'netns', String(host.pid)]);
      execFileSync('ip', ['addr', 'add', '10.77.0.1/24', 'dev', near]);
      execFileSync('ip', ['link', 'set', near, 'up']);
      execFileSync('nsenter', [`--net=${ns}`, 'sh', '-c', `ip link set lo up && ip addr add 10.77.0.2/24 dev ${far} && ip link set ${far} up`]);
      ready = ns;
    } catch (err) {
      ready = '';
      console.log(`# veth pair not made (${(err as Error).message.split('\n')[0]}): the client-host test is skipped`);
    }
  });
  after(() => {
    try {
      execFileSync('ip', ['link', 'del', near], { stdio: 'ignore' });
    } catch {
      // gone with the other namespace already
    }
    host?.kill();
  });

  it('reaches a server on 0.0.0.0 at 10.77.0.1 and is given URLs with that address (provisioning over TCP and UDP, the CSP)', async (t) => {
    if (ready === '') return t.skip('no second network namespace here');
    const server = await startServer({ users: USERS, extraArgs: ['--listen', '0.0.0.0'] });
    try {
      assert.doesNotMatch(server.logs(), /no address other hosts can reach/, 'the machine has 10.77.0.1 now');
      const out = execFileSync('nsenter', [`--net=${ready}`, process.execPath, path.join(REPO_ROOT, 'test/e2e/addresses-client.ts'), '10.77.0.1', String(server.tcp.port), String(server.http.port), `bob@${DOMAIN}`, 'bob-pw'], { encoding: 'utf8', timeout: 30_000 });
      const seen = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, string>;
      const ews = `http://10.77.0.1:${server.http.port}/EWS/Exchange.asmx`;
      assert.equal(seen.tcpEwsUrl, ews);
      assert.equal(seen.udpEwsUrl, ews);
      assert.equal(/connect-src ([^;]+)/.exec(seen.cspForeignHost ?? '')?.[1], `'self' ws://10.77.0.1:${server.http.port} wss://10.77.0.1:${server.http.port}`);
    } finally {
      await server.stop();
    }
  });
});
