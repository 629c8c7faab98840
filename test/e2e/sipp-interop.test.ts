// Interop with sipp 3.6 (Debian sip-tester) against a real `parley serve`: digest REGISTER, and a
// MESSAGE relayed from one sipp to another, over UDP and TCP. Scenarios: test/interop/sipp/.
//
// sipp 3.6 answers only the FIRST Digest challenge of a 401/407 and only MD5, so this suite
// starts the server with SIPP_SERVER_ARGS (MD5 only). The default SHA-256-then-MD5 offer is
// covered by the JsSIP suite.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';
import {
  SCENARIOS,
  SIPP_SERVER_ARGS,
  describeSippRun,
  findSipp,
  runSipp,
  startSippUas,
  type SippResult,
  type SippTransport,
} from '../harness/sipp.ts';

const DOMAIN = 'parley.test';
const USERS = {
  alice: { user: 'alice', password: 'alice-secret' },
  bob: { user: 'bob', password: 'bob-secret' },
  carol: { user: 'carol', password: 'carol-secret' },
  dave: { user: 'dave', password: 'dave-secret' },
  /** never registers: offline for the whole suite */
  erin: { user: 'erin', password: 'erin-secret' },
};
const TRANSPORTS: ReadonlyArray<{ name: string; sipp: SippTransport }> = [
  { name: 'UDP', sipp: 'u1' },
  { name: 'TCP', sipp: 't1' },
];

let server: RunningServer;

function target(transport: SippTransport): string {
  const hp = transport === 'u1' ? server.udp : server.tcp;
  return `${hp.host}:${hp.port}`;
}

function explain(r: SippResult): string {
  return `${describeSippRun(r)}\n--- server log (tail) ---\n${server.logs().slice(-6_000)}`;
}

before(async () => {
  assert.ok(findSipp(), 'sipp is not installed: run scripts/install-test-deps.sh');
  server = await startServer({
    domain: DOMAIN,
    users: Object.values(USERS).map((u) => ({ address: `${u.user}@${DOMAIN}`, password: u.password })),
    extraArgs: [...SIPP_SERVER_ARGS],
  });
});

after(async () => {
  await server?.stop();
});

for (const t of TRANSPORTS) {
  describe(`sipp over ${t.name}`, () => {
    it('registers with digest auth (401, MD5), then unregisters', { timeout: 60_000 }, async () => {
      const r = await runSipp({
        scenario: SCENARIOS.registerDigest,
        target: target(t.sipp),
        transport: t.sipp,
        domain: DOMAIN,
        injection: [[USERS.alice.user, USERS.alice.password]],
        timeoutSec: 20,
      });
      assert.equal(r.code, 0, explain(r));
      assert.equal(r.stats?.successfulCalls, 1, explain(r));
      // what sipp actually sent: an MD5 answer to the 401
      assert.match(r.messages, /^Authorization: Digest username="alice",realm="parley\.test".*algorithm=MD5/m, explain(r));
    });

    it('relays a MESSAGE from a sipp UAC to a registered sipp UAS, and the 200 back', { timeout: 60_000 }, async () => {
      // a distinct pair per transport: a binding left over by a failed run of the other
      // transport cannot receive this one's MESSAGE
      const [from, to] = t.sipp === 'u1' ? [USERS.alice, USERS.bob] : [USERS.carol, USERS.dave];
      const token = `tok-${t.sipp}-${Date.now().toString(36)}`;
      const uas = await startSippUas({
        scenario: SCENARIOS.messageUas,
        oocScenario: SCENARIOS.messageUasOoc,
        target: target(t.sipp),
        transport: t.sipp,
        domain: DOMAIN,
        injection: [[to.user, to.password]],
        timeoutSec: 40,
      });
      let uac: SippResult;
      try {
        uac = await runSipp({
          scenario: SCENARIOS.messageUac,
          target: target(t.sipp),
          transport: t.sipp,
          domain: DOMAIN,
          // sipp's digest uri is one fixed -auth_uri: the Request-URI of its MESSAGE, as Parley requires
          authUri: `${to.user}@${DOMAIN}`,
          injection: [[from.user, from.password, to.user, token]],
          timeoutSec: 20,
        });
      } catch (err) {
        await uas.stop();
        throw err;
      }
      if (uac.code !== 0) await uas.stop();
      assert.equal(uac.code, 0, `sender:\n${explain(uac)}`);

      const received = await uas.done;
      assert.equal(received.code, 0, `receiver:\n${explain(received)}`);
      assert.match(received.logs, new RegExp(`parley-message-received body=Hello from sipp ${token}`), explain(received));
      assert.match(received.logs, /parley-unregistered/, explain(received));
      // the relayed request reached the receiver with the sender's identity
      assert.match(received.messages, new RegExp(`^From: <sip:${from.user}@parley\\.test>`, 'm'), explain(received));
    });

    it('a MESSAGE from sipp to a user who is not signed in: 202 with the spool entry, kept for the mailbox', { timeout: 60_000 }, async () => {
      const from = t.sipp === 'u1' ? USERS.alice : USERS.carol;
      const r = await runSipp({
        scenario: SCENARIOS.messageOfflineUac,
        target: target(t.sipp),
        transport: t.sipp,
        domain: DOMAIN,
        authUri: `${USERS.erin.user}@${DOMAIN}`,
        injection: [[from.user, from.password, USERS.erin.user]],
        timeoutSec: 20,
      });
      assert.equal(r.code, 0, explain(r));
      assert.equal(r.stats?.successfulCalls, 1, explain(r));
      const entry = /^Warning: 399 parley\.test ".*spool entry (sp-[a-z2-7]{16})/m.exec(r.messages)?.[1];
      assert.ok(entry, `a 202 naming its spool entry:\n${explain(r)}`);
      const show = await runCli(['spooler', 'show', entry, '--json', ...server.storageArgs]);
      assert.equal(show.code, 0, show.stderr);
      const detail = JSON.parse(show.stdout) as { sender: string; recipient: string; transcript: Array<{ text: string }> };
      assert.equal(detail.sender, `${from.user}@${DOMAIN}`);
      assert.equal(detail.recipient, `erin@${DOMAIN}`);
      assert.match(detail.transcript[0]?.text ?? '', /^Offline hello from sipp/);
    });
  });
}
