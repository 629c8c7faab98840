import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Binding, FlowRef } from '../../src/registrar/location.ts';
import { MemoryLocationService } from '../../src/registrar/location.ts';
import { DEFAULT_REGISTRAR_SETTINGS, planRegistration } from '../../src/registrar/plan.ts';
import { Headers, type SipRequest } from '../../src/sip/message.ts';

const FLOW: FlowRef = { id: 'tcp:x#1', protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } };
const NOW = 1_700_000_000_000;

function register(contacts: string[], opts: { expires?: string; callId?: string; cseq?: number } = {}): SipRequest {
  const headers = new Headers([
    { name: 'via', value: 'SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK1' },
    { name: 'from', value: '<sip:alice@parley.test>;tag=1' },
    { name: 'to', value: '<sip:alice@parley.test>' },
    { name: 'call-id', value: opts.callId ?? 'reg-1' },
    { name: 'cseq', value: `${opts.cseq ?? 1} REGISTER` },
    ...contacts.map((value) => ({ name: 'contact', value })),
  ]);
  if (opts.expires !== undefined) headers.append('expires', opts.expires);
  return { kind: 'request', method: 'REGISTER', uri: 'sip:parley.test', headers, body: Buffer.alloc(0) };
}

function plan(request: SipRequest, current: Binding[] = [], settings = DEFAULT_REGISTRAR_SETTINGS) {
  return planRegistration({ aor: 'alice@parley.test', request, flow: FLOW, current, now: NOW, settings });
}

async function applied(request: SipRequest, current: Binding[] = []): Promise<Binding[]> {
  const p = plan(request, current);
  assert.ok(p.ok, JSON.stringify(p));
  const location = new MemoryLocationService();
  if (current.length) await location.apply('alice@parley.test', current.map((binding) => ({ type: 'put' as const, binding })), NOW);
  return location.apply('alice@parley.test', p.changes, NOW);
}

describe('REGISTER planning (RFC 3261 §10.3)', () => {
  it('adds a binding with the Expires header, or the contact parameter that overrides it', async () => {
    const [a] = await applied(register(['<sip:alice@127.0.0.1:40000;transport=tcp>'], { expires: '600' }));
    assert.equal(a?.expiresAt, NOW + 600_000);
    const [b] = await applied(register(['<sip:alice@127.0.0.1:40000;transport=tcp>;expires=120'], { expires: '600' }));
    assert.equal(b?.expiresAt, NOW + 120_000);
  });

  it('answers 423 with Min-Expires for a too-brief interval', () => {
    const p = plan(register(['<sip:alice@127.0.0.1:40000>'], { expires: '10' }));
    assert.deepEqual(p.ok ? null : [p.status, p.minExpires], [423, DEFAULT_REGISTRAR_SETTINGS.minExpires]);
  });

  it('shortens an interval over the maximum', async () => {
    const [a] = await applied(register(['<sip:alice@127.0.0.1:40000>'], { expires: '999999' }));
    assert.equal(a?.expiresAt, NOW + DEFAULT_REGISTRAR_SETTINGS.maxExpires * 1000);
  });

  it('keeps several bindings and removes one with expires=0', async () => {
    const two = await applied(register(['<sip:alice@127.0.0.1:1>', '<sip:alice@127.0.0.1:2>']));
    assert.equal(two.length, 2);
    const one = await applied(register(['<sip:alice@127.0.0.1:1>;expires=0'], { cseq: 2 }), two);
    assert.deepEqual(one.map((b) => b.contact), ['sip:alice@127.0.0.1:2']);
  });

  it('removes all with "*" and Expires: 0, and refuses "*" otherwise', async () => {
    const two = await applied(register(['<sip:alice@127.0.0.1:1>', '<sip:alice@127.0.0.1:2>']));
    assert.deepEqual(await applied(register(['*'], { expires: '0', cseq: 2 }), two), []);
    const bad = plan(register(['*'], { expires: '60', cseq: 3 }));
    assert.equal(bad.ok ? 0 : bad.status, 400);
    const mixed = plan(register(['*', '<sip:alice@127.0.0.1:1>'], { expires: '0', cseq: 3 }));
    assert.equal(mixed.ok ? 0 : mixed.status, 400);
  });

  it('refuses an out-of-order REGISTER with the same Call-ID (§10.3 step 7)', async () => {
    const current = await applied(register(['<sip:alice@127.0.0.1:1>'], { cseq: 5 }));
    const p = plan(register(['<sip:alice@127.0.0.1:1>'], { cseq: 4 }), current);
    assert.equal(p.ok ? 0 : p.status, 400);
  });

  it('treats a REGISTER without Contact as a query', () => {
    assert.deepEqual(plan(register([])), { ok: true, changes: [], stateless: false });
  });

  it('matches bindings by +sip.instance when given (RFC 5626)', async () => {
    const first = await applied(register(['<sip:alice@10.0.0.1:1>;+sip.instance="<urn:uuid:1>"']));
    const again = await applied(register(['<sip:alice@10.0.0.2:7>;+sip.instance="<urn:uuid:1>"'], { callId: 'other' }), first);
    assert.equal(again.length, 1);
    assert.equal(again[0]?.contact, 'sip:alice@10.0.0.2:7');
  });

  it('lets the oldest binding give way over the per-user limit', async () => {
    const settings = { ...DEFAULT_REGISTRAR_SETTINGS, maxBindings: 2 };
    const location = new MemoryLocationService();
    for (const [i, port] of [1, 2, 3].entries()) {
      const current = await location.lookup('alice@parley.test', NOW);
      const p = planRegistration({ aor: 'alice@parley.test', request: register([`<sip:alice@127.0.0.1:${port}>`], { callId: `c${i}` }), flow: FLOW, current, now: NOW + i, settings });
      assert.ok(p.ok);
      await location.apply('alice@parley.test', p.changes, NOW + i);
    }
    const left = await location.lookup('alice@parley.test', NOW);
    assert.deepEqual(left.map((b) => b.contact).sort(), ['sip:alice@127.0.0.1:2', 'sip:alice@127.0.0.1:3']);
  });

  it('answers statelessly (no Timer J) only a REGISTER that binds', () => {
    const stateless = (p: ReturnType<typeof plan>) => (p.ok ? p.stateless : null);
    assert.equal(stateless(plan(register(['<sip:alice@127.0.0.1:1>', '<sip:alice@127.0.0.1:2>'], { expires: '600' }))), true);
    assert.equal(stateless(plan(register(['<sip:alice@127.0.0.1:1>', '<sip:alice@127.0.0.1:2>;expires=0']))), false, 'a removal');
    assert.equal(stateless(plan(register(['*'], { expires: '0' }))), false, 'remove all');
    assert.equal(stateless(plan(register([]))), false, 'a query');
  });

  it('rejects a malformed Contact with 400', () => {
    const p = plan(register(['<sip:>']));
    assert.equal(p.ok ? 0 : p.status, 400);
  });
});

// The location service itself: registrar-location.test.ts (the same tests on memory and Redis).
