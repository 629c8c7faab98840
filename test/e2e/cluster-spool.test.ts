// A node killed (SIGKILL) while its spool worker is delivering (issue 16). Two nodes share the
// spool in PostgreSQL. Users write to users who are offline, with a long pickup delay, so that
// one entry per sender→recipient pair waits; then, with the other node paused (SIGSTOP: for that
// moment the dying node is the only worker), every entry is made due at once (what `parley spooler
// retry` does) and the dying node takes a batch under its lease. The moment the spool table shows
// entries `delivering` under that node's lease, it is killed, and the other node resumes
// (SIGCONT). That node delivers what was never taken at once, and what the dead node held once its
// lease (5 s here) has ended: every entry ends `delivered`; each recipient has one Missed
// Conversation per entry and each sender one copy, none twice (read back through EWS; delivery is
// idempotent: the entry id is the items' InternetMessageId); and the trace of each entry the dead
// node held shows the takeover (picked up by the dead node's worker, then by the other node's).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import { readTrace } from '../../src/observability/trace.ts';
import { retryEntry } from '../../src/offline/spool.ts';
import { openPostgres, type PostgresSql } from '../../src/storage/index.ts';
import { sdkClients } from '../harness/clients.ts';
import { startCluster, type TestCluster } from '../harness/cluster.ts';
import { closeTestPostgres } from '../harness/engines.ts';
import { eventually } from '../harness/eventually.ts';
import { CONVERSATION_CLASS, conversationHistory, MISSED_CLASS, spoolEntryOf } from '../harness/ews-read.ts';
import { runCli, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const SURVIVOR = 0;
const VICTIM = 1;
const SENDERS = Array.from({ length: 12 }, (_, i) => `sender${i}`);
const RECIPIENTS = Array.from({ length: 16 }, (_, i) => `away${i}`);
/** the dead node's leases end after this; the other node then takes its entries */
const LEASE_S = 5;
const WAIT_MS = 60_000;

let cluster: TestCluster;
let db: PostgresSql;
const senders = new Map<number, ReturnType<typeof sdkClients>>();

before(async () => {
  cluster = await startCluster({
    nodes: 2,
    domain: DOMAIN,
    users: [...SENDERS, ...RECIPIENTS].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
    config: { offlineIm: { deliveryLease: LEASE_S } },
  });
  // entries wait until the test makes them due
  const pickup = await runCli(['admin', '--database', cluster.database, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:30:00']);
  assert.equal(pickup.code, 0, pickup.stderr);
  db = await openPostgres(cluster.database, { max: 2, applicationName: 'cluster-spool-test', idleTimeoutSeconds: 2 });
});

after(async () => {
  const survivor = cluster?.nodes[SURVIVOR];
  if (survivor !== undefined && survivor.exitStatus() === null) process.kill(survivor.pid, 'SIGCONT');
  await Promise.all([...senders.values()].map((s) => s.closeAll()));
  await db?.close();
  await cluster?.stop();
  await closeTestPostgres();
});

/** The text `sender` writes to `recipient`: each message known by its pair. */
const textOf = (sender: string, recipient: string) => `note from ${sender} to ${recipient}`;

/** Every sender writes once to every recipient (half through each node); returns the spool entry of each 202, by pair. */
async function writeToEveryone(): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  await Promise.all(
    SENDERS.map(async (sender, i) => {
      const node = i % 2;
      if (!senders.has(node)) senders.set(node, sdkClients(() => cluster.nodes[node]!, DOMAIN, { requestTimeoutMs: 10_000 }));
      const ua: SipClient = await senders.get(node)!.connect(sender);
      for (const recipient of RECIPIENTS) {
        const answer = await ua.sendMessage(`sip:${recipient}@${DOMAIN}`, textOf(sender, recipient));
        assert.equal(answer.status, 202, `${sender} → ${recipient}: ${answer.status} ${answer.warning ?? ''}`);
        const entry = /spool entry (sp-[a-z2-7]+)/.exec(answer.warning ?? '')?.[1];
        assert.ok(entry !== undefined, `${sender} → ${recipient}: the 202 names no spool entry: ${answer.warning ?? ''}`);
        entries.set(`${sender} ${recipient}`, entry);
      }
    }),
  );
  return entries;
}

/**
 * A node's worker in lease owners and in the trace: `<host>:<data dir>/<pid>/<random>` (src/offline/
 * worker.ts; the node part is the same across restarts, the pid tells this run).
 */
const workerOf = (node: RunningServer) => `/${node.pid}/`;

/** Entries `delivering` under a lease of `node`'s worker. */
async function heldBy(node: RunningServer): Promise<string[]> {
  const rows = await db.all<{ id: string }>("SELECT id FROM spool_entries WHERE state = 'delivering' AND lease_owner LIKE ? ORDER BY id", [`%${workerOf(node)}%`]);
  return rows.map((r) => r.id);
}

/** Entries `node` holds, those of them whose Missed Conversation it has made already, and the entries nobody holds yet. */
async function progress(node: RunningServer): Promise<{ held: number; made: number; waiting: number }> {
  const row = await db.get<{ held: number; made: number; waiting: number }>(
    `SELECT sum(CASE WHEN e.state = 'delivering' AND e.lease_owner LIKE ? THEN 1 ELSE 0 END) AS held,
            sum(CASE WHEN e.state = 'delivering' AND e.lease_owner LIKE ? AND m.id IS NOT NULL THEN 1 ELSE 0 END) AS made,
            sum(CASE WHEN e.state = 'waiting' THEN 1 ELSE 0 END) AS waiting
     FROM spool_entries e LEFT JOIN mail_items m ON m.internet_message_id = '<' || e.id || '@${DOMAIN}>' AND m.item_class = '${MISSED_CLASS}'`,
    [`%${workerOf(node)}%`, `%${workerOf(node)}%`],
  );
  return { held: Number(row?.held ?? 0), made: Number(row?.made ?? 0), waiting: Number(row?.waiting ?? 0) };
}

/** How many entries are in each state. */
async function spoolStates(): Promise<Record<string, number>> {
  const rows = await db.all<{ state: string; n: number }>('SELECT state, count(*) AS n FROM spool_entries GROUP BY state');
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

describe('a node killed while its spool worker is delivering', () => {
  it('another node finishes every entry once the lease has ended, none twice (EWS and spool_entries), and the trace shows the takeover', async (t) => {
    const entries = await writeToEveryone();
    const ids = [...new Set(entries.values())];
    assert.equal(ids.length, SENDERS.length * RECIPIENTS.length, 'one entry per sender→recipient pair');
    const victim = cluster.nodeId(VICTIM);
    const victimNode = cluster.nodes[VICTIM]!;
    const survivorNode = cluster.nodes[SURVIVOR]!;

    // for a moment the dying node is the only worker; every entry falls due at once
    process.kill(survivorNode.pid, 'SIGSTOP');
    let held: string[];
    let killedAt = 0;
    try {
      const now = Date.now();
      await db.transaction(async (tx) => {
        for (const id of ids) await retryEntry(tx, id, now, 24 * 3600_000);
      });
      // looked at without pause (a round takes some tens of milliseconds): killed once some of
      // what it holds is already in the mailboxes (the items made, the entries not yet settled),
      // or, should its rounds be too quick for that, while it holds the last entries
      const end = Date.now() + WAIT_MS;
      for (;;) {
        const p = await progress(victimNode);
        if (p.made > 0 || (p.held > 0 && p.waiting === 0)) break;
        if (Date.now() > end) assert.fail(`no entry delivering under a lease of ${victim}: ${JSON.stringify(await spoolStates())}\n${cluster.nodes[VICTIM]!.logs().slice(-3000)}`);
      }
      killedAt = Date.now();
      await cluster.kill(VICTIM);
      // what the dead node held when it died: nobody else can have taken it yet
      held = await heldBy(victimNode);
    } finally {
      process.kill(survivorNode.pid, 'SIGCONT');
    }
    assert.ok(held.length > 0, `${victim} died holding no lease (its round ended before the kill): nothing to take over; ${JSON.stringify(await spoolStates())}`);

    await eventually('every entry delivered', async () => {
      const row = await db.get<{ n: number }>("SELECT count(*) AS n FROM spool_entries WHERE state <> 'delivered'");
      return Number(row?.n) === 0 ? true : undefined;
    }, WAIT_MS);

    // spool_entries: every entry delivered once, each with its own items
    const rows = await db.all<{ id: string; recipient_item_id: string | null; sender_item_id: string | null; attempts: number }>(
      "SELECT id, recipient_item_id, sender_item_id, attempts FROM spool_entries WHERE kind = 'offline'",
    );
    assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort());
    for (const r of rows) assert.ok(r.recipient_item_id !== null && r.sender_item_id !== null, `${r.id}: both items recorded`);
    assert.equal(new Set(rows.map((r) => r.recipient_item_id)).size, rows.length, 'no two entries share a Missed Conversation');

    // the takeover, in the trace of each entry the dead node held: its worker took it, then the other node's
    let foundMade = 0;
    let takenAt = 0;
    for (const id of held) {
      const steps = await readTrace(db, id);
      const pickups = steps.filter((s) => s.step === 'picked-up').map((s) => String(s.detail.worker));
      takenAt = Math.max(takenAt, steps.filter((s) => s.step === 'picked-up').at(-1)?.at ?? 0);
      assert.equal(pickups.length, 2, `${id}: picked up twice\n${JSON.stringify(steps)}`);
      assert.ok(pickups[0]!.includes(workerOf(victimNode)) && pickups[1]!.includes(workerOf(survivorNode)), `${id}: taken by ${pickups.join(', then ')}`);
      const delivered = steps.filter((s) => s.step === 'delivered');
      assert.equal(delivered.length, 2, `${id}: the recipient's and the sender's item, recorded once each\n${JSON.stringify(steps)}`);
      if (delivered.some((s) => s.detail.mailbox === 'recipient' && s.detail.created === false)) foundMade++;
    }
    t.diagnostic(`${ids.length} entries; ${held.length} held by ${victim} when it died; of these, ${foundMade} had their Missed Conversation made already (found, not made again); the last of them taken again ${takenAt - killedAt} ms after the kill (lease ${LEASE_S} s)`);

    // EWS: one Missed Conversation per entry for each recipient, one copy per entry for each sender, none twice
    for (const recipient of RECIPIENTS) {
      const items = await conversationHistory(survivorNode, `${recipient}@${DOMAIN}`, `${recipient}-pw`, MISSED_CLASS);
      const got = items.map(spoolEntryOf).sort();
      const want = SENDERS.map((s) => entries.get(`${s} ${recipient}`)).sort();
      assert.deepEqual(got, want, `${recipient}: one Missed Conversation per entry`);
      for (const sender of SENDERS) {
        const text = textOf(sender, recipient);
        assert.equal(items.filter((i) => i.text.includes(text)).length, 1, `${recipient}: "${text}" once`);
      }
    }
    for (const sender of SENDERS) {
      const items = await conversationHistory(survivorNode, `${sender}@${DOMAIN}`, `${sender}-pw`, CONVERSATION_CLASS);
      const got = items.map(spoolEntryOf).sort();
      const want = RECIPIENTS.map((r) => entries.get(`${sender} ${r}`)).sort();
      assert.deepEqual(got, want, `${sender}: one copy per entry`);
    }
  });
});
