// Offline IM to a user whose mailbox is in Exchange Online, through Microsoft Graph (issue 17):
// a real `parley serve` whose config routes bob to a graph mailbox server, and the Graph stand-in
// (test/harness/graph-standin.ts) in place of Microsoft's cloud — a local HTTPS server with a test
// CA (trusted by the server through NODE_EXTRA_CA_CERTS) that serves Graph and the token endpoint
// as Microsoft documents them and rejects any request that deviates. It verifies Parley against
// the documented contract; no live tenant is reached. The Missed Conversation arrives exactly
// once, also when the first create fails with 503 or its answer is lost; a 403 fails the entry at
// once with what to grant.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { startGraphStandIn } from '../harness/graph-standin.ts';
import type { GraphStandIn } from '../harness/graph-standin.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const BOB = `bob@${DOMAIN}`;
const CLIENT_ID = '0f1e2d3c-4b5a-4978-8a9b-aabbccddeeff';
const SECRET = 'graph-app-secret';
let standIn: GraphStandIn;
let main: RunningServer;
let dir = '';
const people = sdkClients(() => main, DOMAIN, { requestTimeoutMs: 10_000 });

before(async () => {
  standIn = await startGraphStandIn({ app: { clientId: CLIENT_ID, secret: SECRET }, mailboxes: [BOB] });
  dir = mkdtempSync(path.join(tmpdir(), 'parley-graph-e2e-'));
  const secretFile = path.join(dir, 'graph.secret');
  writeFileSync(secretFile, `${SECRET}\n`);
  main = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Example' },
      { address: BOB, password: 'bob-pw', displayName: 'Bob Example' },
    ],
    config: {
      mailboxes: {
        servers: { online: { kind: 'graph', tenantId: standIn.tenantId, clientId: CLIENT_ID, clientSecretFile: secretFile, graphUrl: standIn.graphUrl, authorityHost: standIn.authorityHost, timeout: 3 } },
        users: { [BOB]: 'online' },
      },
      offlineIm: { retryBase: 0.2, retryMax: 1 },
    },
    env: { NODE_EXTRA_CA_CERTS: standIn.caFile },
  });
  const pickup = await runCli(['admin', ...main.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
  assert.equal(pickup.code, 0, pickup.stderr);
});

after(async () => {
  await people.closeAll();
  await main?.stop();
  await standIn?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function entry(id: string): Promise<{ state: string; attempts: number; lastError: string | null }> {
  const r = await runCli(['spooler', 'show', id, '--json', ...main.storageArgs]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { state: string; attempts: number; lastError: string | null };
}

async function sendToBob(text: string): Promise<string> {
  const alice = await people.connect('alice');
  const res = await alice.sendMessage(`sip:${BOB}`, text);
  assert.equal(res.status, 202, res.headers.get('warning') ?? '');
  await alice.close();
  const id = /spool entry (sp-[a-z2-7]{16})/.exec(res.headers.get('warning') ?? '')?.[1];
  assert.ok(id);
  return id;
}

const delivered = (id: string) => eventually(`${id} delivered`, async () => ((await entry(id)).state === 'delivered' ? true : undefined));
const atGraph = (id: string) => standIn.messages(BOB, 'conversationhistory').filter((m) => m.json.internetMessageId === `<${id}@${DOMAIN}>`);

describe('offline IM to an Exchange Online mailbox through Microsoft Graph (stand-in)', () => {
  it('the Missed Conversation arrives once in conversationhistory: received, unread, of its class', async () => {
    const id = await sendToBob('hello through Graph');
    await delivered(id);
    const items = atGraph(id);
    assert.equal(items.length, 1);
    const [item] = items;
    assert.equal(item?.isDraft, false);
    assert.equal(item?.isRead, false);
    assert.equal(item?.extended.get('string 0x001a'), 'IPM.Note.Microsoft.Missed');
    assert.match(String((item?.json.body as { content: string }).content), /hello through Graph/);
    const trace = await runCli(['trace', id, ...main.storageArgs]);
    assert.equal(trace.code, 0, trace.stderr);
    assert.match(trace.stdout, /delivered/);
  });

  it('bob learns of it through message-summary counted at Graph (RFC 3842)', async () => {
    const bob = await people.connect('bob', { register: true });
    const summary = new Promise<{ waiting: boolean; textMessages: { new: number; old: number } }>((resolve) => bob.once('message-summary', resolve));
    await bob.watchMessageSummary();
    const first = await summary;
    assert.equal(first.waiting, true);
    assert.equal(first.textMessages.new, 1, 'the one unread Missed Conversation at Graph');
    await bob.close();
  });

  it('the first create answers 503: retried, the item arrives exactly once', async () => {
    standIn.fault({ match: 'create', status: 503 });
    const id = await sendToBob('through a 503');
    await delivered(id);
    assert.equal(atGraph(id).length, 1);
    assert.ok((await entry(id)).attempts >= 2);
  });

  it('the first create is made but times out (no answer within the 3 s timeout): the retry finds it, exactly once', async () => {
    standIn.fault({ match: 'create', loseAnswer: 'hold' });
    const id = await sendToBob('answer lost');
    await delivered(id);
    assert.equal(atGraph(id).length, 1);
  });

  it('403 (the application access policy leaves bob out): the entry fails at once with what to grant, seen in parley spooler', async () => {
    standIn.deny(BOB);
    try {
      const id = await sendToBob('while the app may not write to bob');
      const failed = await eventually('failed', async () => {
        const e = await entry(id);
        return e.state === 'failed' ? e : undefined;
      });
      assert.equal(failed.attempts, 1);
      assert.match(failed.lastError ?? '', /recipient mailbox \(online\): Graph answered 403 ErrorAccessDenied.*Mail\.ReadWrite application permission.*application access policy/);
      const list = await runCli(['spooler', 'list', '--state', 'failed', '--json', ...main.storageArgs]);
      assert.ok((JSON.parse(list.stdout) as Array<{ id: string }>).some((e) => e.id === id));
      assert.equal(atGraph(id).length, 0);
    } finally {
      standIn.deny(BOB, false);
    }
  });

  it('every request Parley sent followed the documented contract', () => {
    assert.ok(standIn.requests.some((r) => r.path.endsWith('/oauth2/v2.0/token') && r.status === 200));
    assert.deepEqual(standIn.rejected().map((r) => `${r.method} ${r.path}: ${r.rejected}`), []);
  });
});
