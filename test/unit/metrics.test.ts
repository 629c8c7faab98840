// /metrics: who may read it (the rule for other hosts than loopback, which the e2e test's network
// namespace cannot show), and what the counters the router and the pipeline call turn into.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdminApiError } from '../../src/admin/index.ts';
import { ServerMetrics, type ServerState } from '../../src/observability/metrics.ts';
import { createMetricsAccess, type MetricsRequest } from '../../src/server/metrics-route.ts';

const TOKEN = 'metrics-token-0123456789abcdefghijkl';

function request(remoteAddress: string, headers: Record<string, string> = {}, encrypted = false): MetricsRequest {
  return { socket: { remoteAddress, encrypted } as unknown as MetricsRequest['socket'], headers };
}

/** The code and status the access check refuses with, or 'ok'. */
function outcome(check: (req: MetricsRequest) => void, req: MetricsRequest): string {
  try {
    check(req);
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof AdminApiError, String(error));
    return `${error.httpStatus} ${error.code}`;
  }
}

describe('who may read /metrics', () => {
  const access = createMetricsAccess(TOKEN, ['127.0.0.1']);
  const bearer = { authorization: `Bearer ${TOKEN}` };

  it('this host (any loopback address, IPv4, IPv6, IPv4-mapped) reads without credentials', () => {
    for (const address of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1']) assert.equal(outcome(access, request(address)), 'ok', address);
  });

  it('another host over plain HTTP is refused 403 INSECURE_TRANSPORT, even with the right token: it would travel in clear', () => {
    assert.equal(outcome(access, request('192.0.2.7')), '403 INSECURE_TRANSPORT');
    assert.equal(outcome(access, request('192.0.2.7', bearer)), '403 INSECURE_TRANSPORT');
    assert.equal(outcome(access, request('::ffff:192.0.2.7', bearer)), '403 INSECURE_TRANSPORT');
  });

  it('another host over TLS needs the admin token: none or a wrong one is 401 UNAUTHORIZED with a Bearer challenge', () => {
    assert.equal(outcome(access, request('192.0.2.7', {}, true)), '401 UNAUTHORIZED');
    assert.equal(outcome(access, request('192.0.2.7', { authorization: 'Bearer not-the-token' }, true)), '401 UNAUTHORIZED');
    assert.equal(outcome(access, request('192.0.2.7', bearer, true)), 'ok');
    try {
      access(request('2001:db8::7', {}, true));
      assert.fail('refused');
    } catch (error) {
      assert.ok(error instanceof AdminApiError);
      assert.match(error.headers['www-authenticate'] ?? '', /^Bearer realm=/);
      assert.match(error.message, /\/metrics from another host than this one needs Authorization: Bearer <token>.*secrets\/admin\.token/);
    }
  });

  it('a trusted proxy on loopback speaks for the client it names in X-Forwarded-For: that client needs the token', () => {
    const forwarded = { 'x-forwarded-for': '192.0.2.7' };
    assert.equal(outcome(access, request('127.0.0.1', forwarded)), '401 UNAUTHORIZED');
    assert.equal(outcome(access, request('127.0.0.1', { ...forwarded, ...bearer })), 'ok');
    // a proxy the operator did not name is the client itself: X-Forwarded-For from it means nothing
    assert.equal(outcome(access, request('127.0.0.5', forwarded)), 'ok');
    assert.equal(outcome(createMetricsAccess(TOKEN, []), request('127.0.0.1', forwarded)), 'ok');
  });
});

const QUIET: ServerState = {
  registrations: () => new Map([['tcp', 2]]),
  connections: () => new Map([['ws', 1]]),
  spool: async () => ({ byState: { waiting: 1, delivering: 0, delivered: 3, failed: 0 }, oldestWaitingCreatedAt: 1_000 }),
  subscriptions: () => new Map([['presence', 4]]),
  subscriptionAdmissions: () => ({ refusedPerWatcher: 1, refusedPerResource: 0, replaced: 2 }),
  spoolQuotaRefusals: () => ({ 'sender-bytes': 3, 'recipient-messages': 0 }),
  mailboxQuotaRefusals: () => ({ ProhibitSendQuota: 0, ProhibitSendReceiveQuota: 1, RecoverableItemsQuota: 0 }),
  signIn: () => ({ failures: 5, lockouts: { source: 1, account: 0 }, lockedNow: { source: 1, account: 0 } }),
  database: async () => ({ bytes: 40_960, freeBytes: 4_096 }),
  retention: () => ({ purged: { delivered: 7, trace: 21 }, oldest: { delivered: 11_000, failed: null } }),
  now: () => 31_000,
};

function line(text: string, sample: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${sample} `));
  assert.ok(found !== undefined, `${sample} in:\n${text}`);
  return Number(found.slice(sample.length + 1));
}

describe('ServerMetrics', () => {
  it('counts requests per method and responses per status class; an unknown method counts as other, not as a new label', async () => {
    const metrics = new ServerMetrics(QUIET);
    metrics.request('REGISTER');
    metrics.response('REGISTER', 401);
    metrics.request('REGISTER');
    metrics.response('REGISTER', 200);
    metrics.request('XYZZY');
    metrics.response('XYZZY', 405);
    metrics.message('stored');
    const text = await metrics.render();
    assert.equal(line(text, 'parley_sip_requests_total{method="REGISTER"}'), 2);
    assert.equal(line(text, 'parley_sip_responses_total{method="REGISTER",status_class="2xx"}'), 1);
    assert.equal(line(text, 'parley_sip_responses_total{method="REGISTER",status_class="4xx"}'), 1);
    assert.equal(line(text, 'parley_sip_requests_total{method="other"}'), 1);
    assert.equal(line(text, 'parley_sip_responses_total{method="other",status_class="4xx"}'), 1);
    assert.doesNotMatch(text, /XYZZY/);
    assert.equal(line(text, 'parley_sip_messages_total{outcome="stored"}'), 1);
    assert.equal(line(text, 'parley_sip_messages_total{outcome="relayed"}'), 0);
  });

  it('in a cluster, reports this node\'s bindings as parley_registrations and every node\'s as parley_cluster_registrations', async () => {
    const metrics = new ServerMetrics({ ...QUIET, clusterRegistrations: async () => new Map([['tcp', 5], ['ws', 3]]) });
    const text = await metrics.render();
    assert.equal(line(text, 'parley_registrations{transport="tcp"}'), 2);
    assert.equal(line(text, 'parley_cluster_registrations{transport="tcp"}'), 5);
    assert.equal(line(text, 'parley_cluster_registrations{transport="ws"}'), 3);
    assert.equal(line(text, 'parley_cluster_registrations{transport="udp"}'), 0);
  });

  it('reads what the capabilities keep at scrape time', async () => {
    const metrics = new ServerMetrics(QUIET);
    metrics.batch('embedded', 2, 1, 0.02);
    metrics.ewsRequest('FindItem', false);
    metrics.connectionEvent('SIP_CONNECTION_SOURCE_LIMIT');
    const text = await metrics.render();
    assert.equal(line(text, 'parley_registrations{transport="tcp"}'), 2);
    assert.equal(line(text, 'parley_registrations{transport="udp"}'), 0);
    assert.equal(line(text, 'parley_sip_connections{transport="ws"}'), 1);
    assert.equal(line(text, 'parley_offline_spool_entries{state="delivered"}'), 3);
    assert.equal(line(text, 'parley_offline_spool_oldest_waiting_age_seconds'), 30);
    assert.equal(line(text, 'parley_database_size_bytes'), 40_960);
    assert.equal(line(text, 'parley_database_free_bytes'), 4_096);
    assert.equal(line(text, 'parley_retention_purged_rows_total{kind="trace"}'), 21);
    assert.equal(line(text, 'parley_retention_oldest_row_age_seconds{kind="delivered"}'), 20);
    assert.equal(line(text, 'parley_retention_oldest_row_age_seconds{kind="failed"}'), 0);
    assert.equal(line(text, 'parley_subscriptions{package="presence"}'), 4);
    assert.equal(line(text, 'parley_subscription_limit_events_total{outcome="refused",limit="maxSubscriptionsPerWatcher"}'), 1);
    assert.equal(line(text, 'parley_subscription_limit_events_total{outcome="replaced",limit="maxSubscriptionsPerWatcherResource"}'), 2);
    assert.equal(line(text, 'parley_offline_quota_refusals_total{reason="sender-bytes"}'), 3);
    assert.equal(line(text, 'parley_mailbox_quota_refusals_total{limit="ProhibitSendReceiveQuota"}'), 1);
    assert.equal(line(text, 'parley_signin_failures_total'), 5);
    assert.equal(line(text, 'parley_signin_lockouts_total{kind="source"}'), 1);
    assert.equal(line(text, 'parley_signin_locked{kind="source"}'), 1);
    assert.equal(line(text, 'parley_offline_delivery_attempts_total{connector="embedded",outcome="ok"}'), 2);
    assert.equal(line(text, 'parley_offline_delivery_attempts_total{connector="embedded",outcome="failed"}'), 1);
    assert.equal(line(text, 'parley_offline_delivery_duration_seconds_count{connector="embedded"}'), 1);
    assert.equal(line(text, 'parley_ews_requests_total{operation="FindItem",outcome="ok"}'), 1);
    assert.equal(line(text, 'parley_sip_connection_guard_events_total{code="SIP_CONNECTION_SOURCE_LIMIT"}'), 1);
    assert.doesNotMatch(text, /parley_cluster_registrations/, 'one process: no cluster gauge');
    // a second scrape reads the same, not twice as much
    assert.equal(line(await metrics.render(), 'parley_offline_quota_refusals_total{reason="sender-bytes"}'), 3);
  });
});
