// Scenario 4: idle SIP-over-WebSocket registrations (RFC 7118). Opens `count` WebSocket
// connections to Parley, each sending one REGISTER, answering the 401 digest challenge, and then
// staying open and silent. The caller measures the server's memory before and after.
// The REGISTER dialog is the transport's business of no one: bench/tls-load.ts drives the same
// over TLS (openIdle with its own dialer).
//
// Each connection registers a Contact under a user picked round-robin from `users`; Parley keeps
// at most 16 bindings per address (src/registrar/plan.ts), so callers pass >= count / 16 users.
// Source addresses rotate over 127.0.0.1-127.0.0.8 so the ephemeral ports of one source IP are
// not the limit.

import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { answerChallenge, formatAuthField, parseAuthField, parseMessage, pickChallenge, type SipMessage } from '../src/sip/index.ts';

export interface IdleLoadOptions {
  domain: string;
  users: readonly string[];
  password: string;
  count: number;
  /** index of the first connection (user and contact follow from it), so a second batch does not repeat the first; default 0 */
  first?: number;
  /** connections being set up at once */
  parallel?: number;
}

export interface WsLoadOptions extends IdleLoadOptions {
  url: string;
}

export interface WsLoadResult {
  registered: number;
  failed: number;
  firstError?: string;
  close(): Promise<void>;
}

/** One client connection as the REGISTER dialog sees it. */
export interface IdleLink {
  send(text: string): void;
  /** cuts the connection (no closing handshake) */
  terminate(): void;
  /** the dialog is over: later errors are ignored, nothing more is read */
  settle(): void;
}

/** What a dialer reports about connection `i` it opened. */
export interface IdleLinkEvents {
  open(): void;
  message(msg: SipMessage): void;
  error(err: Error): void;
}

/** Opens connection `i` (its source address from i) and reports on it through `events`. */
export type IdleDialer = (i: number, events: IdleLinkEvents) => IdleLink;

const rand = (n: number) => randomBytes(n).toString('hex');

/** 127.0.0.1-127.0.0.8 in turn: one source address's ephemeral ports are not the limit. */
export const sourceAddress = (i: number): string => `127.0.0.${1 + (i % 8)}`;

function register(transport: 'WS' | 'TLS', user: string, domain: string, host: string, callId: string, tag: string, cseq: number, auth?: string): string {
  return [
    `REGISTER sip:${domain} SIP/2.0`,
    `Via: SIP/2.0/${transport} ${host}.invalid;branch=z9hG4bK${rand(8)}`,
    'Max-Forwards: 70',
    `From: <sip:${user}@${domain}>;tag=${tag}`,
    `To: <sip:${user}@${domain}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: <sip:${user}@${host}.invalid;transport=${transport.toLowerCase()}>`,
    'Expires: 3600',
    ...(auth !== undefined ? [`Authorization: ${auth}`] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function registerOne(opts: IdleLoadOptions, transport: 'WS' | 'TLS', dial: IdleDialer, i: number): Promise<IdleLink> {
  const user = opts.users[i % opts.users.length]!;
  const host = rand(6);
  const callId = rand(10);
  const tag = rand(4);
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => fail(new Error('no 200 within 20 s')), 20_000);
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      link.terminate();
      reject(err);
    };
    const link = dial(i, {
      open: () => link.send(register(transport, user, opts.domain, host, callId, tag, 1)),
      error: fail,
      message: (msg) => {
        if (done || msg.kind !== 'response' || msg.status < 200) return;
        if (msg.status === 401) {
          const challenge = pickChallenge(msg.headers.getAll('WWW-Authenticate').map((v) => parseAuthField(v)));
          if (!challenge) return fail(new Error('401 without a usable challenge'));
          const answer = answerChallenge(challenge, { username: user, password: opts.password, method: 'REGISTER', uri: `sip:${opts.domain}` });
          link.send(register(transport, user, opts.domain, host, callId, tag, 2, formatAuthField(answer, 'credentials')));
        } else if (msg.status === 200) {
          done = true;
          clearTimeout(timer);
          link.settle();
          resolve(link);
        } else {
          fail(new Error(`REGISTER answered ${msg.status} ${msg.reason}`));
        }
      },
    });
  });
}

/** Opens `count` connections with `dial`, `parallel` at a time, each registering and then staying idle. */
export async function openIdle(opts: IdleLoadOptions, transport: 'WS' | 'TLS', dial: IdleDialer): Promise<WsLoadResult> {
  const links: IdleLink[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const first = opts.first ?? 0;
  let next = first;
  const worker = async () => {
    while (next < first + opts.count) {
      const i = next++;
      try {
        links.push(await registerOne(opts, transport, dial, i));
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.parallel ?? 100 }, worker));
  return {
    registered: links.length,
    failed,
    firstError,
    async close() {
      for (const link of links) link.terminate();
      await new Promise((r) => setTimeout(r, 200));
    },
  };
}

/**
 * Wires a dialed connection to the dialog: `openEvent` opens it, each `readEvent` goes to `read`,
 * an error fails it. Returns settle(): the reader and the error listener come off, and later
 * errors (the server going away at the end) are swallowed.
 */
export function wireLink(emitter: EventEmitter, openEvent: string, readEvent: string, read: (chunk: Buffer) => void, events: IdleLinkEvents): () => void {
  const onError = (err: Error) => events.error(err);
  const onRead = (chunk: Buffer) => {
    try {
      read(chunk);
    } catch (err) {
      events.error(err instanceof Error ? err : new Error(String(err)));
    }
  };
  emitter.once(openEvent, () => events.open());
  emitter.on(readEvent, onRead);
  emitter.on('error', onError);
  return () => {
    emitter.removeListener(readEvent, onRead);
    emitter.removeListener('error', onError);
    emitter.on('error', () => {});
  };
}

function dialWebSocket(url: string): IdleDialer {
  return (i, events) => {
    const ws = new WebSocket(url, 'sip', { localAddress: sourceAddress(i), perMessageDeflate: false });
    const settle = wireLink(ws, 'open', 'message', (data) => events.message(parseMessage(Buffer.from(data))), events);
    return { send: (text) => ws.send(text), terminate: () => ws.terminate(), settle };
  };
}

export function openIdleRegistrations(opts: WsLoadOptions): Promise<WsLoadResult> {
  return openIdle(opts, 'WS', dialWebSocket(opts.url));
}
