// A local user's subscription to a partner's user (issue 15): Parley record-routes the SUBSCRIBE
// twice (RFC 5658), sends it over the federation link and relays the answer; the partner's
// NOTIFYs come back along the Route to the client's connection named by the flow token, the
// client's refreshes go on to the partner. Fake gate, flows and transactions
// (presence-partner-harness.ts); no sockets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { ClusterHopPool, verifyHopToken } from '../../src/cluster/index.ts';
import { DialogProxy } from '../../src/router/dialog-proxy.ts';
import { hopToken, relayHop, HOP_PARAM } from '../../src/router/hop.ts';
import type { Incoming } from '../../src/router/context.ts';
import { branch, DOMAIN, FED, PARTNER, setup, tick } from './presence-partner-harness.ts';
import type { FakeFlow } from './presence-partner-harness.ts';

const PARTNER_PROXY_RR = '<sip:sip.org-b.test:5061;transport=tls;lr>';
const DAVE_NOTIFIER = 'sip:sip.org-b.test:5061;transport=tls';
const ALICE_CONTACT = 'sip:alice@127.0.0.1:40000;transport=tcp';

function aliceSubscribe(o: { to?: string; event?: string; toTag?: string; cseq?: number; routes?: string[]; uri?: string; from?: string; expires?: number } = {}): string[] {
  const to = o.to ?? `dave@${PARTNER}`;
  return [
    `SUBSCRIBE ${o.uri ?? `sip:${to}`} SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:40000;branch=${branch()}`,
    'Max-Forwards: 70',
    ...(o.routes ?? []).map((r) => `Route: ${r}`),
    `From: <sip:${o.from ?? 'alice'}@${DOMAIN}>;tag=alice1`,
    `To: <sip:${to}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    'Call-ID: alice-watches-dave',
    `CSeq: ${o.cseq ?? 1} SUBSCRIBE`,
    `Contact: <${ALICE_CONTACT}>`,
    `Event: ${o.event ?? 'presence'}`,
    'Proxy-Authorization: Digest username="alice", realm="org-a.test", nonce="n", uri="sip:x", response="r"',
    ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
  ];
}

function partnerNotify(routes: string[], o: { to?: string; from?: string } = {}): string[] {
  return [
    `NOTIFY ${ALICE_CONTACT} SIP/2.0`,
    `Via: SIP/2.0/TLS sip.org-b.test:5061;branch=${branch()}`,
    'Max-Forwards: 69',
    ...routes.map((r) => `Route: ${r}`),
    `From: <sip:${o.from ?? `dave@${PARTNER}`}>;tag=dave9`,
    `To: <sip:${o.to ?? `alice@${DOMAIN}`}>;tag=alice1`,
    'Call-ID: alice-watches-dave',
    'CSeq: 1 NOTIFY',
    `Contact: <${DAVE_NOTIFIER}>`,
    'Event: presence',
    'Subscription-State: active;expires=600',
    `P-Asserted-Identity: <sip:dave@${PARTNER}>`,
    'Content-Type: application/pidf+xml',
  ];
}

/** alice subscribes to dave: the forwarded SUBSCRIBE, the partner's 200 (with its own Record-Route on top) relayed back. */
async function subscribed(t: ReturnType<typeof setup>) {
  const client = t.makeFlow('tcp#alice');
  await t.receive(client, aliceSubscribe());
  const forwarded = t.sent[0]!;
  const recordRoutes = forwarded.request.headers.getAll('record-route');
  t.answer(0, 200, [['record-route', PARTNER_PROXY_RR], ...recordRoutes.map((r) => ['record-route', r] as [string, string]), ['contact', `<${DAVE_NOTIFIER}>`], ['expires', '600']]);
  await tick();
  const [partnerSide, clientSide] = recordRoutes as [string, string];
  return { client, forwarded, partnerSide, clientSide };
}

describe('dialog proxy: a local user subscribes to a partner\'s user', () => {
  it('record-routes twice, sends over the link as the partner side, and relays the answer with its Record-Route', async () => {
    const t = setup();
    const { client, forwarded, partnerSide, clientSide } = await subscribed(t);
    assert.deepEqual(t.authenticated, [`alice@${DOMAIN}`], 'digest as for every local request');
    assert.deepEqual(t.gate.connects, [PARTNER]);
    assert.equal(forwarded.flow.id, 'tls#out1');
    const req = forwarded.request;
    assert.equal(req.uri, `sip:dave@${PARTNER}`);
    assert.match(req.headers.get('via') ?? '', new RegExp(`^SIP/2\\.0/TLS ${FED};branch=z9hG4bK`));
    assert.equal(req.headers.getAll('via').length, 2);
    assert.equal(req.headers.get('max-forwards'), '69');
    assert.equal(req.headers.get('proxy-authorization'), undefined, 'our realm\'s credentials stay here');
    assert.equal(partnerSide, `<sip:${FED};transport=tls;lr>`, 'RFC 5658: the top value names the partner side');
    assert.match(clientSide, /^<sip:[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+@127\.0\.0\.1:5060;transport=tcp;lr>$/, 'the client side carries the flow token');

    const answer = client.responses.at(-1)!;
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.headers.getAll('record-route'), [PARTNER_PROXY_RR, partnerSide, clientSide], 'the client\'s route set is their reverse');
    assert.deepEqual(answer.headers.getAll('via'), [aliceVia(answer)], 'our Via removed');
    assert.equal(answer.headers.get('contact'), `<${DAVE_NOTIFIER}>`);
    assert.ok(client.keptOpenUntil !== undefined && client.keptOpenUntil >= t.clock.now() + 600_000, 'the client\'s connection stays open for the NOTIFYs');
    assert.equal(t.events.subscriptions.size, 0, 'Parley keeps no subscription: it is only on the route');
  });

  it('refuses what the gate refuses (403 + Warning), local-only packages, and answers an unreachable partner with the gate\'s status', async () => {
    const t = setup();
    const client = t.makeFlow('tcp#alice');
    t.gate.notEnabled.add(`alice@${DOMAIN}`);
    await t.receive(client, aliceSubscribe());
    assert.equal(client.responses.at(-1)!.status, 403);
    assert.match(client.responses.at(-1)!.headers.get('warning') ?? '', /alice@org-a\.test may not talk to partners/);
    t.gate.notEnabled.clear();
    await t.receive(client, aliceSubscribe({ event: 'message-summary' }));
    assert.equal(client.responses.at(-1)!.status, 403);
    assert.match(client.responses.at(-1)!.headers.get('warning') ?? '', /message-summary subscriptions stay within org-a\.test/);
    assert.deepEqual(t.gate.connects, []);
    t.gate.connectFails = { ok: false, status: 480, warning: 'sip.org-b.test:5061 did not answer in time' };
    await t.receive(client, aliceSubscribe());
    assert.equal(client.responses.at(-1)!.status, 480);
    assert.match(client.responses.at(-1)!.headers.get('warning') ?? '', /did not answer in time/);
  });

  it('answers 403 as before when federation is not configured', async () => {
    const t = setup({ federation: false });
    const client = t.makeFlow('tcp#alice');
    await t.receive(client, aliceSubscribe());
    assert.equal(client.responses.at(-1)!.status, 403);
    assert.match(client.responses.at(-1)!.headers.get('warning') ?? '', /org-b\.test is not served here: no federation with that domain/);
  });

  it('forwards the partner\'s NOTIFY to the client\'s connection named by the token, and relays its answer', async () => {
    const t = setup();
    const { client, partnerSide, clientSide } = await subscribed(t);
    const link = t.makeFlow('tls#in1', { names: ['sip.org-b.test'] });
    await t.receive(link, partnerNotify([partnerSide, clientSide]), '<presence/>');
    const forwarded = t.sent[1]!;
    assert.equal(forwarded.flow, client);
    assert.equal(forwarded.request.method, 'NOTIFY');
    assert.equal(forwarded.request.uri, ALICE_CONTACT);
    assert.deepEqual(forwarded.request.headers.getAll('route'), [], 'the Routes naming us are used up');
    assert.match(forwarded.request.headers.get('via') ?? '', /^SIP\/2\.0\/TCP 127\.0\.0\.1:5060;branch=z9hG4bK/);
    assert.equal(forwarded.request.headers.getAll('via').length, 2);
    assert.equal(forwarded.request.headers.get('max-forwards'), '68');
    assert.equal(forwarded.request.headers.get('p-asserted-identity'), undefined, 'a partner\'s assertion is not passed on');
    assert.equal(forwarded.request.body.toString(), '<presence/>');
    assert.deepEqual(t.gate.inboundAsked.at(-1), { flow: 'tls#in1', domain: PARTNER, recipient: `alice@${DOMAIN}` });
    assert.deepEqual(t.authenticated, [`alice@${DOMAIN}`], 'no digest for the partner');
    t.answer(1, 200);
    const relayed = link.responses.at(-1)!;
    assert.equal(relayed.status, 200);
    assert.equal(relayed.headers.getAll('via').length, 1, 'the partner gets its answer with its own Via only');
  });

  it('refuses NOTIFYs that do not follow a route of ours: forged token, another recipient, a local sender, a gone connection, the gate', async () => {
    const t = setup();
    const { partnerSide, clientSide } = await subscribed(t);
    const link = t.makeFlow('tls#in1', { names: ['sip.org-b.test'] });
    const forged = clientSide.replace(/@/, 'x@');
    await t.receive(link, partnerNotify([partnerSide, forged]));
    assert.equal(link.responses.at(-1)!.status, 481);
    await t.receive(link, partnerNotify([partnerSide]));
    assert.equal(link.responses.at(-1)!.status, 481, 'no token: no subscription of ours');
    await t.receive(link, partnerNotify([partnerSide, clientSide], { to: `bob@${DOMAIN}` }));
    assert.equal(link.responses.at(-1)!.status, 403, 'alice\'s token leads to alice only');
    assert.match(link.responses.at(-1)!.headers.get('warning') ?? '', /leads to alice@org-a\.test/);
    const other = t.makeFlow('tls#in2', { names: ['sip.org-c.test'] });
    await t.receive(other, partnerNotify([partnerSide, clientSide]));
    assert.equal(other.responses.at(-1)!.status, 403, 'a certificate not verified for org-b');
    const local = t.makeFlow('tcp#bob');
    await t.receive(local, partnerNotify([partnerSide, clientSide]));
    assert.equal(local.responses.at(-1)!.status, 403, 'a client may not play the partner');
    t.closeFlow('tcp#alice');
    await t.receive(link, partnerNotify([partnerSide, clientSide]));
    assert.equal(link.responses.at(-1)!.status, 430, 'RFC 5626: Flow Failed');
    assert.equal(link.responses.at(-1)!.reason, 'Flow Failed');
    assert.equal(t.sent.length, 1, 'nothing but the SUBSCRIBE was sent anywhere');
  });

  it('never relays from one partner connection to another', async () => {
    const t = setup();
    const proxy = t.events.proxy;
    const otherPartner = t.makeFlow('tls#in9', { names: ['sip.org-c.test'] });
    // a token can only be made for a client's connection; one naming a partner's (made by hand here) is refused all the same
    const token = proxy.flowToken({ id: otherPartner.id, protocol: 'tls', local: otherPartner.local, remote: otherPartner.remote }, `alice@${DOMAIN}`);
    const link = t.makeFlow('tls#in1', { names: ['sip.org-b.test'] });
    await t.receive(link, partnerNotify([`<sip:${FED};transport=tls;lr>`, `<sip:${token}@127.0.0.1:5060;transport=tcp;lr>`]));
    assert.equal(link.responses.at(-1)!.status, 403);
    assert.match(link.responses.at(-1)!.headers.get('warning') ?? '', /relays nothing from one partner organisation to another/);
    assert.equal(t.sent.length, 0);
  });

  it('forwards the client\'s refresh and unsubscribe to the partner, as the authenticated user the token is for, where the gate allows', async () => {
    const t = setup();
    const { client, partnerSide, clientSide } = await subscribed(t);
    const routes = [clientSide, partnerSide, PARTNER_PROXY_RR];
    await t.receive(client, aliceSubscribe({ uri: DAVE_NOTIFIER, toTag: 'dave9', cseq: 2, routes, expires: 0 }));
    const refresh = t.sent[1]!;
    assert.equal(refresh.flow.partner?.openedFor, PARTNER);
    assert.equal(refresh.request.uri, DAVE_NOTIFIER);
    assert.deepEqual(refresh.request.headers.getAll('route'), [PARTNER_PROXY_RR], 'ours used up, the partner\'s kept');
    assert.match(refresh.request.headers.get('via') ?? '', new RegExp(`^SIP/2\\.0/TLS ${FED};`));
    assert.equal(refresh.request.headers.get('proxy-authorization'), undefined);
    t.answer(1, 200, [['expires', '0']]);
    await tick();
    assert.equal(client.responses.at(-1)!.status, 200);
    assert.equal(t.events.subscriptions.size, 0, 'not taken for a local subscription');

    // bob may not use alice's dialog
    const bobs = t.makeFlow('tcp#bob');
    await t.receive(bobs, aliceSubscribe({ from: 'bob', uri: DAVE_NOTIFIER, toTag: 'dave9', cseq: 3, routes }));
    assert.equal(bobs.responses.at(-1)!.status, 403);
    assert.match(bobs.responses.at(-1)!.headers.get('warning') ?? '', /bob@org-a\.test may not send within the dialog of alice@org-a\.test/);
    // the gate is asked again: a domain blocked since
    t.gate.refusedDomains.add(PARTNER);
    await t.receive(client, aliceSubscribe({ uri: DAVE_NOTIFIER, toTag: 'dave9', cseq: 4, routes }));
    assert.equal(client.responses.at(-1)!.status, 403);
    assert.match(client.responses.at(-1)!.headers.get('warning') ?? '', /org-b\.test is blocked/);
    assert.equal(t.sent.length, 2);
    // a partner may not send a SUBSCRIBE along the client's route
    const link = t.makeFlow('tls#in1', { names: ['sip.org-b.test'] });
    t.gate.refusedDomains.clear();
    await t.receive(link, aliceSubscribe({ uri: DAVE_NOTIFIER, toTag: 'dave9', cseq: 5, routes: [partnerSide, clientSide] }));
    assert.equal(link.responses.at(-1)!.status, 403);
  });

  it('knows its partner-side Route by the federation name even when isOwnHost does not list it', async () => {
    const t = setup();
    (t.ctx as { isOwnHost: (host: string) => boolean }).isOwnHost = (host) => host === '127.0.0.1';
    const { client, partnerSide, clientSide } = await subscribed(t);
    const link = t.makeFlow('tls#in1', { names: ['sip.org-b.test'] });
    await t.receive(link, partnerNotify([partnerSide, clientSide]));
    assert.equal(t.sent[1]!.flow, client);
    assert.deepEqual(t.sent[1]!.request.headers.getAll('route'), []);
    await t.receive(client, aliceSubscribe({ uri: DAVE_NOTIFIER, toTag: 'dave9', cseq: 2, routes: [clientSide, partnerSide, PARTNER_PROXY_RR] }));
    assert.deepEqual(t.sent[2]!.request.headers.getAll('route'), [PARTNER_PROXY_RR], 'no Route back to ourselves: no loop');
  });

  it('answers 483 when Max-Forwards is used up', async () => {
    const t = setup();
    const client = t.makeFlow('tcp#alice');
    await t.receive(client, aliceSubscribe().map((l) => (l === 'Max-Forwards: 70' ? 'Max-Forwards: 0' : l)));
    assert.equal(client.responses.at(-1)!.status, 483);
    assert.deepEqual(t.gate.connects, []);
  });
});

/**
 * Two nodes of a cluster (node-a, node-b) as two harnesses sharing the dialog key and the hop key,
 * each with a real hop pool whose connection to the other node is a fake flow; node-b's own
 * addresses differ from node-a's (10.0.0.2), as on two machines.
 */
function twoNodes() {
  const dialogKey = randomBytes(32);
  const hopKey = randomBytes(32);
  const a = setup({ dialogKey });
  const b = setup({ dialogKey, address: '10.0.0.2' });
  const addresses: Record<string, string> = { 'node-a': '127.0.0.1:5060', 'node-b': '10.0.0.2:5060' };
  const down = new Set<string>();
  const pool = (t: ReturnType<typeof setup>, node: string) =>
    new ClusterHopPool({
      node,
      key: hopKey,
      registry: { find: async (n: string) => (down.has(n) ? undefined : addresses[n]) },
      dial: async (host: string) => ({ ok: true as const, flow: t.makeFlow(`tcp#hop-to-${host}`), close() {} }),
    });
  (a.ctx as { cluster?: unknown }).cluster = pool(a, 'node-a');
  (b.ctx as { cluster?: unknown }).cluster = pool(b, 'node-b');
  return { a, b, hopKey, down };
}

