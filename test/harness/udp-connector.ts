// SIP over UDP for the SDK in tests: the SDK itself speaks TCP, TLS and WebSocket, and takes any
// other transport as a TransportConnector. This one sends each message as one datagram to the
// server and hands each datagram back as one message (the WebSocket framing). No retransmissions
// (RFC 3261 §17.1.2.2 Timer E): the tests run on loopback or a veth pair, where nothing is lost.
//
//   new SipClient({ server: 'tcp://[::1]:5060', connector: udpConnector(), ... })
//   (the server URL's host and port are used; its scheme is ignored)
import dgram from 'node:dgram';
import net from 'node:net';
import type { ClientTransport, TransportConnector } from '../../src/client/index.ts';

export function udpConnector(options: { localHost?: string } = {}): TransportConnector {
  return (server) =>
    new Promise((resolve, reject) => {
      const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
      socket.once('error', reject);
      socket.connect(server.port, server.host, () => {
        socket.off('error', reject);
        const local = socket.address();
        let closed = false;
        const transport: ClientTransport = {
          framing: 'message',
          viaTransport: 'UDP',
          contactTransport: 'udp',
          localHost: options.localHost ?? local.address,
          localPort: local.port,
          onData: null,
          onClose: null,
          send(data) {
            if (!closed) socket.send(typeof data === 'string' ? Buffer.from(data) : data);
          },
          close() {
            if (closed) return;
            closed = true;
            socket.close();
            transport.onClose?.(undefined);
          },
        };
        socket.on('message', (data) => transport.onData?.(data));
        // an ICMP "port unreachable" shows as an error on a connected socket: the server is gone
        socket.on('error', () => transport.close());
        resolve(transport);
      });
    });
}
