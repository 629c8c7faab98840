// Issue 19, /metrics (and issue 18's last point: quota refusals visible in the metrics). Real work
// against a real `parley serve` — REGISTER over TCP and WebSocket through the SDK, a relayed
// MESSAGE, an offline one (202), one refused by a small spool quota (480), a subscription, EWS
// requests, a delivery to the embedded mailbox — then GET /metrics: `promtool check metrics`
// (Debian package prometheus, scripts/install-test-deps.sh) accepts the text without a lint
// complaint, and the numbers moved as the work says. The access rule for other hosts than
// loopback is tested in test/unit/metrics.test.ts: this network namespace has loopback only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const USERS = ['alice', 'bob', 'carol', 'dave'];
const CONFIG = {
  messaging: { deviceTimeout: 1 },
  // one waiting message per sender: the second offline message is refused (sender-messages)
  offlineIm: { senderQuota: { maxBytes: '1MB', maxMessages: 1, perMinute: 20 } },
};

let server: RunningServer;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({ domain: DOMAIN, users: USERS.map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })), config: CONFIG });
  // nothing is delivered while the counts below are taken; shortened later to deliver
  await admin('Set-CsImConfiguration', '-OfflineImPickupDelay', '00:10:00');
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

async function admin(...args: string[]): Promise<string> {
  const r = await runCli(['admin', ...server.storageArgs, ...args]);
  assert.equal(r.code, 0, `parley admin ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function scrape(init: RequestInit = {}): Promise<Response> {
  return fetch(`http://${server.http.host}:${server.http.port}/metrics`, init);
}

/** The samples of the text: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    found.set(m[1] as string, Number(m[2]));
  }
  return found;
}

function value(all: Map<string, number>, key: string): number {
  const v = all.get(key);
  assert.ok(v !== undefined, `${key} is in /metrics`);
  return v;
}

describe('/metrics', () => {
  let text = '';

  it('after real work, GET /metrics from loopback answers the Prometheus text format without credentials', async () => {
    const alice = await people.connect('alice', { register: true });
    const bob = await people.connect('bob', { over: 'ws', register: true });
    assert.equal((await alice.sendMessage(`sip:bob@${DOMAIN}`, 'hello bob')).status, 200, 'relayed to bob');
    assert.equal((await alice.sendMessage(`sip:carol@${DOMAIN}`, 'carol is offline')).status, 202, 'stored for carol');
    const refused = await alice.sendMessage(`sip:dave@${DOMAIN}`, 'over the quota');
    assert.equal(refused.status, 480, 'refused by offlineIm.senderQuota.maxMessages');
    assert.match(refused.headers.get('warning') ?? '', /offlineIm\.senderQuota\.maxMessages/);
    await bob.watchMessageSummary();
    await bob.watchProvisioning();
    assert.deepEqual(await bob.missedConversations({ ewsUrl: `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx` }), []);

    const res = await scrape();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    text = await res.text();
  });

  it('promtool check metrics accepts the text, with no lint complaint', () => {
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    assert.equal(check.error, undefined, `promtool runs (scripts/install-test-deps.sh installs it): ${String(check.error)}`);
    assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint complaint');
  });

  it('the numbers moved as the work says', () => {
    const all = samples(text);
    assert.equal(value(all, 'parley_registrations{transport="tcp"}'), 1);
    assert.equal(value(all, 'parley_registrations{transport="ws"}'), 1);
    assert.equal(value(all, 'parley_registrations{transport="udp"}'), 0);
    assert.ok(value(all, 'parley_sip_connections{transport="tcp"}') >= 1);
    assert.ok(value(all, 'parley_sip_connections{transport="ws"}') >= 1);
    assert.equal(value(all, 'parley_sip_messages_total{outcome="relayed"}'), 1);
    assert.equal(value(all, 'parley_sip_messages_total{outcome="stored"}'), 1);
    assert.equal(value(all, 'parley_sip_messages_total{outcome="refused"}'), 1);
    assert.equal(value(all, 'parley_offline_quota_refusals_total{reason="sender-messages"}'), 1);
    assert.equal(value(all, 'parley_offline_quota_refusals_total{reason="sender-bytes"}'), 0);
    assert.equal(value(all, 'parley_mailbox_quota_refusals_total{limit="ProhibitSendReceiveQuota"}'), 0);
    // three MESSAGEs answered 200, 202 and 480, and the digest challenges (407) before them: every
    // request counted is answered once
    const messages = value(all, 'parley_sip_requests_total{method="MESSAGE"}');
    assert.ok(messages >= 3);
    assert.equal(value(all, 'parley_sip_responses_total{method="MESSAGE",status_class="2xx"}'), 2);
    assert.equal(value(all, 'parley_sip_responses_total{method="MESSAGE",status_class="4xx"}'), messages - 2);
    assert.ok(value(all, 'parley_sip_requests_total{method="REGISTER"}') >= 2);
    assert.ok(value(all, 'parley_sip_responses_total{method="REGISTER",status_class="2xx"}') >= 2);
    assert.ok(value(all, 'parley_sip_requests_total{method="SUBSCRIBE"}') >= 1);
    assert.equal(value(all, 'parley_subscriptions{package="message-summary"}'), 1);
    assert.equal(value(all, 'parley_subscriptions{package="vnd-parley-provisioning"}'), 1);
    assert.equal(value(all, 'parley_offline_spool_entries{state="waiting"}'), 1);
    assert.equal(value(all, 'parley_offline_spool_entries{state="delivered"}'), 0);
    assert.ok(value(all, 'parley_offline_spool_oldest_waiting_age_seconds') >= 0);
    assert.ok(value(all, 'parley_ews_requests_total{operation="FindItem",outcome="ok"}') >= 1);
    assert.equal(value(all, 'parley_signin_failures_total'), 0);
    assert.equal(value(all, 'parley_signin_locked{kind="source"}'), 0);
    assert.equal(value(all, 'parley_subscription_limit_events_total{outcome="refused",limit="maxSubscriptionsPerWatcher"}'), 0);
    // prom-client's process and Node metrics, with the prefix: heap and event-loop lag
    assert.ok(value(all, 'parley_nodejs_heap_size_used_bytes') > 0);
    assert.ok(all.has('parley_nodejs_eventloop_lag_seconds'));
    assert.ok(value(all, 'parley_process_resident_memory_bytes') > 0);
  });

  it('a delivery to the embedded mailbox counts as an attempt of that connector, with its latency', async () => {
    await admin('Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01');
    // the pickup time of an entry is fixed when it is made; bring the waiting one forward
    const list = await runCli(['spooler', 'list', '--state', 'waiting', '--json', ...server.storageArgs]);
    for (const e of JSON.parse(list.stdout) as Array<{ id: string }>) assert.equal((await runCli(['spooler', 'retry', e.id, ...server.storageArgs])).code, 0);
    const all = await eventually('the entry delivered', async () => {
      const found = samples(await (await scrape()).text());
      return found.get('parley_offline_spool_entries{state="delivered"}') === 1 ? found : undefined;
    }, 20_000);
    // the Missed Conversation to carol and the copy in alice's mailbox
    assert.equal(value(all, 'parley_offline_delivery_attempts_total{connector="embedded",outcome="ok"}'), 2);
    assert.ok(value(all, 'parley_offline_delivery_duration_seconds_count{connector="embedded"}') >= 1);
    assert.equal(value(all, 'parley_offline_spool_entries{state="waiting"}'), 0);
    assert.equal(value(all, 'parley_offline_spool_oldest_waiting_age_seconds'), 0);
  });

  it('other methods than GET are refused with problem JSON', async () => {
    const res = await scrape({ method: 'POST', body: 'x' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    const problem = (await res.json()) as { code: string; status: number };
    assert.equal(problem.code, 'METHOD_NOT_ALLOWED');
    assert.equal(problem.status, 405);
  });
});