describe('dialog proxy in a cluster: the partner\'s request reaches a node that does not hold the client\'s connection', () => {
  it('puts the node in the token; another node relays the NOTIFY over the hop to it, which sends it to the client; the answer goes back the same way', async () => {
    const { a, b, hopKey } = twoNodes();
    // alice subscribes through node-b, which holds her connection
    const { client, partnerSide, clientSide } = await subscribed(b);
    const token = /<sip:([^@]+)@/.exec(clientSide)?.[1] ?? '';
    assert.equal(b.events.proxy.readToken(token)?.flow.node, 'node-b', 'the token names the node');
    assert.equal(a.events.proxy.readToken(token)?.flow.id, client.id, 'every node reads it: the cluster\'s key');
    assert.match(clientSide, /@10\.0\.0\.2:5060;/, 'the client-side Route names node-b, a host node-a does not call its own');

    // the partner's NOTIFY reaches node-a
    const link = a.makeFlow('tls#in1', { names: ['sip.org-b.test'] });
    await a.receive(link, partnerNotify([partnerSide, clientSide]), '<presence/>');
    const hopped = a.sent[0]!;
    assert.equal(hopped.flow.id, 'tcp#hop-to-10.0.0.2', 'sent over the hop to node-b');
    const routes = hopped.request.headers.getAll('route');
    assert.equal(routes.length, 1, 'the partner-side and client-side Routes are used up; the hop Route only');
    assert.match(routes[0]!, new RegExp(`^<sip:10\\.0\\.0\\.2:5060;transport=tcp;lr;${HOP_PARAM}=`));
    assert.equal(verifyHopToken(hopKey, hopToken(hopped.request)!, hopped.request)?.id, client.id, 'signed with the cluster key for alice\'s flow');
    assert.equal(hopped.request.headers.get('p-asserted-identity'), undefined, 'a partner\'s assertion is not passed on');
    assert.equal(hopped.request.headers.getAll('via').length, 2);

    // node-b takes the hop (as its dispatcher does) and sends the NOTIFY on to alice
    const fromA = b.makeFlow('tcp#from-node-a');
    const incoming: Incoming = { request: hopped.request, flow: fromA, tx: null, log: a.ctx.logger };
    const relayed = relayHop(b.ctx, incoming, hopToken(hopped.request)!);
    const toAlice = b.sent.at(-1)!;
    assert.equal(toAlice.flow, client);
    assert.equal(toAlice.request.method, 'NOTIFY');
    assert.deepEqual(toAlice.request.headers.getAll('route'), [], 'alice gets no Route');
    assert.equal(toAlice.request.headers.getAll('via').length, 3);
    assert.equal(toAlice.request.body.toString(), '<presence/>');
    b.answer(b.sent.length - 1, 200);
    await relayed;
    const backAtA = fromA.responses.at(-1)!;
    assert.equal(backAtA.status, 200);
    a.deliver(0, backAtA);
    assert.equal(link.responses.at(-1)!.status, 200);
    assert.equal(link.responses.at(-1)!.headers.getAll('via').length, 1, 'the partner gets its answer with its own Via only');
  });

  it('answers the partner 430 when the node holding the connection is down, and node-b 480 when the connection closed there', async () => {
    const { a, b, down } = twoNodes();
    const { partnerSide, clientSide } = await subscribed(b);
    const link = a.makeFlow('tls#in1', { names: ['sip.org-b.test'] });
    down.add('node-b');
    await a.receive(link, partnerNotify([partnerSide, clientSide]));
    assert.equal(link.responses.at(-1)!.status, 430);
    assert.match(link.responses.at(-1)!.headers.get('warning') ?? '', /alice@org-a\.test is unreachable: node node-b, which holds this registration, is down/);
    down.clear();
    b.closeFlow('tcp#alice');
    await a.receive(link, partnerNotify([partnerSide, clientSide]));
    const hopped = a.sent.at(-1)!;
    const fromA = b.makeFlow('tcp#from-node-a');
    await relayHop(b.ctx, { request: hopped.request, flow: fromA, tx: null, log: a.ctx.logger }, hopToken(hopped.request)!);
    assert.equal(fromA.responses.at(-1)!.status, 480);
    a.deliver(a.sent.length - 1, fromA.responses.at(-1)!);
    assert.equal(link.responses.at(-1)!.status, 480);
    assert.match(link.responses.at(-1)!.headers.get('warning') ?? '', /closed on node node-b/);
  });

  it('on one process, a token Route naming another host is not ours (481), and a token names no node', async () => {
    const t = setup();
    const { partnerSide, clientSide } = await subscribed(t);
    const token = /<sip:([^@]+)@/.exec(clientSide)?.[1] ?? '';
    assert.equal(t.events.proxy.readToken(token)?.flow.node, undefined);
    const link = t.makeFlow('tls#in1', { names: ['sip.org-b.test'] });
    await t.receive(link, partnerNotify([partnerSide, clientSide.replace('127.0.0.1', '10.9.9.9')]));
    assert.equal(link.responses.at(-1)!.status, 481);
  });
});

