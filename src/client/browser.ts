// The client SDK for browsers: the same API as src/client/index.ts (api.ts), with
// BrowserSipClient, a SIP user agent over the browser's WebSocket (RFC 7118), in place of the
// Node SipClient. Bundle it with browserBuildOptions() of browser-build.ts, which shims the Node
// modules src/sip uses; no Node module reaches the bundle (test/unit/client-browser-bundle.test.ts).

import { ClientError } from './errors.ts';
import { connectWebSocket } from './transport-ws.ts';
import type { WebSocketOptions } from './transport-ws.ts';
import { parseServerList } from './transport.ts';
import type { TransportConnector } from './transport.ts';
import type { SipClientOptions } from './types.ts';
import { SipUserAgent } from './user-agent.ts';

export interface BrowserSipClientOptions extends SipClientOptions, WebSocketOptions {
  /**
   * `ws://host:port/sip` or `wss://…` (a page served over https needs wss), or several: tried in
   * order, round robin after a loss (no DNS lookup here: a browser cannot resolve a name itself)
   */
  server: string | readonly string[];
  /** a custom connection factory instead of the browser's WebSocket (tests) */
  connector?: TransportConnector;
}

export class BrowserSipClient extends SipUserAgent {
  constructor(options: BrowserSipClientOptions) {
    for (const { scheme } of parseServerList(options.server)) {
      if (options.connector === undefined && scheme !== 'ws' && scheme !== 'wss') {
        throw new ClientError('INVALID_ARGUMENT', `a browser reaches SIP over WebSocket only: server must be ws:// or wss://, not ${scheme}://`);
      }
    }
    super(options, options.connector ?? ((server) => connectWebSocket(server, options)));
  }
}

export * from './api.ts';
