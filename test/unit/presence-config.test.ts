// presence.publishExpiry and presence.subscribeExpiry, and the limits on subscriptions (events.*),
// in the config file: defaults, merged key by key, checked at start-up with messages that name the
// setting.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/server/config.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-presence-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function file(content: unknown): string {
  const p = path.join(dir, `c${++n}.json`);
  writeFileSync(p, JSON.stringify(content));
  return p;
}

describe('presence configuration', () => {
  it('defaults to RFC 3903 and RFC 3856 advice: one hour, between one minute and two hours', () => {
    const c = loadConfig(undefined, {});
    assert.deepEqual(c.presence, { publishExpiry: { min: 60, max: 7200, default: 3600 }, subscribeExpiry: { min: 60, max: 7200, default: 3600 } });
    assert.ok(Object.isFrozen(c.presence.publishExpiry));
  });

  it('merges each duration key by key over the defaults', () => {
    const c = loadConfig(file({ presence: { publishExpiry: { default: 600 }, subscribeExpiry: { min: 30, max: 900, default: 300 } } }), {});
    assert.deepEqual(c.presence.publishExpiry, { min: 60, max: 7200, default: 600 });
    assert.deepEqual(c.presence.subscribeExpiry, { min: 30, max: 900, default: 300 });
  });

  it('refuses unknown keys, bad numbers and durations that do not hold together', () => {
    assert.throws(() => loadConfig(file({ presence: { publishExpires: {} } }), {}), (e: unknown) => e instanceof ConfigError && /unknown setting config\.presence\.publishExpires/.test(e.message));
    assert.throws(() => loadConfig(file({ presence: { publishExpiry: { minimum: 1 } } }), {}), /unknown setting config\.presence\.publishExpiry\.minimum; known: min, max, default/);
    assert.throws(() => loadConfig(file({ presence: { subscribeExpiry: { min: 0 } } }), {}), /config\.presence\.subscribeExpiry\.min must be a number from 1/);
    assert.throws(() => loadConfig(file({ presence: { subscribeExpiry: { max: 300 } } }), {}), /presence\.subscribeExpiry must have min ≤ default ≤ max/);
    assert.throws(() => loadConfig(file({ presence: 7 }), {}), /config\.presence must be an object/);
  });
});

describe('subscription limits configuration', () => {
  it('defaults to 16 per watcher and resource, 3000 per watcher, 10000 per resource; merges key by key', () => {
    assert.deepEqual(loadConfig(undefined, {}).events, { maxSubscriptionsPerWatcherResource: 16, maxSubscriptionsPerWatcher: 3000, maxSubscriptionsPerResource: 10_000 });
    const c = loadConfig(file({ events: { maxSubscriptionsPerWatcher: 50 } }), {});
    assert.deepEqual(c.events, { maxSubscriptionsPerWatcherResource: 16, maxSubscriptionsPerWatcher: 50, maxSubscriptionsPerResource: 10_000 });
    assert.ok(Object.isFrozen(c.events));
  });

  it('refuses what is not a whole number in range, and a per-pair limit above a total', () => {
    assert.throws(() => loadConfig(file({ events: { maxSubscriptionsPerWatcher: 0 } }), {}), (e: unknown) => e instanceof ConfigError && /config\.events\.maxSubscriptionsPerWatcher must be a whole number from 1 to 1000000, not 0/.test(e.message));
    assert.throws(() => loadConfig(file({ events: { maxSubscriptionsPerWatcherResource: 2.5 } }), {}), /config\.events\.maxSubscriptionsPerWatcherResource must be a whole number/);
    assert.throws(() => loadConfig(file({ events: { maxSubscriptions: 5 } }), {}), /unknown setting config\.events\.maxSubscriptions; known: maxSubscriptionsPerWatcherResource/);
    assert.throws(() => loadConfig(file({ events: { maxSubscriptionsPerWatcherResource: 20, maxSubscriptionsPerWatcher: 10 } }), {}), /events\.maxSubscriptionsPerWatcherResource must not exceed events\.maxSubscriptionsPerWatcher/);
    assert.throws(() => loadConfig(file({ events: { maxSubscriptionsPerResource: 8 } }), {}), /must not exceed events\.maxSubscriptionsPerResource/);
  });
});
