// Security review, finding 1: digest credentials seen on the network cannot be used again. An
// attacker who captured alice's Proxy-Authorization or bob's Authorization replays them from a
// socket of their own, over UDP, TCP and WebSocket, exactly as the review did: on the same
// Request-URI, on another one with a new body, and on REGISTER with the attacker's Contact and with
// `Contact: *`. Every replay is refused, and bob's registration stays his. Credentials without qop
// (RFC 2069), which no nonce count protects, are refused even when they are right.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { answerChallenge, type AuthField, computeHa1, computeResponse, parseAuthField, parseMessage, pickChallenge, type SipResponse, StreamFramer } from '../../src/sip/index.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const PASSWORD = { alice: 'alice-secret', bob: 'bob-secret' } as const;
let server: RunningServer;

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: PASSWORD.alice },
      { address: `bob@${DOMAIN}`, password: PASSWORD.bob },
      { address: `carol@${DOMAIN}`, password: 'carol-secret' },
    ],
  });
});
after(async () => server?.stop());

type Transport = 'udp' | 'tcp' | 'ws';

/** One socket of one party (victim or attacker): sends raw requests, reads the final answer by Call-ID. */
interface Wire {
  readonly via: string;
  request(text: string): Promise<SipResponse>;
  close(): void;
}

