// RFC 4475, the SIP torture test messages, byte for byte (test/interop/rfc4475/, one file each) to
// a real `parley serve`, over UDP and over TCP: every valid request is answered with a final
// response, every invalid request whose Via can be read is answered 400 (505 for the unknown
// version, as §3.1.2.16 asks) with a Warning saying what is wrong, and what cannot be answered (a
// response, which no transaction of Parley's awaits; a request whose Via cannot be read) gets
// nothing, which a following OPTIONS on the same socket shows: its answer is the next thing back.
// Then the server is still running, logged no internal error, and answers.
//
// The server serves example.com, the domain the messages are addressed to, so that they reach the
// registrar and the router rather than stop at "not served here".
//
// UDP: one socket sends them all, in turn. Some messages of the RFC share a branch and sent-by
// (novelsc and unkscm; cparam01 and cparam02; escnull and regescrt), so by RFC 3261 §17.2.3 the
// second is a retransmission of the first, and its answer goes to the first one's sender: one
// socket is that sender. TCP: a fresh connection for each, to a second server (a TCP request with
// the branch of a UDP one would be a retransmission of it too).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, startServer, type RunningServer } from '../harness/server.ts';
import { rawRequest } from './raw-sip.ts';

const DOMAIN = 'example.com';
const DIR = path.join(REPO_ROOT, 'test', 'interop', 'rfc4475');
/** How long an answer may take before the test fails (a bound, not an assertion on speed). */
const ANSWER_WAIT_MS = 5000;

/** A final status; 'none' when nothing is answered (shown by the probe after it). */
type Outcome = number | 'none';

interface Case {
  name: string;
  section: string;
  udp: Outcome;
  /** when it differs from udp */
  tcp?: Outcome;
  /** what the Warning of a 400 must say */
  warning?: RegExp;
  /** TCP: what else the test writes on the connection, and the further statuses then expected */
  tcpMore?: { write: Buffer; statuses: number[] };
  /** TCP: the framing is lost after the answers (no usable Content-Length): the server closes */
  tcpLost?: true;
  why: string;
}

