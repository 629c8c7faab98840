// Interop with SIP.js (OnSIP's browser SIP library, run in Node over WebSocket, RFC 7118) against a
// real `parley serve` with its default digest offer: SHA-256 first, then MD5 (RFC 8760), qop=auth
// only and required (issue 18). SIP.js answers MD5 only and reads the last WWW-Authenticate /
// Proxy-Authenticate field, so it picks the MD5 challenge; this suite reads what SIP.js wrote on
// the WebSocket and checks its credentials: qop=auth, nc, cnonce, the Request-URI as digest uri,
// and a response that is right for the password.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SipJsRegistrationError, startSipJsUser, type SipJsUser, type WireMessage } from '../harness/sipjs.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
const users: SipJsUser[] = [];

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw' },
    ],
  });
});

after(async () => {
  await Promise.all(users.map((u) => u.stop().catch(() => {})));
  await server?.stop();
});

/** a registered SIP.js user, stopped after the suite; a refusal rejects with the answer and its Warning */
async function user(name: string, password: string): Promise<SipJsUser> {
  const u = await startSipJsUser({ wsUrl: server.wsUrl, uri: `sip:${name}@${DOMAIN}`, password });
  users.push(u);
  return u;
}

// --- reading SIP.js's wire (independently of Parley's parser) ---

/** the values of every header field `name` (case-insensitive; no compact forms needed here) */
function headerValues(text: string, name: string): string[] {
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const prefix = `${name.toLowerCase()}:`;
  return head
    .split('\r\n')
    .filter((line) => line.toLowerCase().startsWith(prefix))
    .map((line) => line.slice(prefix.length).trim());
}

function firstLine(text: string): string {
  return text.slice(0, text.indexOf('\r\n'));
}

