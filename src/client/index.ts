// The client SDK for Node: a SIP user agent over TCP, TLS or WebSocket. What other code may use.
// A browser build will export SipUserAgent with connectWebSocket as its connector instead.

import type { NodeTransportOptions } from './transport-node.ts';
import { nodeConnector } from './transport-node.ts';
import type { TransportConnector } from './transport.ts';
import { SipUserAgent } from './user-agent.ts';
import type { SipClientOptions } from './types.ts';

export interface NodeSipClientOptions extends SipClientOptions, NodeTransportOptions {
  /** a custom connection factory (an in-memory transport in tests, say) instead of TCP/TLS/WS */
  connector?: TransportConnector;
}

export class SipClient extends SipUserAgent {
  constructor(options: NodeSipClientOptions) {
    super(options, options.connector ?? nodeConnector(options));
  }
}

export { SipUserAgent } from './user-agent.ts';
export type { RequestOptions, ResponseInfo, SendMessageOptions, SipClientEvents, SipClientOptions } from './types.ts';
export type { IncomingMessage } from './incoming.ts';
export type { Binding, RegisterResult } from './registration.ts';
export { CLIENT_ERROR_CODES, ClientError } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';
export { parseServerUrl } from './transport.ts';
export type { ClientTransport, ServerAddress, ServerScheme, TransportConnector } from './transport.ts';
export { connectWebSocket } from './transport-ws.ts';
export { nodeConnector } from './transport-node.ts';
export type { NodeTransportOptions } from './transport-node.ts';
