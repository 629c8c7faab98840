// Parallel forking of a request to the bindings of one address-of-record (RFC 3261 §16.5–16.7),
// for requests without dialogs (MESSAGE). The first 2xx wins; otherwise the best final response,
// or "unreachable" when no binding could take the request at all.

import type { Binding } from '../registrar/location.ts';
import type { SipContext } from './context.ts';
import { namesUs } from './partner.ts';
import { remoteNode, routeOverHop } from './hop.ts';
import { type ClientTransactionUser, DeadlineWheel, type Expiring, type Flow, Headers, type HeaderField, newBranch, sentBy, type Slot, viaTransport } from '../sip/index.ts';
import type { SipRequest, SipResponse } from '../sip/index.ts';

export type ForkOutcome =
  | { kind: 'answered'; response: SipResponse }
  /** every binding failed to take the request: why, one line per binding */
  | { kind: 'unreachable'; reasons: string[] };

/** Responses that mean "this device could not take it now", not "the user refuses it". */
const UNAVAILABLE = new Set([408, 480, 503]);

/**
 * Forwards `request` to every binding at once. `timeoutMs` bounds the wait for the devices: when it
 * ends, the branches still unanswered count as "no answer" (a late answer is then ignored; a
 * non-INVITE request cannot be cancelled, RFC 3261 §9.1). The bound is kept on a wheel shared by
 * every fork of that duration (it may end up to 1/64 of it late): a setTimeout and its clearTimeout
 * per relayed message cost more than the rest of the fork.
 */
export function forkRequest(ctx: SipContext, request: SipRequest, bindings: readonly Binding[], timeoutMs?: number): Promise<ForkOutcome> {
  return new Promise((resolve) => new Fork(ctx, request, bindings, timeoutMs, resolve).start());
}

/** Device timeouts, one wheel per duration (deviceTimeout is one setting: in practice one wheel). */
const deviceWheels = new Map<number, DeadlineWheel<Fork>>();

function deviceWheel(ms: number): DeadlineWheel<Fork> {
  let wheel = deviceWheels.get(ms);
  if (wheel === undefined) deviceWheels.set(ms, (wheel = new DeadlineWheel(ms)));
  return wheel;
}

/** One forked request: its branches, what they answered, and the wait for them. */
class Fork implements Expiring {
  readonly #ctx: SipContext;
  readonly #request: SipRequest;
  readonly #bindings: readonly Binding[];
  readonly #timeoutMs: number | undefined;
  readonly #resolve: (outcome: ForkOutcome) => void;
  readonly #reasons: string[] = [];
  readonly #finals: SipResponse[] = [];
  readonly #branches: Branch[] = [];
  #pending: number;
  #done = false;
  #slot: Slot<Fork> | undefined;

  constructor(ctx: SipContext, request: SipRequest, bindings: readonly Binding[], timeoutMs: number | undefined, resolve: (outcome: ForkOutcome) => void) {
    this.#ctx = ctx;
    this.#request = request;
    this.#bindings = bindings;
    this.#timeoutMs = timeoutMs;
    this.#resolve = resolve;
    this.#pending = bindings.length;
  }

