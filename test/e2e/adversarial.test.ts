// Hostile and broken input over every transport: the server answers what it can, drops the rest,
// and never dies. Deterministic (seeded), bounded in count and time, loopback only.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from '../harness/server.ts';
import { eventually } from '../harness/eventually.ts';
import { rawRequest, tcpExchange, udpExchange } from './raw-sip.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;

before(async () => {
  server = await startServer({ domain: DOMAIN, users: [{ address: `alice@${DOMAIN}`, password: 'pw' }] });
});
after(async () => server?.stop());

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function mutate(base: Buffer, rand: () => number): Buffer {
  const out = Buffer.from(base);
  const edits = 1 + Math.floor(rand() * 8);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(rand() * out.length);
    const pick = rand();
    if (pick < 0.4) out[at] = Math.floor(rand() * 256);
    else if (pick < 0.7) out[at] = [0x0d, 0x0a, 0x3a, 0x3b, 0x3c, 0x3e, 0x22, 0x2c, 0x00][Math.floor(rand() * 9)] ?? 0;
    else return Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + Math.floor(rand() * 40)))]);
  }
  return out;
}

const alive = async () => {
  assert.equal(server.exitStatus(), null, 'the server process is still running');
  // Bad input is the sender's fault: it must never surface as an internal error (level 50+).
  const internal = server.logs().split('\n').filter((l) => /"level":(50|60)/.test(l));
  assert.deepEqual(internal, [], 'no internal errors logged');
  const res = await tcpExchange(server.tcp, rawRequest('OPTIONS', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:${DOMAIN}` }));
  assert.equal(res.status, 200);
};

describe('hostile input', () => {
  const samples = [
    rawRequest('MESSAGE', `sip:alice@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, transport: 'UDP', headers: ['Content-Type: text/plain', 'Proxy-Authorization: Digest username="alice", realm="parley.test", nonce="x", uri="sip:alice@parley.test", response="0"'], body: 'hello' }),
    rawRequest('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, transport: 'UDP', headers: ['Contact: <sip:alice@127.0.0.1:9>;expires=60', 'Authorization: Digest username="alice", realm="parley.test", nonce="abc", uri="sip:parley.test", response="1", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c"'] }),
  ].map((s) => Buffer.from(s));

  it('survives 1,500 mutated datagrams', async () => {
    const rand = prng(42);
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    for (let i = 0; i < 1500; i++) {
      const base = samples[i % samples.length] as Buffer;
      socket.send(mutate(base, rand), server.udp.port, server.udp.host);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5));
    }
    socket.close();
    await alive();
    const udpAlive = await udpExchange(server.udp, rawRequest('OPTIONS', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:${DOMAIN}`, transport: 'UDP' }));
    assert.equal(udpAlive?.status, 200);
  });

  it('survives mutated streams, endless headers and absurd Content-Length over TCP', async () => {
    const rand = prng(7);
    const hostile: Buffer[] = [];
    for (let i = 0; i < 150; i++) hostile.push(mutate(samples[i % samples.length] as Buffer, rand));
    hostile.push(Buffer.from(`OPTIONS sip:${DOMAIN} SIP/2.0\r\n${'X-Junk: y\r\n'.repeat(5000)}`));
    hostile.push(Buffer.from(`MESSAGE sip:alice@${DOMAIN} SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n`));
    hostile.push(Buffer.from('A'.repeat(200_000)));
    for (const data of hostile) {
      await new Promise<void>((resolve) => {
        const socket = net.connect(server.tcp.port, server.tcp.host, () => {
          socket.end(data);
        });
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.setTimeout(2000, () => socket.destroy());
        socket.resume();
      });
    }
    await alive();
  });

  it('survives junk WebSocket frames and refuses a handshake without the sip subprotocol', async () => {
    const rand = prng(99);
    const ws = new WebSocket(server.wsUrl, 'sip');
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error('WebSocket did not open'));
    });
    for (let i = 0; i < 200; i++) ws.send(mutate(samples[i % samples.length] as Buffer, rand));
    ws.send('\u0000\u0001 not sip at all');
    await new Promise((r) => setTimeout(r, 200));
    ws.close();
    const refused = new WebSocket(server.wsUrl);
    const outcome = await new Promise<string>((resolve) => {
      refused.onopen = () => resolve('open');
      refused.onerror = () => resolve('refused');
    });
    assert.equal(outcome, 'refused');
    await alive();
  });

  it('answers a CRLFCRLF keep-alive frame over WebSocket with a CRLF pong, and a lone CRLF with nothing (RFC 5626 §3.5.1)', async () => {
    const ws = new WebSocket(server.wsUrl, 'sip');
    const frames: string[] = [];
    ws.onmessage = (e) => frames.push(String(e.data));
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error('WebSocket did not open'));
    });
    ws.send('\r\n');
    ws.send('\r\n\r\n');
    await eventually('the pong', async () => (frames.length > 0 ? true : undefined), 5000);
    // an OPTIONS after both: its answer comes after anything the two keep-alives caused
    ws.send(`OPTIONS sip:parley.test SIP/2.0\r\nVia: SIP/2.0/WS ka.invalid;branch=z9hG4bK-ka1\r\nMax-Forwards: 70\r\nFrom: <sip:ka@parley.test>;tag=k1\r\nTo: <sip:parley.test>\r\nCall-ID: ka-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
    await eventually('the OPTIONS answer', async () => (frames.length > 1 ? true : undefined), 5000);
    assert.equal(frames[0], '\r\n', 'one pong, for the ping');
    assert.match(frames[1] ?? '', /^SIP\/2\.0 200 /, 'then the OPTIONS answer: the lone CRLF was answered with nothing');
    ws.close();
  });
});
