// Cluster mode end to end (issue 16): three `parley serve` nodes on loopback sharing one PostgreSQL
// database and one Redis. Users registered on different nodes chat both ways (the MESSAGE relayed
// from the node that received it to the node that holds the recipient's connection, the answer
// back the same way); presence follows registrations made on another node; a forged relay is
// refused; a user whose only registration is on a killed node gets messages offline (202).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IncomingMessage, SipClient } from '../../src/client/index.ts';
import { signHopToken } from '../../src/cluster/index.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { answerChallenge, pickChallenge } from '../../src/sip/digest.ts';
import { formatAuthField, parseAuthField } from '../../src/sip/auth-field.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { arrivals, notifications, sdkClients } from '../harness/clients.ts';
import { startCluster, type TestCluster } from '../harness/cluster.ts';
import { runCli } from '../harness/server.ts';
import { closeTestPostgres } from '../harness/engines.ts';
import { startSipJsUser, type SipJsUser } from '../harness/sipjs.ts';
import { rawRequest, tcpExchange } from './raw-sip.ts';

const DOMAIN = 'parley.test';
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace'];
let cluster: TestCluster;
let nodeOf = 0;
/** SDK clients of node `nodeOf` at the time of each connect */
const people = sdkClients(() => cluster.nodes[nodeOf]!, DOMAIN);
const browsers: SipJsUser[] = [];

/** An SDK client over TCP of `user`, registered at node `node`. */
async function registeredAt(node: number, user: string): Promise<SipClient> {
  nodeOf = node;
  return people.connect(user, { register: true });
}

/** MESSAGEs reaching an SDK client (it answers them 200). */
function messagesTo(c: SipClient) {
  return arrivals<IncomingMessage>((push) => c.on('message', push), { what: 'MESSAGE', timeoutMs: 10_000 });
}

function sendText(c: SipClient, user: string, text: string) {
  return c.request('MESSAGE', `sip:${user}@${DOMAIN}`, { body: text, contentType: 'text/plain' });
}

before(async () => {
  cluster = await startCluster({ nodes: 3, domain: DOMAIN, users: USERS.map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })) });
});

after(async () => {
  await Promise.all(browsers.map((b) => b.stop().catch(() => undefined)));
  await people.closeAll();
  await cluster?.stop();
  await closeTestPostgres();
});

