// The token of a request relayed between cluster nodes (src/cluster/hop-token.ts): it names the
// flow, and only the cluster key makes one that verifies, for that one request.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { HOP_TOKEN_LIFETIME_S, hopMac, signHopToken, verifyHopToken } from '../../src/cluster/index.ts';
import type { FlowRef } from '../../src/registrar/location.ts';
import { Headers } from '../../src/sip/index.ts';
import { hopToken } from '../../src/router/hop.ts';

const KEY = randomBytes(32);
const FLOW: FlowRef = { node: 'node-b', id: 'ws:10.0.0.2:8080>198.51.100.7:51234#17', protocol: 'ws', local: { address: '10.0.0.2', port: 8080 }, remote: { address: '198.51.100.7', port: 51234 } };

function request(callId = 'a84b4c76e66710@pc33', cseq = '314159 MESSAGE', method = 'MESSAGE', over: { body?: string; from?: string; uri?: string } = {}) {
  const headers = new Headers();
  headers.append('call-id', callId);
  headers.append('cseq', cseq);
  headers.append('from', over.from ?? '<sip:alice@parley.test>;tag=1928301774');
  headers.append('to', '<sip:bob@parley.test>');
  return { method, uri: over.uri ?? 'sip:bob@198.51.100.7:51234;transport=ws', headers, body: Buffer.from(over.body ?? 'see you at noon') };
}

describe('cluster hop tokens', () => {
  it('verify with the key they were signed with, naming the same flow', () => {
    const token = signHopToken(KEY, FLOW, request());
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'only characters a SIP URI parameter takes as they are');
    assert.deepEqual(verifyHopToken(KEY, token, request()), FLOW);
  });

  it('do not verify with another key (another cluster, or a forger)', () => {
    assert.equal(verifyHopToken(randomBytes(32), signHopToken(KEY, FLOW, request()), request()), null);
  });

  it('are good for their own request only: another Call-ID, CSeq or method does not verify', () => {
    const token = signHopToken(KEY, FLOW, request());
    assert.equal(verifyHopToken(KEY, token, request('another@pc33')), null);
    assert.equal(verifyHopToken(KEY, token, request(undefined, '314160 MESSAGE')), null);
    assert.equal(verifyHopToken(KEY, token, request(undefined, undefined, 'NOTIFY')), null);
  });

  it('cannot carry another body, sender or target to the client: what the MAC covers includes them', () => {
    const token = signHopToken(KEY, FLOW, request());
    assert.equal(verifyHopToken(KEY, token, request(undefined, undefined, undefined, { body: 'send me your password' })), null);
    assert.equal(verifyHopToken(KEY, token, request(undefined, undefined, undefined, { from: '<sip:ceo@parley.test>;tag=1928301774' })), null);
    assert.equal(verifyHopToken(KEY, token, request(undefined, undefined, undefined, { uri: 'sip:carol@203.0.113.5' })), null);
  });

  it(`are good for ${HOP_TOKEN_LIFETIME_S} s after they were made: a captured request replayed later does not verify`, () => {
    const made = Date.UTC(2026, 11, 7, 9, 0, 0);
    const token = signHopToken(KEY, FLOW, request(), made);
    assert.deepEqual(verifyHopToken(KEY, token, request(), made + HOP_TOKEN_LIFETIME_S * 1000), FLOW);
    assert.equal(verifyHopToken(KEY, token, request(), made + (HOP_TOKEN_LIFETIME_S + 1) * 1000), null, 'too old');
    assert.equal(verifyHopToken(KEY, token, request(), made - (HOP_TOKEN_LIFETIME_S + 1) * 1000), null, 'from a clock too far ahead');
  });

  it('refuse a changed flow reference, a changed or cut MAC, and garbage', () => {
    const token = signHopToken(KEY, FLOW, request());
    const [payload, mac] = token.split('.') as [string, string];
    const other = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), i: 'ws:other#1' })).toString('base64url');
    assert.equal(verifyHopToken(KEY, `${other}.${mac}`, request()), null);
    const flipped = Buffer.from(mac, 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    assert.equal(verifyHopToken(KEY, `${payload}.${flipped.toString('base64url')}`, request()), null);
    assert.equal(verifyHopToken(KEY, `${payload}.${mac.slice(0, 10)}`, request()), null);
    for (const junk of ['', '.', 'abc', `${payload}.`, `.${mac}`, 'not base64!.%%%']) assert.equal(verifyHopToken(KEY, junk, request()), null, junk);
  });

  it('refuse a correctly signed payload that is not a flow reference (nodes of different versions)', () => {
    const r = request();
    const signed = (o: object) => {
      const payload = Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${payload}.${hopMac(KEY, payload, r).toString('base64url')}`;
    };
    const good = { n: 'node-b', i: 'tcp#1', p: 'tcp', l: ['10.0.0.2', 5060], r: ['10.0.0.9', 40000], t: Math.floor(Date.now() / 1000) };
    assert.deepEqual(verifyHopToken(KEY, signed(good), r), { node: 'node-b', id: 'tcp#1', protocol: 'tcp', local: { address: '10.0.0.2', port: 5060 }, remote: { address: '10.0.0.9', port: 40000 } });
    for (const bad of [{ ...good, i: 7 }, { ...good, p: 'sctp' }, { ...good, l: ['10.0.0.2'] }, { ...good, r: null }, { ...good, n: undefined }, { ...good, t: undefined }, { ...good, t: '1' }]) {
      assert.equal(verifyHopToken(KEY, signed(bad), r), null, JSON.stringify(bad));
    }
  });

  it('cannot be made for a flow without its node', () => {
    const { node: _node, ...local } = FLOW;
    assert.throws(() => signHopToken(KEY, local, request()), /names the node/);
  });

  it('are read from the parley-hop parameter of the top Route only', () => {
    const routed = (route: string | undefined) => {
      const headers = new Headers();
      if (route !== undefined) headers.append('route', route);
      return { kind: 'request' as const, method: 'MESSAGE', uri: 'sip:bob@client.invalid', headers, body: Buffer.alloc(0) };
    };
    assert.equal(hopToken(routed(undefined)), undefined);
    assert.equal(hopToken(routed('<sip:parley.test;lr>')), undefined);
    assert.equal(hopToken(routed('<sip:10.0.0.2:5060;transport=tcp;lr;parley-hop=abc.def>')), 'abc.def');
    assert.equal(hopToken(routed('<sip:10.0.0.2:5060;transport=tcp;lr;parley-hop>')), '');
    // the name in a header parameter, or in another part of the URI, is no hop
    assert.equal(hopToken(routed('<sip:parley-hop@10.0.0.2;lr>')), undefined);
  });
});