const CASES: Case[] = [
  // §3.1.1 valid messages: each answered with a final response (never 400, never silence)
  { name: 'wsinv', section: '3.1.1.1', udp: 405, why: 'INVITE: Parley serves no calls; read through folding, odd spacing and escapes' },
  { name: 'intmeth', section: '3.1.1.2', udp: 405, why: 'an extension method; \\NUL, \\BEL, \\DEL quoted-pairs in To are valid' },
  { name: 'esc01', section: '3.1.1.3', udp: 405, why: 'INVITE with % escapes' },
  { name: 'escnull', section: '3.1.1.4', udp: 401, why: 'REGISTER with %00 in URIs: challenged like any REGISTER without credentials' },
  { name: 'esc02', section: '3.1.1.5', udp: 405, why: 'RE%47IST%45R is an extension method, not REGISTER' },
  { name: 'lwsdisp', section: '3.1.1.6', udp: 200, why: 'OPTIONS; no LWS between display name and <' },
  { name: 'longreq', section: '3.1.1.7', udp: 405, why: 'INVITE with very long values and 34 Vias' },
  {
    name: 'dblreq',
    section: '3.1.1.8',
    udp: 401,
    why: 'REGISTER; over UDP the INVITE after it is extra bytes of the datagram, ignored; on a stream it is the next message (405), and the bytes after its 150 bytes of body are no message: closed',
    tcpMore: { write: Buffer.alloc(0), statuses: [405] },
    tcpLost: true,
  },
  { name: 'semiuri', section: '3.1.1.9', udp: 200, why: 'OPTIONS with ; in the user part' },
  { name: 'transports', section: '3.1.1.10', udp: 200, why: 'OPTIONS with Vias of several transports' },
  { name: 'mpart01', section: '3.1.1.11', udp: 403, why: 'MESSAGE with a multipart body with binary parts, to example.org, not served here' },
  { name: 'unreason', section: '3.1.1.12', udp: 'none', why: 'a 200 response that no transaction awaits: dropped' },
  { name: 'noreason', section: '3.1.1.13', udp: 'none', why: 'a 100 response with no reason phrase: dropped' },
  // §3.1.2 invalid messages: 400 with a Warning when the Via can be read
  { name: 'badinv01', section: '3.1.2.1', udp: 400, warning: /Via/, why: 'empty Via elements and parameters' },
  {
    name: 'clerr',
    section: '3.1.2.2',
    udp: 400,
    tcp: 'none',
    warning: /Content-Length/,
    why: 'Content-Length larger than the datagram; on a stream the server waits for the rest of the body, and answers the INVITE (405) once it comes',
    tcpMore: { write: Buffer.alloc(9999 - 154, 0x61), statuses: [405] },
  },
  { name: 'ncl', section: '3.1.2.3', udp: 400, warning: /Content-Length/, tcpLost: true, why: 'negative Content-Length' },
  { name: 'scalar02', section: '3.1.2.4', udp: 400, warning: /CSeq/, why: 'CSeq over 2**32 (and Max-Forwards, Expires overlarge)' },
  { name: 'scalarlg', section: '3.1.2.5', udp: 'none', why: 'a response with overlarge scalars: dropped' },
  { name: 'quotbal', section: '3.1.2.6', udp: 400, warning: /closing quote/, why: 'unterminated quoted display name' },
  { name: 'ltgtruri', section: '3.1.2.7', udp: 400, warning: /Request-URI/, why: '<> around the Request-URI' },
  { name: 'lwsruri', section: '3.1.2.8', udp: 400, warning: /start line/, why: 'LWS inside the Request-URI' },
  { name: 'lwsstart', section: '3.1.2.9', udp: 400, warning: /exactly one SP/, why: 'several SP between the Request-Line elements' },
  { name: 'trws', section: '3.1.2.10', udp: 400, warning: /whitespace after the SIP version/, why: 'SP at the end of the Request-Line' },
  { name: 'escruri', section: '3.1.2.11', udp: 400, warning: /cannot carry headers/, why: 'escaped headers in the Request-URI' },
  { name: 'baddate', section: '3.1.2.12', udp: 400, warning: /Date/, why: 'Date in EST' },
  { name: 'regbadct', section: '3.1.2.13', udp: 400, warning: /enclosed in/, why: 'Contact URI with ? not in <>' },
  { name: 'badaspec', section: '3.1.2.14', udp: 400, warning: /whitespace inside/, why: 'spaces inside <> in To' },
  {
    name: 'baddn',
    section: '3.1.2.15',
    udp: 400,
    warning: /empty line|display name/,
    why: 'unquoted display name with a comma; the RFC archive\'s file has no empty line after the headers: 400 for that over UDP; on a stream the test adds it, then 400 for the display name',
  },
  { name: 'badvers', section: '3.1.2.16', udp: 505, warning: /SIP\/7\.0/, why: 'SIP/7.0: 505, as the RFC asks' },
  { name: 'mismatch01', section: '3.1.2.17', udp: 400, warning: /CSeq method/, why: 'OPTIONS with CSeq INVITE' },
  { name: 'mismatch02', section: '3.1.2.18', udp: 400, warning: /CSeq method/, why: 'an unknown method with CSeq INVITE' },
  { name: 'bigcode', section: '3.1.2.19', udp: 'none', why: 'a response with status 4294967301: dropped' },
  // §3.2 transaction layer
  { name: 'badbranch', section: '3.2.1', udp: 400, warning: /magic cookie/, why: 'branch is z9hG4bK alone (the RFC allows 400 or RFC 2543 matching)' },
  // §3.3 application layer
  { name: 'insuf', section: '3.3.1', udp: 400, warning: /lacks the mandatory headers/, why: 'no From, To, Call-ID: answered all the same, through its Via' },
  { name: 'unkscm', section: '3.3.2', udp: 416, why: 'Request-URI of an unknown scheme' },
  { name: 'novelsc', section: '3.3.3', udp: 416, why: 'Request-URI soap.beep:' },
  { name: 'unksm2', section: '3.3.4', udp: 400, warning: /isbn/, why: 'REGISTER with To isbn: (not an address of record Parley can keep)' },
  { name: 'bext01', section: '3.3.5', udp: 420, why: 'Proxy-Require / Require of unknown extensions' },
  { name: 'invut', section: '3.3.6', udp: 405, why: 'INVITE with an unknown Content-Type: the method is refused first' },
  { name: 'regaut01', section: '3.3.7', udp: 401, why: 'Authorization of an unknown scheme: challenged' },
  { name: 'multi01', section: '3.3.8', udp: 400, warning: /appears 2 times/, why: 'two From, To, Call-ID, CSeq' },
  { name: 'mcl01', section: '3.3.9', udp: 400, warning: /Content-Length/, tcpLost: true, why: 'two different Content-Lengths' },
  { name: 'bcast', section: '3.3.10', udp: 'none', why: 'a response with a broadcast Via: dropped, never sent to 255.255.255.255' },
  { name: 'zeromf', section: '3.3.11', udp: 200, why: 'OPTIONS with Max-Forwards 0, for this server itself' },
  { name: 'cparam01', section: '3.3.12', udp: 401, why: 'REGISTER, Contact parameter: challenged' },
  { name: 'cparam02', section: '3.3.13', udp: 401, why: 'REGISTER, URI parameter in Contact: challenged' },
  { name: 'regescrt', section: '3.3.14', udp: 401, why: 'REGISTER, escaped header in a Contact in <>: challenged' },
  { name: 'sdp01', section: '3.3.15', udp: 405, why: 'INVITE with an Accept it cannot meet: the method is refused first' },
  // §3.4 backward compatibility
  { name: 'inv2543', section: '3.4.1', udp: 405, tcp: 400, warning: /Content-Length is mandatory/, tcpLost: true, why: 'RFC 2543 INVITE; on a stream, without Content-Length, the framing is lost' },
];

