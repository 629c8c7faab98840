// Raw SIP over a socket, for end-to-end tests that must send what no well-behaved client sends.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { StreamFramer } from '../../src/sip/framing.ts';
import type { SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';

export interface Endpoint {
  host: string;
  port: number;
}

/** Sends raw bytes over a new TCP connection and resolves with the first response read back. */
export function tcpExchange(server: Endpoint, data: string | Buffer, timeoutMs = 5000): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, server.host);
    const framer = new StreamFramer();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no response within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type === 'message' && event.message.kind === 'response' && event.message.status >= 200) {
          clearTimeout(timer);
          socket.destroy();
          resolve(event.message);
        }
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Sends one datagram and resolves with the first final response, or null when none comes. */
export function udpExchange(server: Endpoint, data: string | Buffer, timeoutMs = 2000): Promise<SipResponse | null> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, timeoutMs);
    socket.on('message', (msg) => {
      const parsed = parseMessage(msg);
      if (parsed.kind === 'response' && parsed.status >= 200) {
        clearTimeout(timer);
        socket.close();
        resolve(parsed);
      }
    });
    socket.bind(0, '127.0.0.1', () => socket.send(data, server.port, server.host));
  });
}

/** A request in the shape of RFC 3261 §8.1.1, with headers to add or override. */
export function rawRequest(method: string, uri: string, opts: { from: string; to: string; transport?: string; headers?: string[]; body?: string }): string {
  const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
  const body = opts.body ?? '';
  const lines = [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/${opts.transport ?? 'TCP'} 127.0.0.1:9;branch=${branch}`,
    'Max-Forwards: 70',
    `From: <${opts.from}>;tag=${randomBytes(4).toString('hex')}`,
    `To: <${opts.to}>`,
    `Call-ID: ${randomBytes(8).toString('hex')}@test`,
    `CSeq: 1 ${method}`,
    ...(opts.headers ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ];
  return lines.join('\r\n');
}
