// SIP over WebSocket (RFC 7118) through the WHATWG WebSocket API: Node 24's global WebSocket
// (undici) here, the browser's own later; the same file serves both, with no Node import.

import { ClientError } from './errors.ts';
import { randomToken } from './ids.ts';
import type { ClientTransport, ServerAddress } from './transport.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface WebSocketOptions {
  connectTimeoutMs?: number;
}

export function connectWebSocket(server: ServerAddress, options: WebSocketOptions = {}): Promise<ClientTransport> {
  return new Promise((resolve, reject) => {
    let socket: WebSocket;
    try {
      // RFC 7118 §4: the client offers the `sip` subprotocol and the server must select it.
      socket = new WebSocket(server.url, 'sip');
    } catch (cause) {
      reject(new ClientError('CONNECT_FAILED', `cannot open WebSocket ${server.url}`, { cause }));
      return;
    }
    socket.binaryType = 'arraybuffer';
    let opened = false;
    let closed = false;
    const timer = setTimeout(() => fail(new ClientError('CONNECT_FAILED', `WebSocket ${server.url} did not open in time`)), options.connectTimeoutMs ?? 10_000);

    const transport: ClientTransport = {
      framing: 'message',
      viaTransport: server.scheme === 'wss' ? 'WSS' : 'WS',
      // RFC 7118 §5.2: the client cannot know its address; it uses a random `.invalid` domain
      // in Via sent-by and Contact, and the transport parameter `ws` for WS and WSS alike.
      contactTransport: 'ws',
      localHost: `${randomToken(12).toLowerCase()}.invalid`,
      localPort: null,
      onData: null,
      onClose: null,
      send(data) {
        if (socket.readyState !== WebSocket.OPEN) throw new ClientError('DISCONNECTED', 'the WebSocket is not open');
        // A text frame when the message is valid UTF-8 (RFC 7118 §5.1), else a binary frame.
        if (typeof data === 'string') socket.send(data);
        else socket.send(isUtf8(data) ? data.toString('utf8') : data);
      },
      close() {
        if (closed) return;
        closed = true;
        socket.close(1000);
        transport.onClose?.(undefined);
      },
    };

    function fail(error: Error): void {
      clearTimeout(timer);
      if (opened) return;
      closed = true;
      try {
        socket.close();
      } catch {
        // already closing
      }
      reject(error);
    }

    socket.addEventListener('open', () => {
      if (socket.protocol !== 'sip') {
        fail(new ClientError('CONNECT_FAILED', `server did not select the "sip" WebSocket subprotocol (RFC 7118 §4)`));
        return;
      }
      clearTimeout(timer);
      opened = true;
      resolve(transport);
    });
    socket.addEventListener('message', (event: MessageEvent) => {
      const data: unknown = event.data;
      const buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data as ArrayBuffer);
      transport.onData?.(buffer);
    });
    socket.addEventListener('error', () => {
      if (!opened) fail(new ClientError('CONNECT_FAILED', `cannot connect to ${server.url}`));
    });
    socket.addEventListener('close', (event: CloseEvent) => {
      if (!opened) {
        fail(new ClientError('CONNECT_FAILED', `WebSocket ${server.url} closed during the handshake (code ${event.code})`));
        return;
      }
      if (closed) return;
      closed = true;
      const clean = event.code === 1000;
      transport.onClose?.(new ClientError('DISCONNECTED', `WebSocket closed by the server (code ${event.code}${clean ? '' : `, ${event.reason || 'abnormal'}`})`));
    });
  });
}

function isUtf8(data: Buffer): boolean {
  try {
    utf8.decode(data);
    return true;
  } catch {
    return false;
  }
}
