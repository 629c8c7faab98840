// Sign-in attacks (issue 18, findings 4 and 5) against a real `parley serve`: many concurrent wrong
// HTTP Basic passwords from one source must not keep another source's EWS request waiting, and
// password guessing over SIP digest and HTTP Basic locks the guessing source out (with the right
// password too), then the account for addresses it never signed in from; the administrator sees
// it (Get-CsAuthLockout, the audit log) and lifts it (Clear-CsAuthLockout), locally and through
// the admin API.
//
// Every attacker and client has its own loopback address (127.0.0.0/8 is all loopback), so the
// server tells them apart as it would tell hosts apart. Bounded: at most 150 requests at once.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selectChallenges } from '../../src/client/auth.ts';
import { answerChallenge, formatAuthField, parseMessage, StreamFramer } from '../../src/sip/index.ts';
import type { SipResponse } from '../../src/sip/index.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';
import { rawRequest } from './raw-sip.ts';

const DOMAIN = 'parley.test';
const SOURCE_THRESHOLD = 5;
const ACCOUNT_THRESHOLD = 8;
let server: RunningServer;
let configFile: string;

before(async () => {
  configFile = path.join(os.tmpdir(), `parley-signin-config-${process.pid}.json`);
  // the defaults (10 and 50) with smaller numbers, so the test sends fewer guesses
  await writeFile(configFile, JSON.stringify({ auth: { lockout: { sourceThreshold: SOURCE_THRESHOLD, accountThreshold: ACCOUNT_THRESHOLD, window: 600, duration: 120, maxDuration: 600 } } }));
  server = await startServer({
    domain: DOMAIN,
    users: ['alice', 'bob', 'carol', 'dave', 'erin'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
    extraArgs: ['--config', configFile],
  });
});

after(async () => {
  await server?.stop();
  await rm(configFile, { force: true });
});

// ---------------------------------------------------------------------------------------------
// HTTP from a chosen loopback address

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function httpFrom(local: string, method: string, pathname: string, opts: { user?: string; password?: string; body?: string; contentType?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (opts.user !== undefined) headers.authorization = `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64')}`;
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'text/xml; charset=utf-8';
      headers['content-length'] = Buffer.byteLength(opts.body);
    }
    const req = http.request({ host: server.http.host, port: server.http.port, method, path: pathname, localAddress: local, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`no answer to ${method} ${pathname} within 60 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

const GET_FOLDER = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></s:Body></s:Envelope>`;

const getFolder = (local: string, user: string, password: string) => httpFrom(local, 'POST', '/EWS/Exchange.asmx', { user, password, body: GET_FOLDER });

function problem(answer: HttpAnswer): { code?: string; detail?: string } {
  assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
  return JSON.parse(answer.body) as { code?: string; detail?: string };
}

// ---------------------------------------------------------------------------------------------
// SIP digest from a chosen loopback address: REGISTER, answer the 401, return the final answer

async function registerFrom(transport: 'udp' | 'tcp', local: string, user: string, password: string): Promise<SipResponse> {
  const exchange = transport === 'udp' ? await udpPeer(local) : await tcpPeer(local);
  try {
    const request = (cseq: number, authorization?: string) =>
      rawRequest('REGISTER', `sip:${DOMAIN}`, {
        from: `sip:${user}@${DOMAIN}`,
        to: `sip:${user}@${DOMAIN}`,
        transport: transport.toUpperCase(),
        headers: [`Contact: <sip:${user}@${local}:5062>;expires=60`, ...(authorization === undefined ? [] : [`Authorization: ${authorization}`])],
      }).replace('CSeq: 1 REGISTER', `CSeq: ${cseq} REGISTER`);
    const first = await exchange(request(1));
    if (first.status !== 401) return first;
    const [challenge] = selectChallenges(first.headers.getAll('www-authenticate'));
    assert.ok(challenge, 'a digest challenge');
    const answer = answerChallenge(challenge, { username: user, password, method: 'REGISTER', uri: `sip:${DOMAIN}` });
    return await exchange(request(2, formatAuthField(answer)));
  } finally {
    exchange.close();
  }
}

type Exchange = ((data: string) => Promise<SipResponse>) & { close(): void };

/** A UDP socket bound to `local`: each call sends one request and resolves with its final answer. */
async function udpPeer(local: string): Promise<Exchange> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, local, () => resolve()));
  const exchange = ((data: string) =>
    new Promise<SipResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SIP answer over UDP within 5 s')), 5000);
      const onMessage = (msg: Buffer) => {
        const parsed = parseMessage(msg);
        if (parsed.kind !== 'response' || parsed.status < 200) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(parsed);
      };
      socket.on('message', onMessage);
      socket.send(data, server.udp.port, server.udp.host);
    })) as Exchange;
  exchange.close = () => socket.close();
  return exchange;
}

