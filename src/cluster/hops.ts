// The router's way to the other nodes (ClusterHops, src/router/context.ts): one TCP connection per
// node, opened when first needed and reused while it stays open, to the address the node announces
// (registry.ts); and the hop tokens, signed with the cluster key (hop-token.ts). A node the
// registry does not list as alive is unreachable at once: no connection is tried.

import type { ClusterHops } from '../router/context.ts';
import type { FlowRef } from '../registrar/location.ts';
import type { Flow, SipRequest } from '../sip/index.ts';
import { signHopToken, verifyHopToken } from './hop-token.ts';
import type { NodeRegistry } from './registry.ts';

/** Opens a connection to host:port (the server's connectStream with tls null): the flow, or why not. */
export type HopDial = (host: string, port: number) => Promise<{ readonly ok: true; readonly flow: Flow; close(): void } | { readonly ok: false; readonly message: string }>;

type Connected = { readonly ok: true; readonly flow: Flow; readonly address: string; close?(): void } | { readonly ok: false; readonly why: string };

export class ClusterHopPool implements ClusterHops {
  readonly node: string;
  readonly #key: Uint8Array;
  readonly #registry: Pick<NodeRegistry, 'find'>;
  readonly #dial: HopDial;
  /** node → its connection, or the one being opened (callers at the same moment share it) */
  readonly #pool = new Map<string, Promise<Connected>>();

  constructor(options: { node: string; key: Uint8Array; registry: Pick<NodeRegistry, 'find'>; dial: HopDial }) {
    this.node = options.node;
    this.#key = options.key;
    this.#registry = options.registry;
    this.#dial = options.dial;
  }

  async connect(node: string): Promise<Connected> {
    const address = await this.#registry.find(node);
    if (address === undefined) return { ok: false, why: `node ${node}, which holds this registration, is down (it has not announced itself lately)` };
    const pooled = this.#pool.get(node);
    if (pooled !== undefined) {
      const known = await pooled;
      // the same address, and open: reused (a node that came back elsewhere gets a new connection)
      if (known.ok && known.address === address && !known.flow.closed) return known;
      if (this.#pool.get(node) === pooled) this.#pool.delete(node);
    }
    let opening = this.#pool.get(node);
    if (opening === undefined) {
      opening = this.#open(node, address);
      this.#pool.set(node, opening);
    }
    const result = await opening;
    // a failure is not kept: the next request tries again
    if (!result.ok && this.#pool.get(node) === opening) this.#pool.delete(node);
    return result;
  }

  sign(flow: FlowRef, request: SipRequest): string {
    return signHopToken(this.#key, flow, request);
  }

  verify(token: string, request: SipRequest): FlowRef | null {
    return verifyHopToken(this.#key, token, request);
  }

  async #open(node: string, address: string): Promise<Connected> {
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
    if (match === null) return { ok: false, why: `node ${node} announces a SIP address that is not host:port: ${address}` };
    const dialed = await this.#dial(match[1] as string, Number(match[2]));
    if (!dialed.ok) return { ok: false, why: `node ${node} at ${address} cannot be reached: ${dialed.message}` };
    return { ok: true, flow: dialed.flow, address, close: () => dialed.close() };
  }

  /** Closes every pooled connection (the node stops). */
  async close(): Promise<void> {
    const open = [...this.#pool.values()];
    this.#pool.clear();
    for (const p of open) {
      const c = await p;
      if (c.ok) c.close?.();
    }
  }
}
