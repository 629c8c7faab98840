// Scenario tls-idle: idle SIP-over-TLS registrations (RFC 3261 §18.3, §26.2). Opens `count` TLS
// connections to Parley's sips port, each sending one REGISTER, answering the 401 digest
// challenge, and then staying open and silent, as a desktop or phone client does between its
// refreshes. The REGISTER dialog is bench/ws-load.ts's; this file only dials: TLS with
// Content-Length framing. Every connection makes a full handshake (no session resumption), as
// separate clients would. The client is node 24's, which offers X25519MLKEM768, and Parley's
// OpenSSL 3.5 picks it: each connection then holds about 7 KiB more than with a client that offers no
// ML-KEM group (OpenSSL before 3.5; bench/tls-idle-micro.ts measures both).

import tls from 'node:tls';
import { StreamFramer } from '../src/sip/framing.ts';
import { DEFAULT_SIP_LIMITS } from '../src/sip/limits.ts';
import { type IdleLoadOptions, openIdle, sourceAddress, wireLink, type WsLoadResult } from './ws-load.ts';

export interface TlsLoadOptions extends IdleLoadOptions {
  host: string;
  port: number;
  /** the CA (PEM) that signed the server's certificate */
  ca: string | Buffer;
}

export function openIdleTlsRegistrations(opts: TlsLoadOptions): Promise<WsLoadResult> {
  return openIdle(opts, 'TLS', (i, events) => {
    // an IP address is no server name (RFC 6066 §3): SNI only for a host name
    const named = /^[\d.]+$|:/.test(opts.host) ? {} : { servername: opts.host };
    // node passes localAddress on to net.connect (its types leave it out of tls.ConnectionOptions)
    const options: tls.ConnectionOptions & { localAddress: string } = { host: opts.host, port: opts.port, ca: opts.ca, localAddress: sourceAddress(i), ...named };
    const socket = tls.connect(options);
    const framer = new StreamFramer(DEFAULT_SIP_LIMITS);
    const settle = wireLink(socket, 'secureConnect', 'data', (chunk) => {
      for (const event of framer.push(chunk)) {
        if (event.type === 'message') events.message(event.message);
        else if (event.type === 'error') events.error(new Error(`unreadable SIP from the server: ${event.error.message}`));
      }
    }, events);
    return { send: (text) => socket.write(text), terminate: () => socket.destroy(), settle };
  });
}
