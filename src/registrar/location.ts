import type { Endpoint, TransportProtocol } from '../sip/index.ts';
// The location service (RFC 3261 §10.2): which contacts an address-of-record is reachable at.
// Bindings name their flow by reference, so a store outside the process (Redis, in cluster mode)
// can hold them; the node that owns the connection resolves the reference to a live flow.


export interface FlowRef {
  id: string;
  protocol: TransportProtocol;
  local: Endpoint;
  remote: Endpoint;
  /**
   * the cluster node that holds the connection (its node id); absent on a single process. A
   * request for this binding that arrives on another node is forwarded to this one.
   */
  node?: string;
}

export interface Binding {
  /** address-of-record, `alice@parley.local` */
  aor: string;
  /** the Contact URI as the client wrote it */
  contact: string;
  /** the Contact URI in comparable form (RFC 3261 §19.1.4), or the +sip.instance when present */
  key: string;
  callId: string;
  cseq: number;
  /** epoch milliseconds */
  expiresAt: number;
  registeredAt: number;
  q: number | null;
  userAgent: string | null;
  /** the flow the REGISTER came on: requests for this binding go back over it (RFC 5626 §5.3) */
  flow: FlowRef;
}

export type BindingChange =
  | { type: 'put'; binding: Binding }
  | { type: 'remove'; key: string }
  | { type: 'remove-all' };

/**
 * Bindings keep their order within an address-of-record (a binding put again moves to the end);
 * what removeFlow and sweep return across several addresses-of-record comes in no set order.
 */
export interface LocationService {
  /**
   * the unexpired bindings of an address-of-record; at once when they are in this process's memory
   * (an await would cost every request a microtask hop), through a promise when they are elsewhere
   */
  lookup(aor: string, now: number): Binding[] | Promise<Binding[]>;
  /** applies the changes of one REGISTER at once and returns the bindings that remain */
  apply(aor: string, changes: readonly BindingChange[], now: number): Promise<Binding[]>;
  /**
   * apply, only if the address-of-record's unexpired bindings are still `basis` (what lookup gave
   * the plan: the same keys in the same order, each with the same Call-ID, CSeq and expiry); null
   * when another REGISTER changed them meanwhile, nothing applied. The registrar plans (CSeq order
   * per Call-ID, RFC 3261 §10.3 step 7; maxBindings) from a lookup: on another node, or between
   * two awaits, a second REGISTER of the same AoR may apply in between, so it plans again.
   */
  applyIf(aor: string, basis: readonly Binding[], changes: readonly BindingChange[], now: number): Binding[] | null | Promise<Binding[] | null>;
  /** drops every binding that was made over a flow (the connection closed) */
  removeFlow(flowId: string): Promise<Binding[]>;
  /** drops expired bindings; returns them */
  sweep(now: number): Promise<Binding[]>;
}

/** What a conditional apply compares (applyIf): the fields a REGISTER's plan depends on, binding by binding. */
export type BindingVersion = readonly [key: string, callId: string, cseq: number, expiresAt: number];

export function bindingVersions(bindings: readonly Binding[]): BindingVersion[] {
  return bindings.map((b) => [b.key, b.callId, b.cseq, b.expiresAt] as const);
}

function sameVersion(current: readonly Binding[], basis: readonly Binding[]): boolean {
  return current.length === basis.length && current.every((b, i) => {
    const o = basis[i] as Binding;
    return b.key === o.key && b.callId === o.callId && b.cseq === o.cseq && b.expiresAt === o.expiresAt;
  });
}

/** The single-process location service. */
export class MemoryLocationService implements LocationService {
  readonly #byAor = new Map<string, Binding[]>();
  /** flow id → the addresses-of-record with a binding over it, so a closing connection costs little */
  readonly #byFlow = new Map<string, Set<string>>();

  lookup(aor: string, now: number): Binding[] {
    return (this.#byAor.get(aor) ?? []).filter((b) => b.expiresAt > now);
  }

  /** Unexpired bindings per transport (a scan of all bindings: for /metrics, not for a request path). */
  countByTransport(now: number): Map<string, number> {
    const counts = new Map<string, number>();
    for (const list of this.#byAor.values()) for (const b of list) if (b.expiresAt > now) counts.set(b.flow.protocol, (counts.get(b.flow.protocol) ?? 0) + 1);
    return counts;
  }

  async apply(aor: string, changes: readonly BindingChange[], now: number): Promise<Binding[]> {
    return this.#apply(aor, null, changes, now) as Binding[];
  }

  applyIf(aor: string, basis: readonly Binding[], changes: readonly BindingChange[], now: number): Binding[] | null {
    return this.#apply(aor, basis, changes, now);
  }

  #apply(aor: string, basis: readonly Binding[] | null, changes: readonly BindingChange[], now: number): Binding[] | null {
    const before = this.#byAor.get(aor) ?? [];
    let list = before.filter((b) => b.expiresAt > now);
    if (basis !== null && !sameVersion(list, basis)) return null;
    for (const change of changes) {
      if (change.type === 'remove-all') list = [];
      else if (change.type === 'remove') list = list.filter((b) => b.key !== change.key);
      else list = [...list.filter((b) => b.key !== change.binding.key), change.binding];
    }
    this.#store(aor, before, list);
    return list;
  }

  async removeFlow(flowId: string): Promise<Binding[]> {
    const removed: Binding[] = [];
    for (const aor of this.#byFlow.get(flowId) ?? []) {
      const list = this.#byAor.get(aor) ?? [];
      removed.push(...list.filter((b) => b.flow.id === flowId));
      this.#store(aor, list, list.filter((b) => b.flow.id !== flowId));
    }
    return removed;
  }

  async sweep(now: number): Promise<Binding[]> {
    const removed: Binding[] = [];
    for (const [aor, list] of this.#byAor) {
      const keep = list.filter((b) => b.expiresAt > now);
      if (keep.length === list.length) continue;
      removed.push(...list.filter((b) => b.expiresAt <= now));
      this.#store(aor, list, keep);
    }
    return removed;
  }

  /**
   * Replaces an AOR's bindings and keeps the flow index in step. Only flows the AOR leaves are
   * touched: a refresh over the same flow (most REGISTERs; over UDP, one flow may carry every user
   * behind a proxy or a load generator) must not delete and re-add the AOR in a large set.
   */
  #store(aor: string, before: readonly Binding[], after: Binding[]): void {
    for (const b of before) {
      if (after.some((a) => a.flow.id === b.flow.id)) continue;
      const aors = this.#byFlow.get(b.flow.id);
      aors?.delete(aor);
      if (aors?.size === 0) this.#byFlow.delete(b.flow.id);
    }
    for (const b of after) {
      let aors = this.#byFlow.get(b.flow.id);
      if (!aors) this.#byFlow.set(b.flow.id, (aors = new Set()));
      aors.add(aor);
    }
    if (after.length === 0) this.#byAor.delete(aor);
    else this.#byAor.set(aor, after);
  }
}