/** A TCP connection from `local`, used for both rounds as a client would. */
async function tcpPeer(local: string): Promise<Exchange> {
  const socket = net.connect({ host: server.tcp.host, port: server.tcp.port, localAddress: local });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const framer = new StreamFramer();
  const waiting: Array<(r: SipResponse) => void> = [];
  socket.on('data', (chunk: Buffer) => {
    for (const event of framer.push(chunk)) {
      if (event.type === 'message' && event.message.kind === 'response' && event.message.status >= 200) waiting.shift()?.(event.message);
    }
  });
  const exchange = ((data: string) =>
    new Promise<SipResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SIP answer over TCP within 5 s')), 5000);
      waiting.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
      socket.write(data);
    })) as Exchange;
  exchange.close = () => socket.destroy();
  return exchange;
}

// ---------------------------------------------------------------------------------------------
// The administrator

const admin = (...args: string[]) => runCli(['admin', ...server.storageArgs, '--json', ...args]);
const remoteAdmin = (...args: string[]) =>
  runCli(['admin', '--url', `http://${server.http.host}:${server.http.port}`, '--token-file', path.join(server.dataDir, 'secrets', 'admin.token'), '--json', ...args]);

interface LockoutRow {
  Identity: string | null;
  Source: string | null;
  Failures: number;
  LockedUntil: string | null;
  LastFailure: string | null;
  Lockouts: number;
}

async function lockouts(run: typeof admin, ...args: string[]): Promise<LockoutRow[]> {
  const r = await run('Get-CsAuthLockout', ...args);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout || '[]') as LockoutRow[];
}

async function auditOf(identity: string): Promise<Array<{ Identity: string; Who: string; Cmdlet: string; Property: string; OldValue: string | null; NewValue: string | null }>> {
  const r = await admin('Get-CsAdminAudit', '-Identity', identity);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout || '[]');
}

// ---------------------------------------------------------------------------------------------

describe('finding 4: a flood of wrong Basic passwords', () => {
  it('leaves another source served while the flooding source gets 429s', { timeout: 120_000 }, async () => {
    const attacker = '127.0.0.11';
    // alice's client has signed in before (its verified password is remembered); bob's signs in
    // for the first time during the flood, so it needs a hash of its own
    assert.equal((await getFolder('127.0.0.12', 'alice', 'alice-pw')).status, 200);

    const flood = Array.from({ length: 150 }, (_, i) => getFolder(attacker, 'alice', `guess-${i}`));
    // the legitimate requests are sent while the flood is in flight
    await new Promise((r) => setTimeout(r, 50));
    const [alice, bob] = await Promise.all([getFolder('127.0.0.12', 'alice', 'alice-pw'), getFolder('127.0.0.13', 'bob', 'bob-pw')]);
    const answers = await Promise.all(flood);

    for (const [who, answer] of [['alice', alice], ['bob', bob]] as const) {
      assert.equal(answer.status, 200, `${who}: ${answer.status} ${answer.body}`);
      assert.match(answer.body, /ResponseClass="Success"/);
      assert.match(answer.body, /<m:ResponseCode>NoError<\/m:ResponseCode>/);
    }
    const counts = new Map<number, number>();
    for (const a of answers) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
    assert.equal(counts.get(200), undefined, 'no guess got in');
    // most were refused at once (429: the source holds its share of the hashing queue already, or
    // is locked out), the few that were checked got 401
    assert.ok((counts.get(429) ?? 0) >= 100, `429s: ${JSON.stringify([...counts])}`);
    assert.equal((counts.get(429) ?? 0) + (counts.get(401) ?? 0), answers.length, JSON.stringify([...counts]));
    const refused = answers.find((a) => a.status === 429) as HttpAnswer;
    assert.match(String(refused.headers['retry-after']), /^[1-9]\d*$/);
    assert.ok(['SIGN_IN_BUSY', 'SIGN_IN_LOCKED'].includes(problem(refused).code ?? ''), refused.body);
    // whatever the flood did to the attacker's standing, alice's own address still signs her in
    assert.equal((await getFolder('127.0.0.12', 'alice', 'alice-pw')).status, 200);
  });
});