async function openWire(transport: Transport, localAddress = '127.0.0.1'): Promise<Wire> {
  const waiting = new Map<string, (r: SipResponse) => void>();
  const onResponse = (r: SipResponse): void => {
    if (r.status < 200) return;
    const callId = r.headers.get('call-id') ?? '';
    waiting.get(callId)?.(r);
    waiting.delete(callId);
  };
  const framer = new StreamFramer();
  const fromStream = (chunk: Buffer): void => {
    for (const e of framer.push(chunk)) if (e.type === 'message' && e.message.kind === 'response') onResponse(e.message);
  };
  let send: (text: string) => void;
  let close: () => void;
  let via: string;
  if (transport === 'udp') {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, localAddress, () => r()));
    socket.on('message', (msg) => {
      const m = parseMessage(msg);
      if (m.kind === 'response') onResponse(m);
    });
    via = `SIP/2.0/UDP ${localAddress}:${socket.address().port}`;
    send = (text) => socket.send(text, server.udp.port, server.udp.host);
    close = () => socket.close();
  } else if (transport === 'tcp') {
    const socket = net.connect({ port: server.tcp.port, host: server.tcp.host, localAddress });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.on('data', fromStream);
    via = `SIP/2.0/TCP 127.0.0.1:${socket.localPort}`;
    send = (text) => socket.write(text);
    close = () => socket.destroy();
  } else {
    const ws = new WebSocket(server.wsUrl, 'sip');
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error('WebSocket did not open'));
    });
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (event) => {
      const m = parseMessage(typeof event.data === 'string' ? Buffer.from(event.data) : Buffer.from(event.data as ArrayBuffer));
      if (m.kind === 'response') onResponse(m);
    };
    via = `SIP/2.0/WS ${randomBytes(4).toString('hex')}.invalid`;
    send = (text) => ws.send(text);
    close = () => ws.close();
  }
  return {
    via,
    request(text) {
      const callId = /^Call-ID: (.*)$/m.exec(text)?.[1]?.trim() ?? '';
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no final response to ${text.split('\r\n')[0]} within 5 s`)), 5000);
        waiting.set(callId, (r) => {
          clearTimeout(timer);
          resolve(r);
        });
        send(text);
      });
    },
    close,
  };
}

function request(wire: Wire, method: string, uri: string, opts: { from: string; to?: string; headers?: string[]; body?: string }): string {
  const body = opts.body ?? '';
  return [
    `${method} ${uri} SIP/2.0`,
    `Via: ${wire.via};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
    'Max-Forwards: 70',
    `From: <${opts.from}>;tag=${randomBytes(4).toString('hex')}`,
    `To: <${opts.to ?? uri}>`,
    `Call-ID: ${randomBytes(8).toString('hex')}@replay.test`,
    `CSeq: 1 ${method}`,
    ...(opts.headers ?? []),
    ...(body ? ['Content-Type: text/plain'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

const header = (name: 'Authorization' | 'Proxy-Authorization', cred: AuthField): string =>
  `${name}: Digest ${[...cred.params].map(([k, v]) => (['algorithm', 'qop', 'nc'].includes(k) ? `${k}=${v}` : `${k}="${v}"`)).join(', ')}`;

function challengeOf(response: SipResponse): AuthField {
  const name = response.status === 401 ? 'www-authenticate' : 'proxy-authenticate';
  const picked = pickChallenge(response.headers.getAll(name).map((v) => parseAuthField(v)));
  assert.ok(picked, `a usable challenge in the ${response.status}`);
  return picked;
}

const warningOf = (r: SipResponse): string => r.headers.get('warning') ?? '';
const isStaleChallenge = (r: SipResponse): boolean => [401, 407].includes(r.status) && challengeOf(r).params.get('stale') === 'true';

for (const transport of ['udp', 'tcp', 'ws'] as const) {
  describe(`captured digest credentials cannot be replayed over ${transport.toUpperCase()}`, () => {
    it("alice's Proxy-Authorization from one MESSAGE is refused on a replay, on another target, and without qop", async () => {
      const alice = await openWire(transport);
      const attacker = await openWire(transport);
      try {
        const bob = `sip:bob@${DOMAIN}`;
        const from = `sip:alice@${DOMAIN}`;
        const challenged = await alice.request(request(alice, 'MESSAGE', bob, { from, body: 'hello' }));
        assert.equal(challenged.status, 407);
        const cred = answerChallenge(challengeOf(challenged), { username: 'alice', password: PASSWORD.alice, method: 'MESSAGE', uri: bob, nc: 1 });
        const sent = await alice.request(request(alice, 'MESSAGE', bob, { from, body: 'hello', headers: [header('Proxy-Authorization', cred)] }));
        assert.ok(sent.status >= 200 && sent.status < 300, `alice's own MESSAGE is accepted (${sent.status} ${warningOf(sent)})`);

        for (let i = 0; i < 3; i++) {
          const replay = await attacker.request(request(attacker, 'MESSAGE', bob, { from, body: `forged ${i}`, headers: [header('Proxy-Authorization', cred)] }));
          assert.ok(isStaleChallenge(replay), `replay ${i} on the same Request-URI: a new challenge, not ${replay.status} ${warningOf(replay)}`);
        }
        const carol = `sip:carol@${DOMAIN}`;
        const elsewhere = await attacker.request(request(attacker, 'MESSAGE', carol, { from, body: 'forged', headers: [header('Proxy-Authorization', cred)] }));
        assert.equal(elsewhere.status, 400, 'RFC 7616 §3.4.6: Bad Request');
        assert.match(warningOf(elsewhere), /is not the Request-URI/);

        // The RFC 2069 form, right for alice's password: refused, since nothing would tell its replay.
        const nonce = challengeOf(challenged).params.get('nonce') ?? '';
        const algorithm = 'MD5';
        const ha1 = computeHa1(algorithm, 'alice', DOMAIN, PASSWORD.alice);
        const legacy = `Proxy-Authorization: Digest username="alice", realm="${DOMAIN}", nonce="${nonce}", uri="${bob}", response="${computeResponse({ algorithm, ha1, method: 'MESSAGE', uri: bob, nonce })}", algorithm=MD5`;
        const noQop = await alice.request(request(alice, 'MESSAGE', bob, { from, body: 'legacy', headers: [legacy] }));
        assert.equal(noQop.status, 403);
        assert.match(warningOf(noQop), /qop=auth/);
      } finally {
        alice.close();
        attacker.close();
      }
    });

    it("bob's REGISTER Authorization replayed cannot add the attacker's Contact nor remove bob's devices", async () => {
      const bob = await openWire(transport);
      const attacker = await openWire(transport);
      try {
        const aor = `sip:bob@${DOMAIN}`;
        const registrar = `sip:${DOMAIN}`;
        const device = `<sip:bob@192.0.2.10:5070;transport=${transport}>`;
        const register = (wire: Wire, headers: string[]) => wire.request(request(wire, 'REGISTER', registrar, { from: aor, to: aor, headers }));
        const challenged = await register(bob, [`Contact: ${device};expires=300`]);
        assert.equal(challenged.status, 401);
        const challenge = challengeOf(challenged);
        const cred = (nc: number) => header('Authorization', answerChallenge(challenge, { username: 'bob', password: PASSWORD.bob, method: 'REGISTER', uri: registrar, nc }));
        const ok = await register(bob, [`Contact: ${device};expires=300`, cred(1)]);
        assert.equal(ok.status, 200, warningOf(ok));

        const added = await register(attacker, [`Contact: <sip:bob@198.51.100.66:5060>;expires=300`, cred(1)]);
        assert.ok(isStaleChallenge(added), `the attacker's Contact is refused, not ${added.status}`);
        const removed = await register(attacker, ['Contact: *', 'Expires: 0', cred(1)]);
        assert.ok(isStaleChallenge(removed), `Contact: * with a replayed Authorization is refused, not ${removed.status}`);

        // bob asks for his bindings (no Contact): only his device is there
        const query = await register(bob, [cred(2)]);
        assert.equal(query.status, 200, warningOf(query));
        const contacts = query.headers.getAll('contact').join(',');
        assert.match(contacts, /192\.0\.2\.10:5070/);
        assert.doesNotMatch(contacts, /198\.51\.100\.66/);
        await register(bob, ['Contact: *', 'Expires: 0', cred(3)]);
      } finally {
        bob.close();
        attacker.close();
      }
    });
  });
}

describe('a failed sign-in does not tell which user names exist', () => {
  it('answers an unknown user and a wrong password alike', async () => {
    const wire = await openWire('tcp');
    try {
      const target = `sip:bob@${DOMAIN}`;
      const attempt = async (username: string) => {
        const challenged = await wire.request(request(wire, 'MESSAGE', target, { from: `sip:${username}@${DOMAIN}`, body: 'x' }));
        const cred = answerChallenge(challengeOf(challenged), { username, password: 'a guess', method: 'MESSAGE', uri: target });
        return wire.request(request(wire, 'MESSAGE', target, { from: `sip:${username}@${DOMAIN}`, body: 'x', headers: [header('Proxy-Authorization', cred)] }));
      };
      const known = await attempt('alice');
      const unknown = await attempt('nosuchuser');
      assert.equal(known.status, 403);
      assert.equal(unknown.status, 403);
      const normalise = (r: SipResponse) => warningOf(r).replace(/alice|nosuchuser/, 'USER');
      assert.equal(normalise(known), normalise(unknown));
      assert.match(warningOf(known), /wrong user name or password/);
    } finally {
      wire.close();
    }
  });
});

describe('a nonce works only from the address it was issued to', () => {
  it('guesses sent with a nonce taken from another address are not checked, so they neither tell nor count', async () => {
    // Over UDP anyone can write any source address; a forger fetches nonces at its own address and
    // sends guesses as if from its victim's. Here 127.0.0.12 plays the forger, 127.0.0.13 the victim.
    const forger = await openWire('udp', '127.0.0.12');
    const victim = await openWire('udp', '127.0.0.13');
    try {
      const bob = `sip:bob@${DOMAIN}`;
      const from = `sip:alice@${DOMAIN}`;
      const challenged = await forger.request(request(forger, 'MESSAGE', bob, { from, body: 'x' }));
      const challenge = challengeOf(challenged);
      // more than the default lockout threshold (10 failures from one address)
      for (let i = 1; i <= 12; i++) {
        const guess = answerChallenge(challenge, { username: 'alice', password: `guess ${i}`, method: 'MESSAGE', uri: bob, nc: i });
        const r = await victim.request(request(victim, 'MESSAGE', bob, { from, body: 'x', headers: [header('Proxy-Authorization', guess)] }));
        assert.ok(isStaleChallenge(r), `guess ${i}: a new challenge, not ${r.status} ${warningOf(r)}`);
      }
      // the victim's address is not locked: its own sign-in works at once
      const own = challengeOf(await victim.request(request(victim, 'MESSAGE', bob, { from, body: 'hello' })));
      const cred = answerChallenge(own, { username: 'alice', password: PASSWORD.alice, method: 'MESSAGE', uri: bob });
      const sent = await victim.request(request(victim, 'MESSAGE', bob, { from, body: 'hello', headers: [header('Proxy-Authorization', cred)] }));
      assert.ok(sent.status >= 200 && sent.status < 300, `${sent.status} ${warningOf(sent)}`);
    } finally {
      forger.close();
      victim.close();
    }
  });
});