/** `Digest a="x", b=y` → { a: 'x', b: 'y' } */
function digestParams(value: string): Record<string, string> {
  assert.match(value, /^Digest /);
  const params: Record<string, string> = {};
  for (const m of value.slice('Digest '.length).matchAll(/([a-z-]+)=(?:"([^"]*)"|([^,\s]+))/gi)) {
    params[m[1]!.toLowerCase()] = m[2] ?? m[3]!;
  }
  return params;
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** the requests SIP.js sent with this method that carry `credentialsHeader`, in order */
function authenticated(wire: readonly WireMessage[], method: string, credentialsHeader: string): string[] {
  return wire
    .filter((w) => w.direction === 'sent' && w.text.startsWith(`${method} `) && headerValues(w.text, credentialsHeader).length > 0)
    .map((w) => w.text);
}

/** the response SIP.js got for the request before `request` in the wire */
function answerBefore(wire: readonly WireMessage[], request: string): string {
  const i = wire.findIndex((w) => w.text === request);
  const answer = wire.slice(0, i).findLast((w) => w.direction === 'received' && w.text.startsWith('SIP/2.0 '));
  assert.ok(answer, `no response before\n${request}`);
  return answer.text;
}

/**
 * Checks one request's digest credentials as RFC 7616 §3.4 wants them with qop=auth, recomputing
 * the response from the password: MD5 (the only algorithm SIP.js knows), the nonce of the
 * challenge it answers, nc and cnonce present, and the Request-URI as the digest uri.
 */
function assertQopAuthCredentials(request: string, credentialsHeader: string, user: { name: string; password: string }, nonce: string): Record<string, string> {
  const [value, ...more] = headerValues(request, credentialsHeader);
  assert.ok(value !== undefined && more.length === 0, `one ${credentialsHeader} in\n${request}`);
  const p = digestParams(value);
  const [method, requestUri] = firstLine(request).split(' ');
  assert.equal(p.algorithm, 'MD5');
  assert.equal(p.username, user.name);
  assert.equal(p.realm, DOMAIN);
  assert.equal(p.nonce, nonce);
  assert.equal(p.qop, 'auth');
  assert.match(p.nc ?? '', /^[0-9a-f]{8}$/, 'nc is 8 hex digits');
  assert.ok((p.cnonce ?? '').length > 0, 'cnonce is present');
  assert.equal(p.uri, requestUri, 'the digest uri is the Request-URI');
  const ha1 = md5(`${user.name}:${DOMAIN}:${user.password}`);
  const ha2 = md5(`${method}:${p.uri}`);
  assert.equal(p.response, md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:auth:${ha2}`), 'the response is right for the password');
  return p;
}

/** the challenges of a 401/407: two fields, SHA-256 first and MD5 last, both qop="auth"; returns the MD5 nonce */
function assertDefaultChallenges(response: string, challengeHeader: string): string {
  const offered = headerValues(response, challengeHeader).map(digestParams);
  assert.deepEqual(
    offered.map((c) => [c.algorithm, c.qop]),
    [
      ['SHA-256', 'auth'],
      ['MD5', 'auth'],
    ],
    response,
  );
  return offered[1]!.nonce!;
}

describe('SIP.js over WebSocket, digest with qop=auth required', () => {
  let alice: SipJsUser;
  let bob: SipJsUser;

  it('registers two users: SIP.js answers the MD5 challenge with qop=auth, nc, cnonce and the Request-URI', { timeout: 30_000 }, async () => {
    alice = await user('alice', 'alice-pw');
    bob = await user('bob', 'bob-pw');
    assert.equal(alice.registerer.state, 'Registered');
    assert.equal(bob.registerer.state, 'Registered');

    const [register, ...others] = authenticated(alice.wire(), 'REGISTER', 'Authorization');
    assert.ok(register !== undefined && others.length === 0, 'one authenticated REGISTER');
    const challenge = answerBefore(alice.wire(), register);
    assert.match(firstLine(challenge), /^SIP\/2\.0 401 /);
    const nonce = assertDefaultChallenges(challenge, 'WWW-Authenticate');
    const p = assertQopAuthCredentials(register, 'Authorization', { name: 'alice', password: 'alice-pw' }, nonce);
    assert.equal(p.uri, `sip:${DOMAIN}`);
    assert.equal(p.nc, '00000001');
  });

  it('relays a MESSAGE from alice to bob and the 200 back; the Proxy-Authorization names bob', { timeout: 30_000 }, async () => {
    const text = 'Hello Bob from SIP.js — ünïcode ✓';
    const sent = await alice.sendMessage(`sip:bob@${DOMAIN}`, text);
    assert.equal(sent.status, 200, JSON.stringify(sent));
    const got = await bob.nextMessage();
    assert.equal(got.body, text);
    assert.equal(got.from, `sip:alice@${DOMAIN}`);
    assert.equal(got.to, `sip:bob@${DOMAIN}`);
    assert.match(got.contentType ?? '', /^text\/plain/);

    const [message] = authenticated(alice.wire(), 'MESSAGE', 'Proxy-Authorization');
    assert.ok(message !== undefined, 'an authenticated MESSAGE');
    const challenge = answerBefore(alice.wire(), message);
    assert.match(firstLine(challenge), /^SIP\/2\.0 407 /);
    const nonce = assertDefaultChallenges(challenge, 'Proxy-Authenticate');
    const p = assertQopAuthCredentials(message, 'Proxy-Authorization', { name: 'alice', password: 'alice-pw' }, nonce);
    assert.equal(p.uri, `sip:bob@${DOMAIN}`);
  });

  it('answers 202 for a user with no registration, the message kept for their mailbox', { timeout: 30_000 }, async () => {
    const sent = await alice.sendMessage(`sip:carol@${DOMAIN}`, 'are you there?');
    assert.equal(sent.status, 202, JSON.stringify(sent));
    const entry = /spool entry (sp-[a-z0-9]+)/.exec(sent.warning ?? '')?.[1];
    assert.ok(entry, `the Warning names the spool entry: ${sent.warning}`);
    const list = await runCli(['spooler', 'list', '--user', `carol@${DOMAIN}`, '--json', ...server.storageArgs]);
    assert.equal(list.code, 0, list.stderr);
    const ids = (JSON.parse(list.stdout) as Array<{ id: string }>).map((e) => e.id);
    assert.deepEqual(ids, [entry]);
  });

  it('refuses a wrong password with 403 and a Warning that says why', { timeout: 30_000 }, async () => {
    const refused = await startSipJsUser({ wsUrl: server.wsUrl, uri: `sip:carol@${DOMAIN}`, password: 'wrong' }).then(
      async (u) => {
        await u.stop();
        assert.fail('carol registered with a wrong password');
      },
      (err: unknown) => err,
    );
    assert.ok(refused instanceof SipJsRegistrationError, String(refused));
    assert.equal(refused.answer?.status, 403, refused.message);
    assert.equal(refused.answer?.warning, `399 ${DOMAIN} "authentication failed for \\"carol\\": wrong user name or password"`);
  });

  it('unregisters: the repeated credentials are refused as stale, the fresh ones accepted; bob then gets mail', { timeout: 30_000 }, async () => {
    const before = authenticated(bob.wire(), 'REGISTER', 'Authorization').length;
    const answer = await bob.unregister();
    assert.equal(answer.status, 200, JSON.stringify(answer));
    assert.equal(bob.registerer.state, 'Unregistered');

    // SIP.js's Registerer keeps its last Authorization on the request it reuses, so the
    // unregistration first repeats nonce and nc of the registration: a replay, which Parley
    // answers with a new challenge marked stale=true; SIP.js then answers that one.
    const registers = authenticated(bob.wire(), 'REGISTER', 'Authorization');
    const [registration, replayed, fresh, ...more] = registers.slice(before - 1);
    assert.ok(registration !== undefined && replayed !== undefined && fresh !== undefined && more.length === 0, registers.join('\n'));
    assert.match(headerValues(replayed, 'Contact')[0] ?? '', /;expires=0$/);
    const first = digestParams(headerValues(registration, 'Authorization')[0]!);
    const again = digestParams(headerValues(replayed, 'Authorization')[0]!);
    assert.deepEqual([again.nonce, again.nc, again.response], [first.nonce, first.nc, first.response]);
    const stale = answerBefore(bob.wire(), fresh);
    assert.match(firstLine(stale), /^SIP\/2\.0 401 /);
    assert.ok(headerValues(stale, 'WWW-Authenticate').every((c) => digestParams(c).stale === 'true'), stale);
    const nonce = assertDefaultChallenges(stale, 'WWW-Authenticate');
    assertQopAuthCredentials(fresh, 'Authorization', { name: 'bob', password: 'bob-pw' }, nonce);

    const sent = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'gone?');
    assert.equal(sent.status, 202, JSON.stringify(sent));
    await bob.stop();
  });
});