describe('dialog proxy: flow tokens', () => {
  const flow = { id: 'ws#17', protocol: 'ws' as const, local: { address: '::1', port: 8080 }, remote: { address: '::1', port: 51000 } };

  it('reads back what it made, and nothing altered or made with another key', () => {
    const proxy = new DialogProxy();
    const token = proxy.flowToken(flow, `alice@${DOMAIN}`);
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'fits a URI user part');
    assert.deepEqual(proxy.readToken(token), { flow, user: `alice@${DOMAIN}` });
    const [data, tag] = token.split('.') as [string, string];
    const other = Buffer.from(data, 'base64url').toString().replace('alice', 'bobby');
    assert.equal(proxy.readToken(`${Buffer.from(other).toString('base64url')}.${tag}`), undefined);
    assert.equal(proxy.readToken(`${data}.${tag.slice(1)}`), undefined);
    assert.equal(proxy.readToken(data), undefined);
    assert.equal(proxy.readToken(`${token}x`), undefined, 'one spelling only: no stray characters');
    assert.equal(new DialogProxy().readToken(token), undefined, 'another process\'s key');
  });

  it('names the node holding the flow when made in a cluster; proxies with the same key read each other\'s', () => {
    const key = randomBytes(32);
    const token = new DialogProxy(key).flowToken({ ...flow, node: 'node-2' }, `alice@${DOMAIN}`);
    assert.deepEqual(new DialogProxy(key).readToken(token), { flow: { ...flow, node: 'node-2' }, user: `alice@${DOMAIN}` });
  });
});

function aliceVia(response: { headers: { get(n: string): string | undefined } }): string {
  const via = response.headers.get('via') ?? '';
  assert.match(via, /^SIP\/2\.0\/TCP 127\.0\.0\.1:40000;/);
  return via;
}

export type { FakeFlow };
