// Parallel forking of a request to the bindings of one address-of-record (RFC 3261 §16.5–16.7),
// for requests without dialogs (MESSAGE). The first 2xx wins; otherwise the best final response,
// or "unreachable" when no binding could take the request at all.

import type { Binding } from '../registrar/location.ts';
import type { SipContext } from './context.ts';
import { namesUs } from './partner.ts';
import { remoteNode, routeOverHop } from './hop.ts';
import { type Flow, newBranch, sentBy, viaTransport } from '../sip/index.ts';
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
 * non-INVITE request cannot be cancelled, RFC 3261 §9.1).
 */
export function forkRequest(ctx: SipContext, request: SipRequest, bindings: readonly Binding[], timeoutMs?: number): Promise<ForkOutcome> {
  return new Promise((resolve) => {
    const reasons: string[] = [];
    const finals: SipResponse[] = [];
    const unanswered = new Set<Binding>(bindings);
    let pending = bindings.length;
    let done = false;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            for (const binding of unanswered) reasons.push(`${binding.contact}: no answer within ${Math.round(timeoutMs / 1000)} s`);
            pending = 0;
            settle();
          }, timeoutMs);

    const settle = (): void => {
      if (done || pending > 0) return;
      done = true;
      clearTimeout(timer);
      const refusal = bestRefusal(finals);
      resolve(refusal ? { kind: 'answered', response: refusal } : { kind: 'unreachable', reasons });
    };
    const branchFailed = (binding: Binding, why: string): void => {
      if (done) return;
      unanswered.delete(binding);
      reasons.push(`${binding.contact}: ${why}`);
      pending--;
      settle();
    };

    const sendBranch = (binding: Binding, flow: Flow, branch: SipRequest): void => {
      if (done) return;
      ctx.transactions.sendRequest(branch, flow, {
        onFinal(response) {
          if (done) return;
          unanswered.delete(binding);
          if (response.status < 300) {
            done = true;
            clearTimeout(timer);
            response.headers.shift('via');
            resolve({ kind: 'answered', response });
            return;
          }
          if (UNAVAILABLE.has(response.status)) reasons.push(`${binding.contact}: ${response.status} ${response.reason}${warningOf(response)}`);
          else {
            response.headers.shift('via');
            finals.push(response);
          }
          pending--;
          settle();
        },
        onTimeout: () => branchFailed(binding, 'no answer (timeout)'),
        onTransportError: () => branchFailed(binding, 'transport error'),
      });
    };

    for (const binding of bindings) {
      // a flow another node of the cluster holds: relayed there (hop.ts)
      const node = remoteNode(ctx, binding);
      if (node !== undefined && ctx.cluster !== undefined) {
        const cluster = ctx.cluster;
        void cluster.connect(node).then((hop) => {
          if (!hop.ok) return branchFailed(binding, hop.why);
          const branch = forwardedRequest(ctx, request, binding, hop.flow);
          routeOverHop(cluster, branch, binding.flow, hop.address);
          sendBranch(binding, hop.flow, branch);
        });
        continue;
      }
      const flow = ctx.resolveFlow(binding.flow);
      if (!flow || flow.closed) {
        branchFailed(binding, 'connection closed');
        continue;
      }
      sendBranch(binding, flow, forwardedRequest(ctx, request, binding, flow));
    }
    settle();
  });
}

/** The copy of `request` sent to one binding (§16.6). */
function forwardedRequest(ctx: SipContext, request: SipRequest, binding: Binding, flow: Flow): SipRequest {
  const headers = request.headers.clone();
  const maxForwards = Number.parseInt(headers.get('max-forwards') ?? '70', 10);
  headers.set('max-forwards', String((Number.isFinite(maxForwards) ? maxForwards : 70) - 1));
  // Credentials for our realm were consumed here (§22.3); a pre-loaded Route to us is used up (§16.4).
  headers.delete('proxy-authorization');
  while (namesUs(ctx, headers.get('route'))) headers.shift('route');
  const branch = newBranch();
  headers.prepend('via', `SIP/2.0/${viaTransport(flow.protocol)} ${sentBy(flow)};branch=${branch}`);
  return { kind: 'request', method: request.method, uri: binding.contact, headers, body: request.body };
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
