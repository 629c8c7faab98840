// The watcher side of bench/presence-fanout.ts: N presence watchers, each on its own TCP
// connection, as cheap per NOTIFY as a sipp UAS so that the load generator does not set the
// figure. Setting up is a small raw dialog (SUBSCRIBE with Event: presence, answering the digest
// challenge once); from then on each NOTIFY read is framed by its Content-Length, searched for the
// round's note by a byte search in its body, and answered with a 200 whose Via, From, To, Call-ID
// and CSeq lines are copied from the NOTIFY's bytes (RFC 3261 §8.2.6.2) — no full parse.
//
// presence-fanout.ts forks this file (an IPC channel carries the commands and reports below), so
// the watchers have their own event loop, or several (--watcher-procs), on the load core; the
// parent only PUBLISHes and counts. Reading is net's `onread` into one shared buffer: no stream
// machinery and no allocation per read (a sixth less CPU per NOTIFY than 'data' events). What is
// left per NOTIFY is mostly the kernel's: one read and one write on loopback TCP. Arrival times are CLOCK_MONOTONIC milliseconds (process.hrtime), the same clock in every
// process of the machine, so the parent can subtract the time it sent the PUBLISH.

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { answerChallenge, formatAuthField, parseAuthField, parseMessage, pickChallenge } from '../src/sip/index.ts';
import { readHead } from '../src/sip/head.ts';
import { sourceAddress } from './ws-load.ts';

export interface WatcherSetOptions {
  host: string;
  port: number;
  domain: string;
  password: string;
  /** the presentity every watcher subscribes to */
  presentity: string;
  /** one watcher per user, each its own connection */
  users: readonly string[];
  /** index of the first watcher among all processes' (source address rotation); default 0 */
  first?: number;
  /** subscriptions set up at once; default 50 */
  parallel?: number;
}

/** Monotonic milliseconds, comparable between processes of one machine. */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

const CRLF = '\r\n';
const rand = (n: number) => randomBytes(n).toString('hex');
/** The header fields a response copies from its request (§8.2.6.2), long and compact forms. */
const COPIED = /^(?:via|v|from|f|to|t|call-id|i|cseq)[ \t]*:/i;
/** Largest header section accepted (Parley's NOTIFYs are well under 1 KiB of headers). */
const MAX_HEAD = 16 * 1024;

/** First letters of the COPIED names, either case: the other lines are passed over without the expression. */
const COPIED_FIRST = new Set([...'vftci'].flatMap((c) => [c.charCodeAt(0), c.toUpperCase().charCodeAt(0)]));

/** The 200 (or 405) to a request whose header section is `head`: the §8.2.6.2 lines copied. */
export function answer(head: string, status: string): string {
  let out = `SIP/2.0 ${status}${CRLF}`;
  let at = head.indexOf(CRLF) + 2;
  while (at < head.length) {
    let end = head.indexOf(CRLF, at);
    if (end < 0) end = head.length;
    if (COPIED_FIRST.has(head.charCodeAt(at))) {
      const line = head.slice(at, end);
      if (COPIED.test(line)) out += line + CRLF;
    }
    at = end + 2;
  }
  return `${out}Content-Length: 0${CRLF}${CRLF}`;
}

/** Content-Length of a header section, long or compact form (the first one: Parley writes one). */
const CONTENT_LENGTH_LINE = /\n(?:content-length|l)[ \t]*:[ \t]*([0-9]{1,9})[ \t]*\r?\n/i;

function contentLength(head: string): number | null {
  const value = CONTENT_LENGTH_LINE.exec(head)?.[1];
  return value === undefined ? null : Number(value);
}

/**
 * Splits a TCP byte stream into SIP messages by Content-Length (several per read, one over several
 * reads); `onMessage` gets the buffer, where the message starts, its header text, and where its
 * body starts and ends.
 */