  start(): void {
    if (this.#timeoutMs !== undefined) this.#slot = deviceWheel(this.#timeoutMs).add(this);
    const ctx = this.#ctx;
    for (const binding of this.#bindings) {
      const branch = new Branch(this, binding);
      this.#branches.push(branch);
      // a flow another node of the cluster holds: relayed there (hop.ts)
      const node = remoteNode(ctx, binding);
      if (node !== undefined && ctx.cluster !== undefined) {
        const cluster = ctx.cluster;
        void cluster.connect(node).then((hop) => {
          if (!hop.ok) return branch.failed(hop.why);
          const forwarded = forwardedRequest(ctx, this.#request, binding, hop.flow);
          routeOverHop(cluster, forwarded, binding.flow, hop.address);
          this.#send(branch, hop.flow, forwarded);
        });
        continue;
      }
      const flow = ctx.resolveFlow(binding.flow);
      if (!flow || flow.closed) {
        branch.failed('connection closed');
        continue;
      }
      this.#send(branch, flow, forwardedRequest(ctx, this.#request, binding, flow));
    }
    this.#settle();
  }

  get done(): boolean {
    return this.#done;
  }

  /** The device timeout: the branches still unanswered count as no answer. */
  expire(): void {
    this.#slot = undefined;
    if (this.#done) return;
    const seconds = Math.round((this.#timeoutMs ?? 0) / 1000);
    for (const branch of this.#branches) if (!branch.answered) this.#reasons.push(`${branch.binding.contact}: no answer within ${seconds} s`);
    this.#pending = 0;
    this.#settle();
  }

  /** A branch's final answer. */
  final(branch: Branch, response: SipResponse): void {
    if (response.status < 300) {
      response.headers.shift('via');
      this.#finish({ kind: 'answered', response });
      return;
    }
    if (UNAVAILABLE.has(response.status)) this.#reasons.push(`${branch.binding.contact}: ${response.status} ${response.reason}${warningOf(response)}`);
    else {
      response.headers.shift('via');
      this.#finals.push(response);
    }
    this.#pending--;
    this.#settle();
  }

  /** A branch that could not take the request: why. */
  failed(branch: Branch, why: string): void {
    this.#reasons.push(`${branch.binding.contact}: ${why}`);
    this.#pending--;
    this.#settle();
  }

  #send(branch: Branch, flow: Flow, forwarded: SipRequest): void {
    if (this.#done) return;
    this.#ctx.transactions.sendRequest(forwarded, flow, branch);
  }

  #settle(): void {
    if (this.#done || this.#pending > 0) return;
    const refusal = bestRefusal(this.#finals);
    this.#finish(refusal ? { kind: 'answered', response: refusal } : { kind: 'unreachable', reasons: this.#reasons });
  }

  #finish(outcome: ForkOutcome): void {
    this.#done = true;
    if (this.#slot !== undefined) deviceWheel(this.#timeoutMs as number).cancel(this.#slot, this);
    this.#slot = undefined;
    this.#resolve(outcome);
  }
}

/** One binding's branch: the client transaction's user (one object per branch, no closures). */
class Branch implements ClientTransactionUser {
  readonly #fork: Fork;
  readonly binding: Binding;
  answered = false;

  constructor(fork: Fork, binding: Binding) {
    this.#fork = fork;
    this.binding = binding;
  }

  onFinal(response: SipResponse): void {
    if (this.#fork.done) return;
    this.answered = true;
    this.#fork.final(this, response);
  }

  onTimeout(): void {
    this.failed('no answer (timeout)');
  }

  onTransportError(): void {
    this.failed('transport error');
  }

  failed(why: string): void {
    if (this.#fork.done || this.answered) return;
    this.answered = true;
    this.#fork.failed(this, why);
  }
}

/**
 * The copy of `request` sent to one binding (§16.6): Max-Forwards one less, the credentials for our
 * realm consumed here (§22.3), a pre-loaded Route to us used up (§16.4), our Via on top. One pass
 * over the fields: the received request is not cloned and then searched once per change.
 */
function forwardedRequest(ctx: SipContext, request: SipRequest, binding: Binding, flow: Flow): SipRequest {
  const fields: HeaderField[] = [];
  const via: HeaderField = { name: 'via', value: `SIP/2.0/${viaTransport(flow.protocol)} ${sentBy(flow)};branch=${newBranch()}` };
  let viaPlaced = false;
  let maxForwardsPlaced = false;
  let routed = false;
  for (const f of request.headers) {
    const name = f.name;
    if (name === 'proxy-authorization') continue;
    if (name === 'max-forwards') {
      if (maxForwardsPlaced) continue;
      maxForwardsPlaced = true;
      fields.push({ name, value: decremented(f.value) });
      continue;
    }
    if (name === 'via' && !viaPlaced) {
      viaPlaced = true;
      fields.push(via);
    } else if (name === 'route') routed = true;
    // the received field itself: fields are never changed in place, only replaced or removed
    fields.push(f);
  }
  if (!viaPlaced) fields.push(via);
  if (!maxForwardsPlaced) fields.push({ name: 'max-forwards', value: decremented('70') });
  const headers = Headers.fromCanonical(fields);
  if (routed) while (namesUs(ctx, headers.get('route'))) headers.shift('route');
  return { kind: 'request', method: request.method, uri: binding.contact, headers, body: request.body };
}

/** A Max-Forwards value one less (70 when it is not a number). */
function decremented(value: string): string {
  const maxForwards = Number.parseInt(value, 10);
  return String((Number.isFinite(maxForwards) ? maxForwards : 70) - 1);
}

/** §16.7 step 6, without the unavailable answers: 6xx first, else the lowest class, else none. */
function bestRefusal(finals: readonly SipResponse[]): SipResponse | undefined {
  const global = finals.find((r) => r.status >= 600);
  if (global) return global;
  return [...finals].sort((a, b) => Math.floor(a.status / 100) - Math.floor(b.status / 100))[0];
}

/** `: <warning text>` of an answer that has one (a node's 480 says why), else '' */
function warningOf(response: SipResponse): string {
  const warning = response.headers.get('warning');
  return warning === undefined ? '' : ` (${warning})`;
}
