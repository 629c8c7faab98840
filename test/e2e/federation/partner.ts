// A raw partner: a TLS client holding some certificate, for what no well-behaved partner sends; and a
// partner server that never finishes a handshake.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { StreamFramer } from '../../../src/sip/framing.ts';
import type { SipResponse } from '../../../src/sip/message.ts';
import type { HostPort } from '../../harness/server.ts';
import type { CertFiles } from './pki.ts';

export interface HandshakeResult {
  ok: boolean;
  /** the peer certificate's SAN when ok */
  peerNames?: string;
  /** the peer certificate's serial number (hex, as Node gives it) when ok */
  serial?: string;
  error?: string;
}

/**
 * One mutual-TLS connection with `client`'s certificate (the server must chain to `ca` and name
 * `servername`), proved by an OPTIONS answered over it. Under TLS 1.3 the server judges the client's
 * certificate after the client's handshake is done, so a refusal shows as an alert on the first
 * read, not as a failed connect: only an answer (any SIP response) counts as accepted.
 */
export function tlsHandshake(to: HostPort, client: CertFiles | null, ca: string, servername: string): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: to.host,
      port: to.port,
      servername,
      ca: readFileSync(ca),
      ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
    });
    let settled = false;
    const done = (r: HandshakeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: 'no answer within 10 s' }), 10_000);
    const framer = new StreamFramer();
    socket.once('secureConnect', () => {
      // any answer will do, a refusal of the request included: it came over an accepted connection
      socket.write(rawOptions(`sip:${servername}`, 'sip:probe@probe.test'));
    });
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type === 'message' && event.message.kind === 'response') {
          const peer = socket.getPeerCertificate();
          done({ ok: true, peerNames: peer.subjectaltname, serial: peer.serialNumber });
        }
      }
    });
    socket.once('error', (err) => done({ ok: false, error: err.message }));
    socket.once('close', () => done({ ok: false, error: 'closed by the peer' }));
  });
}

function rawOptions(uri: string, from: string): string {
  const id = Math.random().toString(36).slice(2);
  return [`OPTIONS ${uri} SIP/2.0`, `Via: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bK${id}`, 'Max-Forwards: 70', `From: <${from}>;tag=${id}`, `To: <${uri}>`, `Call-ID: ${id}@probe`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n');
}

export interface PartnerConnection {
  /** sends a request and resolves with its final response */
  exchange(request: string, timeoutMs?: number): Promise<SipResponse>;
  /** requests the server sent us (after a handshake, on this connection) */
  received: string[];
  close(): void;
}

/** A TLS connection to a federation port presenting `client`'s certificate; rejects when the handshake fails. */
export function partnerConnection(to: HostPort, client: CertFiles, ca: string, servername: string): Promise<PartnerConnection> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: to.host, port: to.port, servername, ca: readFileSync(ca), cert: readFileSync(client.cert), key: readFileSync(client.key) });
    const framer = new StreamFramer();
    const waiting: Array<(r: SipResponse) => void> = [];
    const received: string[] = [];
    let error: Error | null = null;
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type !== 'message') continue;
        if (event.message.kind === 'response') {
          if (event.message.status >= 200) waiting.shift()?.(event.message);
        } else received.push(event.message.method);
      }
    });
    socket.once('error', (err) => {
      error = err;
      reject(err);
    });
    socket.once('secureConnect', () =>
      resolve({
        received,
        exchange: (request, timeoutMs = 10_000) =>
          new Promise<SipResponse>((res, rej) => {
            if (error) return rej(error);
            const timer = setTimeout(() => rej(new Error(`no final response within ${timeoutMs} ms`)), timeoutMs);
            waiting.push((r) => {
              clearTimeout(timer);
              res(r);
            });
            socket.write(request);
            socket.once('close', () => rej(new Error(`the server closed the connection${error ? `: ${error.message}` : ''}`)));
          }),
        close: () => socket.destroy(),
      }),
    );
  });
}

export interface SilentServer extends HostPort {
  stop(): Promise<void>;
}

/** A partner's server that accepts TCP connections on `host` and never says a word of TLS (the SRV target that does not answer). */
export async function startSilentServer(host: string): Promise<SilentServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    host,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