describe('a cluster of three nodes', () => {
  it('users registered on different nodes chat both ways: SDK over TCP on node 0, SIP.js over WebSocket on node 1', async () => {
    const alice = await registeredAt(0, 'alice');
    const aliceInbox = messagesTo(alice);
    const bob = await startSipJsUser({ wsUrl: cluster.nodes[1]!.wsUrl, uri: `sip:bob@${DOMAIN}`, password: 'bob-pw' });
    browsers.push(bob);

    const there = await sendText(alice, 'bob', 'hello from node 0');
    assert.equal(there.status, 200, `${there.status} ${there.headers.get('warning') ?? ''}`);
    const got = await bob.nextMessage();
    assert.equal(got.body, 'hello from node 0');
    assert.match(got.from, /alice@parley\.test/);

    const back = await bob.sendMessage(`sip:alice@${DOMAIN}`, 'and back from node 1');
    assert.equal(back.status, 200, `${back.status} ${back.warning ?? ''}`);
    const reply = await aliceInbox.next();
    assert.equal(reply.text, 'and back from node 1');
    assert.equal(reply.assertedIdentity?.uri, `sip:bob@${DOMAIN}`);
    // what reaches the client is the request as the sending node made it: the hop's Route is used up
    assert.equal(reply.request.headers.get('route'), undefined);
  });

  it('a forged relay between nodes is refused 403 with a Warning, before any authentication', async () => {
    const node = cluster.nodes[1]!;
    const target = { host: node.tcp.host, port: node.tcp.port };
    const route = (token: string | null) => `Route: <sip:${node.tcp.host}:${node.tcp.port};transport=tcp;lr;parley-hop${token === null ? '' : `=${token}`}>`;
    const base = { from: `sip:mallory@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, headers: [] as string[], body: 'hi' };

    // garbage, no value, and a well-formed token signed with another key for this very request
    for (const token of ['bm90IGEgdG9rZW4.AAAAAAAAAAAAAAAAAAAAAA', null]) {
      const answer = await tcpExchange(target, rawRequest('MESSAGE', 'sip:bob@127.0.0.1', { ...base, headers: [route(token)] }));
      assert.equal(answer.status, 403);
      assert.match(answer.headers.get('warning') ?? '', /cluster hop token of this request does not verify/);
      assert.equal(answer.headers.get('www-authenticate'), undefined);
    }
    const unsigned = rawRequest('MESSAGE', 'sip:bob@127.0.0.1', base);
    const parsed = parseMessage(Buffer.from(unsigned)) as SipRequest;
    const forged = signHopToken(randomBytes(32), { node: 'node-1', id: 'tcp-1', protocol: 'tcp', local: { address: '127.0.0.1', port: node.tcp.port }, remote: { address: '127.0.0.1', port: 40000 } }, parsed);
    const answer = await tcpExchange(target, unsigned.replace('Max-Forwards: 70\r\n', `Max-Forwards: 70\r\n${route(forged)}\r\n`));
    assert.equal(answer.status, 403);
    assert.match(answer.headers.get('warning') ?? '', /does not verify/);
  });

  it('a digest challenge of one node is answered at another (the nonce key is the cluster\'s)', async () => {
    const register = (extra: string[]) => rawRequest('REGISTER', `sip:${DOMAIN}`, { from: `sip:grace@${DOMAIN}`, to: `sip:grace@${DOMAIN}`, headers: ['Contact: <sip:grace@127.0.0.1:9;transport=tcp>', 'Expires: 60', ...extra] });
    const at = (i: number) => ({ host: cluster.nodes[i]!.tcp.host, port: cluster.nodes[i]!.tcp.port });
    const challenged = await tcpExchange(at(0), register([]));
    assert.equal(challenged.status, 401);
    const challenge = pickChallenge(challenged.headers.getAll('www-authenticate').map(parseAuthField));
    assert.ok(challenge);
    const credentials = answerChallenge(challenge, { username: 'grace', password: 'grace-pw', method: 'REGISTER', uri: `sip:${DOMAIN}` });
    const answered = await tcpExchange(at(1), register([`Authorization: ${formatAuthField(credentials, 'credentials')}`]));
    assert.equal(answered.status, 200, `${answered.status} ${answered.headers.get('warning') ?? ''}`);
  });

  it('presence follows registrations on another node: a watcher on node 0 sees dave come online and go offline on node 2', async () => {
    const carol = await registeredAt(0, 'carol');
    const inbox = notifications(carol);
    const sub = await carol.request('SUBSCRIBE', `sip:dave@${DOMAIN}`, { contact: true, headers: { Event: 'presence', Expires: '600', Accept: 'application/pidf+xml' } });
    assert.equal(sub.status, 200);
    const basic = (n: SipRequest) => /<basic>(\w+)<\/basic>/.exec(n.body.toString('utf8'))?.[1];
    assert.equal(basic(await inbox.next(5_000)), 'closed');

    const dave = await registeredAt(2, 'dave');
    assert.equal(basic(await inbox.next(5_000)), 'open');
    await dave.unregister();
    assert.equal(basic(await inbox.next(5_000)), 'closed');
  });

  it('the web client is given every live node\'s WebSocket URL, its own first, and its page may connect to them (CSP)', async () => {
    const node = cluster.nodes[0]!;
    const base = `http://${node.http.host}:${node.http.port}`;
    const response = await fetch(`${base}/api/session`, { method: 'POST', headers: { origin: base, 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice', password: 'alice-pw' }) });
    assert.equal(response.status, 201);
    const session = (await response.json()) as { webSocketUrl: string; webSocketUrls?: string[] };
    assert.equal(session.webSocketUrl, node.wsUrl);
    assert.deepEqual(session.webSocketUrls, [node.wsUrl, cluster.nodes[1]!.wsUrl, cluster.nodes[2]!.wsUrl]);
    const page = await fetch(`${base}/`, { headers: { host: `${node.http.host}:${node.http.port}` } });
    await page.arrayBuffer();
    const csp = page.headers.get('content-security-policy') ?? '';
    for (const other of cluster.nodes.slice(1)) assert.ok(csp.includes(`ws://${new URL(other.wsUrl).host}`), csp);
  });

  it('settings changed through one node\'s admin API, or by parley admin --database, reach provisioning subscribers on another node', async () => {
    const carol = await registeredAt(1, 'carol');
    const inbox = notifications(carol);
    const sub = await carol.request('SUBSCRIBE', `sip:carol@${DOMAIN}`, { contact: true, headers: { Event: 'vnd-parley-provisioning', Expires: '600' } });
    assert.equal(sub.status, 200);
    const settings = async () => JSON.parse((await inbox.next(5_000)).body.toString('utf8')) as { EnableOfflineIm: boolean };
    assert.equal((await settings()).EnableOfflineIm, true);

    const node = cluster.nodes[0]!;
    const token = (await readFile(path.join(node.dataDir, 'secrets', 'admin.token'), 'utf8')).trim();
    const set = await fetch(`http://${node.http.host}:${node.http.port}/admin/cmdlets/Set-CsImConfiguration`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ parameters: { Identity: 'Global', EnableOfflineIm: false } }),
    });
    assert.equal(set.status, 200, await set.text());
    assert.equal((await settings()).EnableOfflineIm, false);

    const back = await runCli(['admin', '--database', cluster.database, 'Set-CsImConfiguration', '-EnableOfflineIM', '$True']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal((await settings()).EnableOfflineIm, true);
  });

  it('a MESSAGE for a user whose only registration is on a killed node is answered 202 (kept offline)', async () => {
    const frank = await registeredAt(0, 'frank');
    await registeredAt(2, 'erin');
    await cluster.kill(2);
    // at once (the node's connection is refused), and again once node 0 no longer counts node 2 alive
    const first = await sendText(frank, 'erin', 'are you there?');
    assert.equal(first.status, 202, `${first.status} ${first.headers.get('warning') ?? ''}`);
    await cluster.waitForNodeGone(0, cluster.nodeId(2));
    const second = await sendText(frank, 'erin', 'still there?');
    assert.equal(second.status, 202, `${second.status} ${second.headers.get('warning') ?? ''}`);
    // the surviving nodes dropped node 2's registrations: erin is offline everywhere
    const logs = cluster.nodes[0]!.logs() + cluster.nodes[1]!.logs();
    assert.match(logs, /binding of erin@parley\.test dropped: node node-2 is down/);
  });
});
