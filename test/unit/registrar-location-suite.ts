// What every location service does, call for call: the single process's MemoryLocationService and
// the cluster's RedisLocationService are held to the same tests (registrar-location.test.ts runs
// this suite on both). Bindings carry a node (NODE, the node of the service under test), so a
// service that records its node returns them as they were put.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Binding, FlowRef, LocationService } from '../../src/registrar/location.ts';

export const NODE = 'node-a';
export const NOW = 1_700_000_000_000;
const FLOW: FlowRef = { id: 'tcp:x#1', protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 }, node: NODE };

export type LocationUnderTest = LocationService & {
  countByTransport(now: number): Map<string, number> | Promise<Map<string, number>>;
};

export interface LocationImplementation {
  readonly name: string;
  /** a service holding no bindings, as node NODE */
  open(): Promise<LocationUnderTest>;
}

/** A binding of `aor` with key `key` over flow `flowId`, expiring at `expiresAt`; the rest as given. */
export function binding(aor: string, key: string, flowId: string, expiresAt = NOW + 1000, more: Partial<Binding> = {}): Binding {
  return {
    aor, contact: `sip:${key}`, key, callId: 'c', cseq: 1, expiresAt, registeredAt: NOW, q: null, userAgent: null,
    ...more,
    flow: { ...FLOW, id: flowId, ...more.flow },
  };
}

const put = (b: Binding) => ({ type: 'put' as const, binding: b });
/** bindings in a comparable order, for results that come in no set order across addresses-of-record */
const sorted = (list: Binding[]) => [...list].sort((a, b) => `${a.aor}\n${a.key}`.localeCompare(`${b.aor}\n${b.key}`));
const keys = (list: Binding[]) => list.map((b) => b.key);