const read = (name: string): Buffer => readFileSync(path.join(DIR, `${name}.dat`));

/**
 * A response as read by the test: status line and header lookup only. Parley's own parser is not
 * used here, since it rightly refuses some of what a 400 must copy back (scalar02's CSeq of 2**65;
 * insuf's answer, which has no From, To or Call-ID because the request had none).
 */
interface Answer {
  status: number;
  reason: string;
  header(name: string): string | undefined;
}

function toAnswer(head: string): Answer {
  const m = /^SIP\/2\.0 ([0-9]{3}) ?(.*)/.exec(head);
  assert.ok(m, `a response: ${head.slice(0, 80)}`);
  return {
    status: Number(m[1]),
    reason: m[2] ?? '',
    header: (name) => new RegExp(`^${name}[ \\t]*:[ \\t]*(.*)$`, 'im').exec(head)?.[1],
  };
}

/** Final responses from a stream of bytes (one datagram each, or a TCP connection). */
class Inbox {
  #bytes = '';
  readonly #queue: Answer[] = [];
  #waiting: ((r: Answer) => void) | null = null;

  push(chunk: Buffer): void {
    this.#bytes += chunk.toString('latin1');
    for (;;) {
      this.#bytes = this.#bytes.replace(/^(?:\r\n)+/, ''); // keep-alive CRLFs
      const end = this.#bytes.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#bytes.slice(0, end);
      const length = Number(/^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)/im.exec(head)?.[1] ?? 0);
      if (this.#bytes.length < end + 4 + length) return;
      this.#bytes = this.#bytes.slice(end + 4 + length);
      const answer = toAnswer(head);
      if (answer.status < 200) continue;
      if (this.#waiting) {
        const w = this.#waiting;
        this.#waiting = null;
        w(answer);
      } else {
        this.#queue.push(answer);
      }
    }
  }

