// Retention (issue 19): with retention of seconds, the server's own purge deletes a delivered
// offline message (entry, messages, trace) and old audit rows, while MESSAGEs keep being answered
// 202; an entry still waiting (its mailbox server is down) and a failed one (refused by its
// mailbox server) stay, with their trace. /metrics shows the database's size, the rows purged and
// the oldest kept row per kind.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runTraceCommand } from '../../src/observability/trace-cli.ts';
import { runSpoolerCommand } from '../../src/offline/cli.ts';
import { sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, runCommandHere, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let exchange: RunningServer;
let main: RunningServer;
const people = sdkClients(() => main, DOMAIN, { requestTimeoutMs: 10_000 });

before(async () => {
  // the "Exchange" of carol: svc may sign in but not impersonate, so a delivery fails at once
  exchange = await startServer({ domain: DOMAIN, users: [{ address: `carol@${DOMAIN}`, password: 'carol-pw' }, { address: `svc@${DOMAIN}`, password: 'svc-pw' }] });
  const ews = `http://${exchange.http.host}:${exchange.http.port}/EWS/Exchange.asmx`;
  main = await startServer({
    domain: DOMAIN,
    users: ['alice', 'bob', 'carol', 'dave'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
    config: {
      mailboxes: {
        servers: {
          refusing: { url: ews, username: `svc@${DOMAIN}`, password: 'svc-pw', timeout: 3 },
          // nothing listens on the discard port: every attempt fails, the entry keeps waiting
          down: { url: 'http://127.0.0.1:9/EWS/Exchange.asmx', username: `svc@${DOMAIN}`, password: 'svc-pw', timeout: 1 },
        },
        users: { [`carol@${DOMAIN}`]: 'refusing', [`dave@${DOMAIN}`]: 'down' },
      },
      offlineIm: { retryBase: 1, retryMax: 2, senderQuota: { perMinute: 100_000 } },
      retention: { delivered: '6s', audit: '3s', interval: 1, batch: 2 },
    },
  });
  const r = await runCli(['admin', ...main.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await people.closeAll();
  await main?.stop();
  await exchange?.stop();
});

interface Entry {
  state: string;
  attempts: number;
  createdAt: string;
}

// `parley spooler show` and `parley trace` run in this process (the commands' own code): the
// delivered entry is purged 6 s after its delivery, and a process start per look (seconds on a
// loaded machine) could miss the entry and its trace in between
async function entry(id: string): Promise<Entry | undefined> {
  const r = await runCommandHere(runSpoolerCommand, ['show', id, '--json', ...main.storageArgs]);
  return r.code === 0 ? (JSON.parse(r.stdout) as Entry) : undefined;
}

async function metrics(): Promise<string> {
  const res = await fetch(`http://${main.http.host}:${main.http.port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

describe('retention', () => {
  it('purges a delivered message with its trace and old audit rows while SIP goes on; keeps waiting and failed entries', { timeout: 90_000 }, async (t) => {
    const alice = await people.connect('alice');
    const send = async (to: string, text: string): Promise<string> => {
      const res = await alice.sendMessage(`sip:${to}@${DOMAIN}`, text);
      assert.equal(res.status, 202, res.headers.get('warning') ?? '');
      const id = /spool entry (sp-[a-z2-7]{16})/.exec(res.headers.get('warning') ?? '')?.[1];
      assert.ok(id);
      return id;
    };
    const failedId = await send('carol', 'to a mailbox server that refuses');
    const waitingId = await send('dave', 'to a mailbox server that is down');
    const deliveredId = await send('bob', 'to the embedded mailbox');
    // delivered, with its trace (read at once: it is purged some seconds later)
    const deliveredTrace = await eventually('bob\'s entry delivered', async () => {
      if ((await entry(deliveredId))?.state !== 'delivered') return undefined;
      return (await runCommandHere(runTraceCommand, [deliveredId, ...main.storageArgs])).stdout;
    });
    assert.match(deliveredTrace, /delivered/);
    await eventually('carol\'s entry failed', async () => ((await entry(failedId))?.state === 'failed' ? true : undefined));

    // SIP goes on while the purge runs: every MESSAGE is answered 202
    let sending = true;
    const statuses: number[] = [];
    const traffic = (async () => {
      const carrier = await people.connect('alice');
      while (sending) statuses.push((await carrier.sendMessage(`sip:bob@${DOMAIN}`, `during the purge ${statuses.length}`)).status);
    })();

    await eventually('the delivered entry purged', async () => ((await entry(deliveredId)) === undefined ? true : undefined), 30_000);
    const trace = await runCommandHere(runTraceCommand, [deliveredId, ...main.storageArgs]);
    assert.equal(trace.code, 1, `no trace rows are left: ${trace.stdout}`);
    // the counters move once a round's transaction is committed, a moment after the rows are gone
    const purged = await eventually('delivered and audit rows purged, counted', async () => {
      const text = await metrics();
      const counted = sample(text, 'parley_retention_purged_rows_total{kind="audit"}') >= 1 && sample(text, 'parley_retention_purged_rows_total{kind="delivered"}') >= 1;
      return counted ? text : undefined;
    }, 30_000);
    sending = false;
    await traffic;

    // older than the retention, and kept: the waiting entry (still retried) and the failed one (until an administrator acts)
    const waiting = await entry(waitingId);
    const failed = await entry(failedId);
    assert.equal(waiting?.state, 'waiting');
    assert.ok((waiting?.attempts ?? 0) >= 1);
    assert.equal(failed?.state, 'failed');
    for (const e of [waiting, failed]) assert.ok(Date.now() - Date.parse(e?.createdAt ?? '') > 6000, `${e?.createdAt} is older than the 6 s retention`);
    assert.match((await runCommandHere(runTraceCommand, [failedId, ...main.storageArgs])).stdout, /failed/);
    assert.match((await runCommandHere(runTraceCommand, [waitingId, ...main.storageArgs])).stdout, /retry|attempt/i);

    assert.ok(statuses.length > 0);
    assert.deepEqual(statuses.filter((s) => s !== 202), [], 'every MESSAGE during the purge answered 202');
    assert.ok(sample(purged, 'parley_database_size_bytes') > 0);
    assert.ok(sample(purged, 'parley_database_free_bytes') >= 0);
    assert.ok(sample(purged, 'parley_retention_oldest_row_age_seconds{kind="failed"}') > 0);
    t.diagnostic(`${statuses.length} MESSAGEs answered 202 while the purge ran`);
  });
});