export function locationBehaviour(impl: LocationImplementation): void {
  describe(`location service behaviour: ${impl.name}`, () => {
    it('knows no bindings of an address-of-record never registered', async () => {
      const location = await impl.open();
      assert.deepEqual(await location.lookup('nobody@x', NOW), []);
      assert.deepEqual(await location.apply('nobody@x', [], NOW), [], 'a query changes nothing');
      assert.deepEqual(await location.removeFlow('f-none'), []);
      assert.deepEqual(await location.sweep(NOW), []);
    });

    it('keeps every field of a binding as it was put, in the order put', async () => {
      const location = await impl.open();
      const a = binding('alice@x', 'k1', 'f1', NOW + 600_000, { q: 0.5, userAgent: 'Lync 2013 ü', callId: 'call 1', cseq: 7, contact: '<sip:alice@[2001:db8::1]:5061;transport=tls>' });
      const b = binding('alice@x', 'k2', 'f2', NOW + 300_000, { flow: { ...FLOW, id: 'f2', protocol: 'wss', remote: { address: '2001:db8::9', port: 443 } } });
      assert.deepEqual(await location.apply('alice@x', [put(a), put(b)], NOW), [a, b]);
      assert.deepEqual(await location.lookup('alice@x', NOW), [a, b]);
      assert.deepEqual(await location.lookup('bob@x', NOW), [], 'another address-of-record has none');
    });

    it('replaces a binding put again under the same key, which moves to the end', async () => {
      const location = await impl.open();
      await location.apply('alice@x', [put(binding('alice@x', 'k1', 'f1')), put(binding('alice@x', 'k2', 'f1'))], NOW);
      const again = binding('alice@x', 'k1', 'f2', NOW + 2000, { cseq: 2 });
      assert.deepEqual(await location.apply('alice@x', [put(again)], NOW + 1), [binding('alice@x', 'k2', 'f1'), again]);
    });

    it('applies the changes of one REGISTER in order: remove, remove-all, put', async () => {
      const location = await impl.open();
      const [a, b, c] = ['k1', 'k2', 'k3'].map((k) => binding('alice@x', k, 'f1'));
      assert.deepEqual(keys(await location.apply('alice@x', [put(a!), put(b!), { type: 'remove', key: 'k1' }], NOW)), ['k2']);
      assert.deepEqual(keys(await location.apply('alice@x', [{ type: 'remove', key: 'unknown' }], NOW)), ['k2'], 'removing an unknown key changes nothing');
      assert.deepEqual(keys(await location.apply('alice@x', [{ type: 'remove-all' }, put(c!)], NOW)), ['k3']);
      assert.deepEqual(await location.apply('alice@x', [{ type: 'remove-all' }], NOW), []);
      assert.deepEqual(await location.lookup('alice@x', NOW), []);
    });

    it('applies a conditional change only against the bindings it was planned from (applyIf); otherwise nothing', async () => {
      const location = await impl.open();
      const a = binding('alice@x', 'k1', 'f1');
      assert.deepEqual(await location.applyIf('alice@x', [], [put(a)], NOW), [a], 'planned from no bindings, and there are none');
      const basis = await location.lookup('alice@x', NOW);
      // another REGISTER lands first: the same key, a higher CSeq
      const newer = binding('alice@x', 'k1', 'f1', NOW + 2000, { cseq: 2 });
      assert.deepEqual(await location.applyIf('alice@x', basis, [put(newer)], NOW), [newer]);
      const stale = binding('alice@x', 'k2', 'f1', NOW + 2000);
      assert.equal(await location.applyIf('alice@x', basis, [put(stale)], NOW), null, 'planned from bindings that changed');
      assert.equal(await location.applyIf('alice@x', [], [{ type: 'remove-all' }], NOW), null, 'planned from no bindings, but there is one');
      assert.deepEqual(await location.lookup('alice@x', NOW), [newer], 'a refused change changed nothing');
      // expired bindings are not part of what a plan sees
      assert.deepEqual(await location.applyIf('alice@x', [], [put(stale)], NOW + 2000), [stale]);
    });

    it('shows only unexpired bindings: one expiring at `now` is gone', async () => {
      const location = await impl.open();
      await location.apply('alice@x', [put(binding('alice@x', 'k1', 'f1', NOW + 10)), put(binding('alice@x', 'k2', 'f1', NOW + 20))], NOW);
      assert.deepEqual(keys(await location.lookup('alice@x', NOW + 9)), ['k1', 'k2']);
      assert.deepEqual(keys(await location.lookup('alice@x', NOW + 10)), ['k2']);
      assert.deepEqual(keys(await location.lookup('alice@x', NOW + 20)), []);
      assert.deepEqual(keys(await location.lookup('alice@x', NOW)), ['k1', 'k2'], 'nothing was removed by looking');
    });

    it('drops the expired bindings of an address-of-record when it applies changes to it', async () => {
      const location = await impl.open();
      await location.apply('alice@x', [put(binding('alice@x', 'old', 'f1', NOW + 10)), put(binding('alice@x', 'k2', 'f2', NOW + 1000))], NOW);
      assert.deepEqual(keys(await location.apply('alice@x', [], NOW + 10)), ['k2'], 'a query after the expiry');
      assert.deepEqual(keys(await location.lookup('alice@x', NOW)), ['k2'], 'gone for good, not only hidden');
      assert.deepEqual(await location.sweep(NOW + 10), [], 'nothing left for the sweep');
      assert.deepEqual(await location.removeFlow('f1'), [], 'nor for the flow');
    });

    it('drops the bindings of a closed flow and expired bindings', async () => {
      const location = await impl.open();
      await location.apply('alice@x', [put(binding('alice@x', 'a', 'f1', NOW + 1000)), put(binding('alice@x', 'b', 'f2', NOW + 10))], NOW);
      assert.deepEqual(keys(await location.removeFlow('f1')), ['a']);
      assert.deepEqual(keys(await location.sweep(NOW + 10)), ['b']);
      assert.deepEqual(await location.lookup('alice@x', NOW), []);
    });

    it('finds the bindings of a flow across addresses-of-record, and forgets flows no binding uses', async () => {
      const location = await impl.open();
      await location.apply('a@x', [put(binding('a@x', 'k1', 'f1'))], NOW);
      await location.apply('b@x', [put(binding('b@x', 'k2', 'f1')), put(binding('b@x', 'k3', 'f2'))], NOW);
      // Re-registering k1 over another flow moves it off f1.
      await location.apply('a@x', [put(binding('a@x', 'k1', 'f3'))], NOW);
      assert.deepEqual(keys(await location.removeFlow('f1')), ['k2']);
      assert.deepEqual((await location.lookup('a@x', NOW)).map((b) => b.flow.id), ['f3']);
      assert.deepEqual(keys(await location.lookup('b@x', NOW)), ['k3']);
      assert.deepEqual(await location.removeFlow('f1'), []);
      // a refresh over the same flow keeps it indexed
      await location.apply('a@x', [put(binding('a@x', 'k1', 'f3'))], NOW + 1);
      assert.deepEqual(keys(await location.removeFlow('f3')), ['k1']);
      assert.deepEqual(await location.lookup('a@x', NOW + 1), []);
    });

    it('drops every binding of a flow, of every address-of-record on it, expired ones too', async () => {
      const location = await impl.open();
      const shared = ['a@x', 'b@x', 'c@x'].map((aor, i) => binding(aor, `k${i}`, 'udp-shared', NOW + 10 * (i + 1)));
      for (const b of shared) await location.apply(b.aor, [put(b), put(binding(b.aor, `own-${b.aor}`, `f-${b.aor}`))], NOW);
      assert.deepEqual(sorted(await location.removeFlow('udp-shared')), sorted(shared));
      for (const b of shared) assert.deepEqual(keys(await location.lookup(b.aor, NOW)), [`own-${b.aor}`]);
    });

    it('sweeps the expired bindings of every address-of-record once, and keeps the rest', async () => {
      const location = await impl.open();
      const expired = [binding('a@x', 'k1', 'f1', NOW + 10), binding('b@x', 'k2', 'f2', NOW + 20), binding('b@x', 'k3', 'f2', NOW + 5)];
      const live = [binding('b@x', 'k4', 'f1', NOW + 21), binding('c@x', 'k5', 'f3', NOW + 1000)];
      await location.apply('a@x', [put(expired[0]!)], NOW);
      await location.apply('b@x', [put(expired[1]!), put(live[0]!), put(expired[2]!)], NOW);
      await location.apply('c@x', [put(live[1]!)], NOW);
      assert.deepEqual(sorted(await location.sweep(NOW + 20)), sorted(expired));
      assert.deepEqual(await location.sweep(NOW + 20), [], 'each is swept once');
      assert.deepEqual(await location.lookup('a@x', NOW), [], 'swept, not only hidden');
      assert.deepEqual(keys(await location.lookup('b@x', NOW)), ['k4']);
      assert.deepEqual(keys(await location.lookup('c@x', NOW)), ['k5']);
      assert.deepEqual(await location.removeFlow('f2'), [], 'the flow index forgot the swept bindings');
      assert.deepEqual(keys(await location.removeFlow('f1')), ['k4']);
    });

    it('counts unexpired bindings per transport', async () => {
      const location = await impl.open();
      const over = (protocol: FlowRef['protocol'], id: string) => ({ flow: { ...FLOW, id, protocol } });
      await location.apply('a@x', [put(binding('a@x', 'k1', 'f1', NOW + 10, over('udp', 'f1'))), put(binding('a@x', 'k2', 'f2', NOW + 1000, over('wss', 'f2')))], NOW);
      await location.apply('b@x', [put(binding('b@x', 'k3', 'f3', NOW + 1000, over('wss', 'f3')))], NOW);
      const counts = async (now: number) => [...(await location.countByTransport(now))].sort();
      assert.deepEqual(await counts(NOW), [['udp', 1], ['wss', 2]]);
      assert.deepEqual(await counts(NOW + 10), [['wss', 2]], 'an expired binding no longer counts');
      await location.removeFlow('f3');
      assert.deepEqual(await counts(NOW), [['udp', 1], ['wss', 1]]);
      await location.apply('a@x', [put(binding('a@x', 'k2', 'f4', NOW + 1000, over('tcp', 'f4')))], NOW);
      assert.deepEqual(await counts(NOW), [['tcp', 1], ['udp', 1]], 'a binding that moved to another transport counts there');
    });
  });
}
