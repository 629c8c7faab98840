import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { SipLimits } from '../limits.ts';
import { isWildcardAddress, localAddressFor, plainAddress } from './address.ts';
import type { Endpoint, Flow } from './flow.ts';
import { advertisedFor, formatEndpoint } from './flow.ts';
import { deliverUnit, type TransportSink } from './sink.ts';

const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;
const MAX_CACHED_FLOWS = 10_000;

export interface UdpListener {
  readonly local: Endpoint;
  /** the flow to a peer on this socket (UDP has no connection: any peer can be reached) */
  flowTo(remote: Endpoint): Flow;
  /** whether the socket is still bound (readiness) */
  readonly bound: boolean;
  close(): Promise<void>;
}

/** SIP over UDP (RFC 3261 §18): one datagram is one message; stray CRLF keep-alives are ignored. */
export function listenUdp(opts: { address: string; port: number; limits: SipLimits; sink: TransportSink; advertise?: string | undefined }): Promise<UdpListener> {
  const family = opts.address.includes(':') ? 'udp6' : 'udp4';
  const socket = dgram.createSocket({ type: family, reuseAddr: false, lookup: literalAddress });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(opts.port, opts.address, () => {
      socket.off('error', reject);
      const addr = socket.address();
      const local: Endpoint = { address: addr.address, port: addr.port };
      const localText = formatEndpoint(local);
      const advertised = advertisedFor(opts.advertise, addr.port);
      // Bound to every interface, the socket cannot tell which address a datagram came to (Node
      // has no IP_PKTINFO): each peer's flow names the interface address that faces it.
      const wildcard = isWildcardAddress(addr.address);
      const dualStack = family === 'udp6';
      // Bursts arrive while the event loop is busy (GC, a slow handler): a small receive buffer
      // drops them and each drop costs the sender a 500 ms retransmission. The kernel caps this
      // at net.core.rmem_max.
      try {
        socket.setRecvBufferSize(UDP_RECEIVE_BUFFER);
      } catch {
        // keep the system default
      }
      // A failing send (e.g. ICMP unreachable reported later) must not crash the process.
      socket.on('error', () => {});
      // A UDP flow is only a peer's address, so one object per peer serves every datagram (and the
      // transactions that keep it); the cache is simply emptied when it grows large.
      const flows = new Map<string, Flow>();
      // the peer of the last datagram: a burst from one peer (a proxy, a gateway) finds its flow
      // without a key built and looked up per datagram
      let lastAddress = '';
      let lastPort = -1;
      let lastFlow: Flow | undefined;
      const flowTo = (remote: Endpoint): Flow => {
        if (remote.port === lastPort && remote.address === lastAddress && lastFlow !== undefined) return lastFlow;
        lastFlow = cachedFlow(remote);
        lastAddress = remote.address;
        lastPort = remote.port;
        return lastFlow;
      };
      const cachedFlow = (remote: Endpoint): Flow => {
        const address = plainAddress(remote.address);
        const key = `${address}|${remote.port}`;
        let flow = flows.get(key);
        if (flow !== undefined) return flow;
        if (flows.size >= MAX_CACHED_FLOWS) flows.clear();
        const peer: Endpoint = { address, port: remote.port };
        // an IPv6 socket reaches an IPv4 peer at its IPv4-mapped address
        const sendTo = dualStack && isIP(address) === 4 ? `::ffff:${address}` : address;
        const facing = wildcard ? localAddressFor(address) : undefined;
        flow = {
          id: `udp:${localText}>${formatEndpoint(peer)}`,
          protocol: 'udp',
          local: facing === undefined ? local : { address: facing, port: local.port },
          remote: peer,
          ...(advertised === undefined ? {} : { advertised }),
          reliable: false,
          closed: false,
          send(bytes: Buffer): boolean {
            socket.send(bytes, peer.port, sendTo);
            return true;
          },
        };
        flows.set(key, flow);
        return flow;
      };
      socket.on('message', (data, rinfo) => {
        if (isKeepAlive(data)) return;
        deliverUnit(data, flowTo(rinfo), opts.limits, opts.sink);
      });
      let bound = true;
      socket.once('close', () => (bound = false));
      resolve({
        local,
        flowTo,
        get bound() {
          return bound;
        },
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
}

let lastLookup = '';
let lastFamily = 0;

/**
 * The socket's name lookup. Parley sends over UDP only to addresses datagrams came from, never to
 * a name, so the lookup is the identity and answers at once: the default (dns.lookup) would put
 * every send off to the next tick. A name here is a bug, and fails loudly.
 */
function literalAddress(address: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  // most sends go where the last one went (answers to a busy peer): its family is known
  const family = address === lastLookup ? lastFamily : isIP(address);
  lastLookup = address;
  lastFamily = family;
  if (family === 0) throw new TypeError(`UDP send to "${address}": only IP addresses are sent to, names are not resolved`);
  callback(null, address, family);
}

function isKeepAlive(data: Buffer): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== 0x0d && data[i] !== 0x0a) return false;
  return true;
}