export function framer(onMessage: (data: Buffer, start: number, head: string, body: number, end: number) => void): (chunk: Buffer) => void {
  let pending: Buffer | null = null;
  return (chunk) => {
    const data = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    let pos = 0;
    for (;;) {
      while (pos < data.length && (data[pos] === 13 || data[pos] === 10)) pos++; // keep-alive CRLFs
      if (pos >= data.length) return;
      const head = readHead(data, pos, MAX_HEAD);
      if (head === null) {
        if (data.length - pos > MAX_HEAD) throw new Error('header section over 16 KiB');
        break;
      }
      const length = contentLength(head.text);
      if (length === null) throw new Error('message without a readable Content-Length');
      const end = head.body + length;
      if (end > data.length) break;
      onMessage(data, pos, head.text, head.body, end);
      pos = end;
    }
    // the rest waits for the next read, copied: the read buffer is used again for the next read
    pending = Buffer.from(data.subarray(pos));
  };
}

export class WatcherSet {
  readonly #opts: WatcherSetOptions;
  readonly #sockets: net.Socket[] = [];
  /**
   * Every socket of the set reads into this one buffer (net's `onread`: no stream, no allocation
   * per read); each read is consumed before the next, and the framer copies what it keeps.
   */
  readonly #readBuffer = Buffer.allocUnsafe(64 * 1024);
  #marker: Buffer | null = null;
  /** arrival time of the current round's NOTIFY per watcher, 0 while not arrived */
  #arrivals: Float64Array;
  #arrived = 0;
  #onAll: (() => void) | undefined;

  constructor(opts: WatcherSetOptions) {
    this.#opts = opts;
    this.#arrivals = new Float64Array(opts.users.length);
  }

  get size(): number {
    return this.#opts.users.length;
  }