  next(what: string): Promise<Answer> {
    const r = this.#queue.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = null;
        reject(new Error(`no final response to ${what} within ${ANSWER_WAIT_MS} ms`));
      }, ANSWER_WAIT_MS);
      this.#waiting = (res) => {
        clearTimeout(timer);
        resolve(res);
      };
    });
  }

  get pending(): number {
    return this.#queue.length;
  }
}

const callIdOf = (r: Answer): string => r.header('call-id') ?? '';
const probe = (transport: string): Buffer =>
  Buffer.from(rawRequest('OPTIONS', `sip:${DOMAIN}`, { from: `sip:prober@${DOMAIN}`, to: `sip:${DOMAIN}`, transport }));
const probeCallId = (bytes: Buffer): string => /^Call-ID: (.*)$/m.exec(bytes.toString('latin1'))?.[1]?.trim() ?? '';

function checkAnswer(c: Case, res: Answer, expected: number, transport: string): void {
  assert.equal(res.status, expected, `${c.name} (§${c.section}) over ${transport}: ${c.why}; got ${res.status} ${res.reason} ${res.header('warning') ?? ''}`);
  // 405 is a proper final answer: it says what is allowed (RFC 3261 §8.2.1)
  if (expected === 405) assert.match(res.header('allow') ?? '', /\bMESSAGE\b/, `${c.name}: a 405 carries Allow`);
  if (expected === 400 || expected === 505) {
    const warning = res.header('warning') ?? '';
    assert.match(warning, /^399 \S+ "/, `${c.name}: a 400 says what is wrong in a Warning`);
    if (c.warning) assert.match(warning, c.warning, `${c.name}: the Warning names the fault`);
  }
}

async function alive(server: RunningServer): Promise<void> {
  assert.equal(server.exitStatus(), null, 'the server process is still running');
  const internal = server.logs().split('\n').filter((l) => /"level":(50|60)/.test(l));
  assert.deepEqual(internal, [], 'no internal error logged');
}

describe('RFC 4475 torture messages over UDP', () => {
  let server: RunningServer;
  let socket: dgram.Socket;
  const inbox = new Inbox();
  before(async () => {
    server = await startServer({ domain: DOMAIN });
    socket = dgram.createSocket('udp4');
    socket.on('message', (data) => inbox.push(data));
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  });
  after(async () => {
    socket?.close();
    await server?.stop();
  });
  const send = (data: Buffer) => new Promise<void>((r, j) => socket.send(data, server.udp.port, server.udp.host, (err) => (err ? j(err) : r())));

  for (const c of CASES) {
    it(`${c.name} (§${c.section}): ${c.udp === 'none' ? 'nothing' : c.udp}`, async () => {
      await send(read(c.name));
      if (c.udp !== 'none') checkAnswer(c, await inbox.next(c.name), c.udp, 'UDP');
      // the next answer on this socket is the probe's: nothing else came for this message
      const p = probe('UDP');
      await send(p);
      const res = await inbox.next('the OPTIONS probe');
      assert.equal(callIdOf(res), probeCallId(p), `${c.name}: nothing but the probe's answer follows`);
      assert.equal(res.status, 200);
    });
  }

  it('a request whose Via cannot be read is dropped, and the server goes on', async () => {
    const bad = Buffer.from(rawRequest('OPTIONS', `sip:${DOMAIN}`, { from: `sip:a@${DOMAIN}`, to: `sip:${DOMAIN}`, transport: 'UDP' }).replace(/^Via: .*$/m, 'Via: this is not a via'));
    await send(bad);
    const p = probe('UDP');
    await send(p);
    assert.equal(callIdOf(await inbox.next('the OPTIONS probe')), probeCallId(p));
    assert.equal(inbox.pending, 0);
  });

  it('the server is alive and answering after all of them', async () => alive(server));
});

describe('RFC 4475 torture messages over TCP, a connection each', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ domain: DOMAIN });
  });
  after(async () => server?.stop());

  /** A fresh connection: writes each chunk in turn, each after the answers expected before it. */
  async function converse(chunks: Buffer[], body: (inbox: Inbox, write: (b: Buffer) => void, closed: Promise<void>) => Promise<void>): Promise<void> {
    const socket = net.connect(server.tcp.port, server.tcp.host);
    const inbox = new Inbox();
    socket.on('data', (chunk: Buffer) => inbox.push(chunk));
    socket.on('error', () => {}); // a connection the server closes (framing lost) is expected
    const closed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not close the connection within ${ANSWER_WAIT_MS} ms`)), ANSWER_WAIT_MS);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    closed.catch(() => {}); // awaited only where a close is expected
    await new Promise<void>((r, j) => {
      socket.once('connect', () => r());
      socket.once('error', j);
    });
    try {
      for (const c of chunks) socket.write(c);
      await body(inbox, (b) => socket.write(b), closed);
    } finally {
      socket.destroy();
    }
  }

  for (const c of CASES) {
    const expected = c.tcp ?? c.udp;
    it(`${c.name} (§${c.section}): ${expected === 'none' ? 'nothing' : expected}`, async () => {
      let data = read(c.name);
      // a header section can only end with its empty line on a stream (baddn's file has none)
      if (data.indexOf('\r\n\r\n') < 0) data = Buffer.concat([data, Buffer.from('\r\n')]);
      await converse([data], async (inbox, write, closed) => {
        if (expected !== 'none') {
          const answers = [await inbox.next(c.name)];
          if (c.tcpMore) {
            write(c.tcpMore.write);
            for (let i = 0; i < c.tcpMore.statuses.length; i++) answers.push(await inbox.next(`${c.name}, continued`));
          }
          // answers to different requests on one connection come as each is ready, not in the order
          // the requests came (RFC 3261 orders no transaction after another): matched by status
          const res = answers.find((a) => a.status === expected) ?? (answers[0] as (typeof answers)[number]);
          checkAnswer({ ...c, warning: c.name === 'baddn' ? /display name/ : c.warning }, res, expected, 'TCP');
          assert.deepEqual(answers.filter((a) => a !== res).map((a) => a.status).sort(), [...(c.tcpMore?.statuses ?? [])].sort(), `${c.name}: ${c.why}`);
        } else if (c.tcpMore) {
          write(c.tcpMore.write);
          for (const s of c.tcpMore.statuses) assert.equal((await inbox.next(`${c.name}, continued`)).status, s, `${c.name}: ${c.why}`);
        }
        if (c.tcpLost) {
          await closed;
          return;
        }
        const p = probe('TCP');
        write(p);
        const res = await inbox.next('the OPTIONS probe');
        assert.equal(callIdOf(res), probeCallId(p), `${c.name}: nothing but the probe's answer follows`);
        assert.equal(res.status, 200);
      });
    });
  }

  it('a request whose Via cannot be read is dropped, and the connection goes on', async () => {
    const bad = Buffer.from(rawRequest('OPTIONS', `sip:${DOMAIN}`, { from: `sip:a@${DOMAIN}`, to: `sip:${DOMAIN}` }).replace(/^Via: .*$/m, 'Via: this is not a via'));
    const p = probe('TCP');
    await converse([bad, p], async (inbox) => {
      assert.equal(callIdOf(await inbox.next('the OPTIONS probe')), probeCallId(p));
    });
  });

  it('the server is alive and answering after all of them', async () => {
    await alive(server);
    const p = probe('TCP');
    await converse([p], async (inbox) => assert.equal((await inbox.next('OPTIONS')).status, 200));
  });
});
