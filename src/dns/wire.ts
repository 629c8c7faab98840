// The DNS servers asked and the wire to them: one UDP datagram per question, or one TCP exchange
// when the UDP answer was truncated (RFC 7766 §5). The socket edge of src/dns: the resolver takes
// the wire as a function, so its cache and its reading of answers are tested without sockets.
import dgram from 'node:dgram';
import net from 'node:net';
import { DNS_CODES, DnsError } from './errors.ts';

export interface DnsServer {
  readonly host: string;
  readonly port: number;
}

/** Sends one query to one server and resolves with the raw answer; the resolver tries the next server when it rejects. */
export type DnsWire = (query: Buffer, server: DnsServer, timeoutMs: number, overTcp: boolean) => Promise<Buffer>;

/** `192.0.2.53`, `192.0.2.53:5353`, `[2001:db8::53]:5353`, `2001:db8::53` → host and port (53). */
export function parseServer(text: string): DnsServer {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1] as string, port: bracketed[2] === undefined ? 53 : Number(bracketed[2]) };
  const v4 = /^([^:]+):(\d+)$/.exec(text);
  if (v4) return { host: v4[1] as string, port: Number(v4[2]) };
  return { host: text, port: 53 };
}

export function formatServer(s: DnsServer): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** The real wire: one UDP datagram, or one TCP exchange with the two-byte length prefix (RFC 1035 §4.2.2). */
export const udpThenTcp: DnsWire = (query, server, timeoutMs, overTcp) =>
  new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, data?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      if (err !== null) reject(err);
      else resolve(data as Buffer);
    };
    const timer = setTimeout(() => finish(new DnsError(DNS_CODES.TIMEOUT, `no answer within ${timeoutMs} ms`)), timeoutMs);
    let cleanup: () => void;
    if (!overTcp) {
      const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
      cleanup = () => socket.close();
      socket.on('error', (err) => finish(err));
      socket.on('message', (msg, from) => {
        // only the server asked may answer (a spoofed datagram from elsewhere is ignored)
        if (from.port === server.port && (from.address === server.host || !net.isIP(server.host)) && msg.length >= 2 && msg.readUInt16BE(0) === query.readUInt16BE(0)) finish(null, msg);
      });
      socket.send(query, server.port, server.host, (err) => {
        if (err) finish(err);
      });
    } else {
      const socket = net.connect({ host: server.host, port: server.port });
      cleanup = () => socket.destroy();
      let buffered = Buffer.alloc(0);
      socket.on('error', (err) => finish(err));
      socket.on('connect', () => {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(query.length);
        socket.write(Buffer.concat([length, query]));
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) finish(null, buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
      });
      socket.on('end', () => finish(new Error('the server closed the TCP connection before answering')));
    }
  });