  /** Subscribes every watcher; resolves when each has had its first NOTIFY. */
  async open(): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < this.#opts.users.length) await this.#subscribe(next++);
    };
    await Promise.all(Array.from({ length: Math.min(this.#opts.parallel ?? 50, this.#opts.users.length) }, worker));
  }

  /** Starts a round: resolves with each watcher's arrival time of the NOTIFY whose body has `note`. */
  round(note: string, timeoutMs: number): Promise<Float64Array> {
    this.#arrivals = new Float64Array(this.size);
    this.#arrived = 0;
    this.#marker = Buffer.from(note, 'utf8');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onAll = undefined;
        reject(new Error(`only ${this.#arrived} of ${this.size} watchers had the NOTIFY with "${note}" after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#onAll = () => {
        clearTimeout(timer);
        this.#onAll = undefined;
        resolve(this.#arrivals);
      };
    });
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
  }

  /** One watcher's dialog: SUBSCRIBE, the challenge answered, then every NOTIFY answered. */
  #subscribe(index: number): Promise<void> {
    const o = this.#opts;
    const user = o.users[index]!;
    const target = `sip:${o.presentity}@${o.domain}`;
    const callId = rand(10);
    const tag = rand(4);
    return new Promise((resolve, reject) => {
      // a framing error or a socket error fails the watcher: during setup the run, later its round
      const onread = { buffer: this.#readBuffer, callback: (bytes: number, buffer: Uint8Array) => {
        try {
          read(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        } catch (err) {
          settle(err instanceof Error ? err : new Error(String(err)));
        }
        return true;
      } };
      const socket = net.connect({ host: o.host, port: o.port, localAddress: sourceAddress((o.first ?? 0) + index), onread });
      this.#sockets.push(socket);
      let subscribed = false;
      let notified = false;
      const settle = (err?: Error) => {
        clearTimeout(timer);
        if (err) {
          socket.destroy();
          reject(new Error(`watcher ${user}: ${err.message}`));
        } else resolve();
      };
      const timer = setTimeout(() => settle(new Error('not subscribed with a NOTIFY within 30 s')), 30_000);
      const subscribe = (cseq: number, auth?: { header: string; value: string }) => {
        const host = `${socket.localAddress}:${socket.localPort}`;
        socket.write([
          `SUBSCRIBE ${target} SIP/2.0`,
          `Via: SIP/2.0/TCP ${host};branch=z9hG4bK${rand(8)};rport`,
          'Max-Forwards: 70',
          `From: <sip:${user}@${o.domain}>;tag=${tag}`,
          `To: <${target}>`,
          `Call-ID: ${callId}`,
          `CSeq: ${cseq} SUBSCRIBE`,
          `Contact: <sip:${user}@${host};transport=tcp>`,
          'Event: presence',
          'Accept: application/pidf+xml',
          'Expires: 3600',
          ...(auth ? [`${auth.header}: ${auth.value}`] : []),
          'Content-Length: 0',
          '',
          '',
        ].join(CRLF));
      };
      const onResponse = (message: Buffer) => {
        const res = parseMessage(message);
        if (res.kind !== 'response' || res.status < 200) return;
        if ((res.status === 401 || res.status === 407) && !subscribed) {
          const proxy = res.status === 407;
          const challenge = pickChallenge(res.headers.getAll(proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate').map((v) => parseAuthField(v)));
          if (!challenge || res.headers.get('cseq')?.startsWith('1 ') !== true) return settle(new Error(`SUBSCRIBE answered ${res.status} with no challenge to answer (or again)`));
          const credentials = answerChallenge(challenge, { username: user, password: o.password, method: 'SUBSCRIBE', uri: target });
          subscribe(2, { header: proxy ? 'Proxy-Authorization' : 'Authorization', value: formatAuthField(credentials, 'credentials') });
        } else if (res.status === 200 || res.status === 202) {
          subscribed = true;
          if (notified) settle();
        } else settle(new Error(`SUBSCRIBE answered ${res.status} ${res.reason}`));
      };
      socket.setNoDelay(true);
      const read = framer((data, start, head, body, end) => {
        if (head.startsWith('SIP/2.0 ')) return onResponse(Buffer.from(data.subarray(start, end)));
        const notify = head.startsWith('NOTIFY ');
        if (!notify) {
          socket.write(answer(head, '405 Method Not Allowed'));
          return;
        }
        // the arrival is when the NOTIFY is read: taken before the 200 is written
        const marker = this.#marker;
        if (marker !== null && this.#arrivals[index] === 0) {
          const at = data.indexOf(marker, body);
          if (at >= 0 && at + marker.length <= end) {
            this.#arrivals[index] = monotonicMs();
            if (++this.#arrived === this.size) this.#onAll?.();
          }
        }
        socket.write(answer(head, '200 OK'));
        if (!notified) {
          notified = true;
          if (subscribed) settle();
        }
      });
      socket.once('connect', () => subscribe(1));
      socket.on('error', (err) => settle(err));
    });
  }
}

// ---- child process mode: presence-fanout.ts forks this file and talks over IPC ----

/** parent → child */
export type WatcherCommand = { type: 'open'; options: WatcherSetOptions } | { type: 'round'; note: string; timeoutMs: number } | { type: 'close' };
/** child → parent */
export type WatcherReport = { type: 'opened' } | { type: 'armed' } | { type: 'round'; arrivals: number[] } | { type: 'error'; message: string };

function child(): void {
  let set: WatcherSet | undefined;
  const send = (report: WatcherReport) => process.send?.(report);
  const fail = (err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.on('message', (command: WatcherCommand) => {
    if (command.type === 'open') {
      set = new WatcherSet(command.options);
      set.open().then(() => send({ type: 'opened' }), fail);
    } else if (command.type === 'round') {
      if (set === undefined) return fail(new Error('round before open'));
      set.round(command.note, command.timeoutMs).then((arrivals) => send({ type: 'round', arrivals: Array.from(arrivals) }), fail);
      send({ type: 'armed' }); // the parent PUBLISHes only now: no NOTIFY of the round can come before its note is known
    } else {
      set?.close();
      process.disconnect();
    }
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) child();