describe('finding 5: password guessing', () => {
  it('over SIP digest locks the source out, also for the right password; the administrator sees and lifts it', { timeout: 60_000 }, async () => {
    const attacker = '127.0.0.21';
    // guesses over UDP and TCP count alike: both are the same source
    for (let i = 0; i < SOURCE_THRESHOLD; i++) {
      const res = await registerFrom(i % 2 === 0 ? 'udp' : 'tcp', attacker, 'erin', `guess-${i}`);
      assert.equal(res.status, 403, `guess ${i}`);
      assert.match(res.headers.get('warning') ?? '', /authentication failed/);
    }
    for (const transport of ['udp', 'tcp'] as const) {
      const locked = await registerFrom(transport, attacker, 'erin', 'erin-pw');
      assert.equal(locked.status, 403, `${transport}: the right password from the locked source`);
      assert.match(locked.headers.get('warning') ?? '', new RegExp(`^399 ${DOMAIN.replace('.', '\\.')} "too many failed sign-ins from 127\\.0\\.0\\.21; try again in \\d+ s"$`));
    }
    // another source, with the right password, is served
    assert.equal((await registerFrom('udp', '127.0.0.22', 'erin', 'erin-pw')).status, 200);

    // the server writes what it counts once a second
    const row = await eventually('Get-CsAuthLockout to list the source', async () => (await lockouts(admin, '-Source', attacker, '-Locked'))[0], 10_000);
    assert.equal(row.Source, attacker);
    assert.equal(row.Identity, null);
    assert.ok(row.Failures >= SOURCE_THRESHOLD, JSON.stringify(row));
    assert.ok(row.LockedUntil !== null && Date.parse(row.LockedUntil) > Date.now(), JSON.stringify(row));
    assert.ok(row.LastFailure !== null);
    assert.equal(row.Lockouts, 1);

    // cleared with --data-dir, by another process: the server picks it up within a second
    const clear = await admin('Clear-CsAuthLockout', '-Source', attacker);
    assert.equal(clear.code, 0, clear.stderr);
    assert.deepEqual(await lockouts(admin, '-Source', attacker), []);
    await eventually('the cleared source to be served again', async () => {
      const res = await registerFrom('udp', attacker, 'erin', 'erin-pw');
      return res.status === 200 ? res : undefined;
    }, 10_000);

    const audit = await auditOf(`Source:${attacker}`);
    const started = audit.find((e) => e.Who === 'system' && e.Property === 'LockedUntil' && e.OldValue === null);
    assert.ok(started, `the lockout is audited with Who = system: ${JSON.stringify(audit)}`);
    assert.equal(started.NewValue, row.LockedUntil);
    const lifted = audit.find((e) => e.Cmdlet === 'Clear-CsAuthLockout' && e.Property === 'LockedUntil');
    assert.ok(lifted, `the clear is audited: ${JSON.stringify(audit)}`);
    assert.notEqual(lifted.Who, 'system');
    assert.equal(lifted.OldValue, row.LockedUntil);
    assert.equal(lifted.NewValue, null);

    // a stale or missing credential is no guess: the first round of every REGISTER above was a 401
    const none = await lockouts(admin, '-Source', '127.0.0.22');
    assert.deepEqual(none, [], 'the source that only answered challenges rightly has no failures');
  });

  it('over HTTP Basic locks the source out with 429 SIGN_IN_LOCKED; the admin API shows and lifts it at once', { timeout: 60_000 }, async () => {
    const attacker = '127.0.0.31';
    for (let i = 0; i < SOURCE_THRESHOLD; i++) {
      const res = await httpFrom(attacker, 'GET', '/presence/blocked', { user: 'bob', password: `guess-${i}` });
      assert.equal(res.status, 401, `guess ${i}`);
    }
    for (const pathname of ['/presence/blocked', '/EWS/Exchange.asmx']) {
      const locked = await httpFrom(attacker, pathname === '/presence/blocked' ? 'GET' : 'POST', pathname, { user: 'bob', password: 'bob-pw', ...(pathname.startsWith('/EWS') ? { body: GET_FOLDER } : {}) });
      assert.equal(locked.status, 429, `${pathname}: ${locked.body}`);
      assert.match(String(locked.headers['retry-after']), /^[1-9]\d*$/);
      const p = problem(locked);
      assert.equal(p.code, 'SIGN_IN_LOCKED');
      assert.match(p.detail ?? '', /too many failed sign-ins from 127\.0\.0\.31; try again in \d+ s/);
    }
    // SIP from the same address is the same source
    assert.equal((await registerFrom('tcp', attacker, 'bob', 'bob-pw')).status, 403);
    // another source with the right password is served
    assert.equal((await httpFrom('127.0.0.32', 'GET', '/presence/blocked', { user: 'bob', password: 'bob-pw' })).status, 200);

    const [row] = await lockouts(remoteAdmin, '-Source', attacker, '-Locked');
    assert.equal(row?.Source, attacker);
    assert.ok(row.LockedUntil !== null);
    const clear = await remoteAdmin('Clear-CsAuthLockout', '-Source', attacker);
    assert.equal(clear.code, 0, clear.stderr);
    // through the admin API the server forgets at once
    assert.equal((await httpFrom(attacker, 'GET', '/presence/blocked', { user: 'bob', password: 'bob-pw' })).status, 200);
    const audit = await auditOf(`Source:${attacker}`);
    assert.ok(audit.some((e) => e.Who === 'system' && e.Property === 'LockedUntil'), JSON.stringify(audit));
    assert.ok(audit.some((e) => e.Who === 'admin-api' && e.Cmdlet === 'Clear-CsAuthLockout'), JSON.stringify(audit));

    const again = await remoteAdmin('Clear-CsAuthLockout', '-Source', attacker);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no failed sign-ins are recorded for 127\.0\.0\.31/);
  });

  it('spread over many sources locks the account for new addresses only; its usual address still signs in', { timeout: 60_000 }, async () => {
    const home = '127.0.0.40';
    // carol signs in from home (SIP), which makes home a familiar address of her account
    assert.equal((await registerFrom('udp', home, 'carol', 'carol-pw')).status, 200);
    // guesses from four addresses, each under the source threshold, until the account threshold
    const attackers = ['127.0.0.41', '127.0.0.42', '127.0.0.43', '127.0.0.44'];
    for (let i = 0; i < ACCOUNT_THRESHOLD; i++) {
      const from = attackers[i % attackers.length] as string;
      const res = i % 2 === 0 ? await httpFrom(from, 'GET', '/presence/contacts', { user: 'carol', password: `guess-${i}` }) : await registerFrom('udp', from, 'carol', `guess-${i}`);
      assert.ok(res.status === 401 || res.status === 403, `guess ${i}: ${res.status}`);
    }
    // a new address, even with the right password, is refused for carol …
    const fresh = await httpFrom('127.0.0.45', 'GET', '/presence/contacts', { user: 'carol', password: 'carol-pw' });
    assert.equal(fresh.status, 429);
    assert.equal(problem(fresh).code, 'SIGN_IN_LOCKED');
    assert.match(problem(fresh).detail ?? '', /too many failed sign-ins for carol@parley\.test from addresses it has not signed in from/);
    const freshSip = await registerFrom('tcp', '127.0.0.45', 'carol', 'carol-pw');
    assert.equal(freshSip.status, 403);
    assert.match(freshSip.headers.get('warning') ?? '', /too many failed sign-ins for carol@parley\.test/);
    // … but not for other users from there, and carol's usual address still works, over SIP and HTTP
    assert.equal((await httpFrom('127.0.0.45', 'GET', '/presence/contacts', { user: 'dave', password: 'dave-pw' })).status, 200);
    assert.equal((await registerFrom('udp', home, 'carol', 'carol-pw')).status, 200);
    assert.equal((await httpFrom(home, 'GET', '/presence/contacts', { user: 'carol', password: 'carol-pw' })).status, 200);

    const row = await eventually('Get-CsAuthLockout to list carol', async () => (await lockouts(admin, `carol@${DOMAIN}`, '-Locked'))[0], 10_000);
    assert.equal(row.Identity, `carol@${DOMAIN}`);
    assert.ok(row.LockedUntil !== null);
    // no attacking source reached its own threshold
    for (const a of attackers) assert.ok(((await lockouts(admin, '-Source', a))[0]?.LockedUntil ?? null) === null, a);

    const clear = await admin('Clear-CsAuthLockout', '-Identity', `carol@${DOMAIN}`);
    assert.equal(clear.code, 0, clear.stderr);
    await eventually('carol to be served from a new address again', async () => {
      const res = await httpFrom('127.0.0.45', 'GET', '/presence/contacts', { user: 'carol', password: 'carol-pw' });
      return res.status === 200 ? res : undefined;
    }, 10_000);
    const audit = await auditOf(`carol@${DOMAIN}`);
    assert.ok(audit.some((e) => e.Who === 'system' && e.Property === 'LockedUntil'), JSON.stringify(audit));
    assert.ok(audit.some((e) => e.Cmdlet === 'Clear-CsAuthLockout' && e.Property === 'LockedUntil'), JSON.stringify(audit));
  });
});
