// The cluster block of the configuration (issue 16): `cluster` in the file, `--cluster NODE-ID
// --redis URL` on the command line, and what start-up refuses before anything is opened.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { checkStartup } from '../../src/server/check-config.ts';
import { loadConfig } from '../../src/server/config.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-cluster-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const PG = 'postgres://parley@db.example.com/parley';

function file(content: object): string {
  const p = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify(content));
  return p;
}

describe('cluster configuration', () => {
  it('is off by default: one process, nothing of Redis', () => {
    assert.equal(loadConfig(undefined, {}).cluster, null);
    assert.equal(loadConfig(file({ cluster: null }), {}).cluster, null);
  });

  it('comes from the file, sipAddress defaulting to null', () => {
    const c = loadConfig(file({ database: PG, cluster: { nodeId: 'node-a', redis: 'redis://10.0.0.9:6379' } }), {});
    assert.deepEqual(c.cluster, { nodeId: 'node-a', redis: 'redis://10.0.0.9:6379', sipAddress: null });
    const withAddress = loadConfig(file({ database: PG, cluster: { nodeId: 'a', redis: { host: '10.0.0.9' }, sipAddress: '10.0.0.5:5060' } }), {});
    assert.deepEqual(withAddress.cluster, { nodeId: 'a', redis: { host: '10.0.0.9' }, sipAddress: '10.0.0.5:5060' });
    const onRedisCluster = loadConfig(file({ database: PG, cluster: { nodeId: 'a', redis: 'redis-cluster://10.0.0.9:7000,10.0.0.10:7000' } }), {});
    assert.equal(onRedisCluster.cluster?.redis, 'redis-cluster://10.0.0.9:7000,10.0.0.10:7000');
  });

  it('comes from --cluster NODE-ID --redis URL, over the file', () => {
    assert.deepEqual(loadConfig(undefined, { database: PG, clusterNode: 'node-b', redis: 'unix:///run/redis.sock' }).cluster, { nodeId: 'node-b', redis: 'unix:///run/redis.sock', sipAddress: null });
    const over = loadConfig(file({ database: PG, cluster: { nodeId: 'node-a', redis: 'redis://r1', sipAddress: '[2001:db8::5]:5060' } }), { clusterNode: 'node-c' });
    assert.deepEqual(over.cluster, { nodeId: 'node-c', redis: 'redis://r1', sipAddress: '[2001:db8::5]:5060' });
  });

  it('needs PostgreSQL', () => {
    assert.throws(() => loadConfig(undefined, { clusterNode: 'node-a', redis: 'redis://r1' }), /cluster mode needs database: postgres:\/\/…/);
    assert.throws(() => loadConfig(file({ cluster: { nodeId: 'node-a', redis: 'redis://r1' } }), {}), /cluster mode needs database: postgres:\/\/…/);
  });

  it('needs both a node id and a Redis address', () => {
    assert.throws(() => loadConfig(undefined, { database: PG, clusterNode: 'node-a' }), /needs the Redis the nodes share, for node node-a: cluster\.redis in the config file, or --redis/);
    assert.throws(() => loadConfig(undefined, { database: PG, redis: 'redis://r1' }), /needs this node's id: cluster\.nodeId in the config file, or --cluster NODE-ID/);
    assert.throws(() => loadConfig(file({ database: PG, cluster: { redis: 'redis://r1' } }), {}), /needs this node's id/);
  });

  it('refuses a node id that cannot be part of Redis keys, a Redis address it cannot read, a bad sipAddress, an unknown key', () => {
    assert.throws(() => loadConfig(undefined, { database: PG, clusterNode: 'node a', redis: 'redis://r1' }), /--cluster: a node id must be 1 to 64 letters, digits, dots, dashes or underscores/);
    assert.throws(() => loadConfig(file({ database: PG, cluster: { nodeId: 'a:b', redis: 'redis://r1' } }), {}), /config\.cluster\.nodeId: a node id must be/);
    assert.throws(() => loadConfig(file({ database: PG, cluster: { nodeId: 7, redis: 'redis://r1' } }), {}), /config\.cluster\.nodeId must be a text/);
    assert.throws(() => loadConfig(undefined, { database: PG, clusterNode: 'a', redis: 'http://r1' }), /--redis has the scheme http:/);
    assert.throws(() => loadConfig(file({ database: PG, cluster: { nodeId: 'a', redis: { host: 'r1', port: 70000 } } }), {}), /config\.cluster\.redis\.port must be a port number/);
    assert.throws(() => loadConfig(file({ database: PG, cluster: { nodeId: 'a', redis: 'redis://r1', sipAddress: '10.0.0.5' } }), {}), /config\.cluster\.sipAddress must be the host:port the other nodes reach/);
    assert.throws(() => loadConfig(file({ database: PG, cluster: { nodeId: 'a', redis: 'redis://r1', sipAddress: '0.0.0.0:5060' } }), {}), /sipAddress must be the host:port/);
    assert.throws(() => loadConfig(file({ database: PG, cluster: { nodeId: 'a', redis: 'redis://r1', node: 'x' } }), {}), /unknown setting config\.cluster\.node; known: nodeId, redis, sipAddress/);
  });

  it('is described by check-config, without the Redis password', () => {
    const lines = checkStartup(loadConfig(undefined, { dataDir: dir, database: PG, clusterNode: 'node-a', redis: 'redis://:s3cret@10.0.0.9:6379', sipPort: 5070 }));
    const line = lines.find((l) => l.startsWith('cluster: ')) ?? '';
    assert.match(line, /^cluster: node node-a, Redis redis:\/\/:\*\*\*@10\.0\.0\.9:6379, other nodes relay to 127\.0\.0\.1:5070/);
    assert.doesNotMatch(line, /s3cret/);
    assert.ok(checkStartup(loadConfig(undefined, { dataDir: dir })).includes('cluster: off (one process)'));
  });
});
