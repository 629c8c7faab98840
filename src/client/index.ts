// The client SDK for Node: a SIP user agent over TCP, TLS or WebSocket, with RFC 6665
// subscriptions (message-summary, provisioning) and an EWS reader of missed conversations.
// What other code may use. The browser entry (browser.ts) exports the same API, api.ts, with
// BrowserSipClient over the browser's WebSocket instead of SipClient.

import type { NodeTransportOptions } from './transport-node.ts';
import { nodeConnector, nodeResolver } from './transport-node.ts';
import type { TransportConnector } from './transport.ts';
import { SipUserAgent } from './user-agent.ts';
import type { SipClientOptions } from './types.ts';

export interface NodeSipClientOptions extends SipClientOptions, NodeTransportOptions {
  /** a custom connection factory (an in-memory transport in tests, say) instead of TCP/TLS/WS */
  connector?: TransportConnector;
}

export class SipClient extends SipUserAgent {
  constructor(options: NodeSipClientOptions) {
    super(options, options.connector ?? nodeConnector(options), nodeResolver());
  }
}

export * from './api.ts';
export { nodeConnector, nodeResolver } from './transport-node.ts';
export type { NodeResolverOptions, NodeTransportOptions } from './transport-node.ts';
