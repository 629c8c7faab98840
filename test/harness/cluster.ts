// A cluster of real `parley serve` processes for end-to-end tests (issue 16): one fresh PostgreSQL
// database and one private Redis (test/harness/redis.ts) shared by N nodes, each with its own data
// directory, started with `--cluster node-<i> --redis … --database …` on 127.0.0.1 and any free ports.
//
//   const cluster = await startCluster({ nodes: 3, users: [{ address: 'alice@parley.test', password: 'pw' }] });
//   after(() => cluster.stop());
//   cluster.nodes[0].tcp, cluster.nodes[1].wsUrl …    (test/harness/server.ts's RunningServer)
//   await cluster.kill(2);                             SIGKILL: node-2's announcement expires in Redis
//   await cluster.waitForNodeGone(0, 'node-2')         node 0 no longer counts node-2 as alive
//
// Users are added once, to the shared database, through the first node's admin API before the
// other nodes start. The nodes announce themselves every 3 s with a 10 s TTL
// (src/cluster/registry.ts); startCluster resolves once every node has seen every other one (its
// log says `cluster node node-<j> joined`).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type RunningServer, type StartServerOptions, type TestUser } from './server.ts';
import { freshPostgresDatabase } from './engines.ts';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from './redis.ts';

/** Enable-CsUser requests sent side by side while a cluster's users are added */
const USER_ADDS_AT_ONCE = 4;

/** Adds `users` to the shared database through `node`'s admin API (the cmdlet the CLI's `user add` runs). */
async function addUsers(node: RunningServer, users: readonly TestUser[]): Promise<void> {
  const token = (await readFile(path.join(node.dataDir, 'secrets', 'admin.token'), 'utf8')).trim();
  const add = async (user: TestUser): Promise<void> => {
    const parameters = { Identity: user.address, Password: user.password, ...(user.displayName === undefined ? {} : { DisplayName: user.displayName }) };
    const r = await fetch(`http://${node.http.host}:${node.http.port}/admin/cmdlets/Enable-CsUser`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ parameters }),
    });
    if (r.status !== 200) throw new Error(`Enable-CsUser ${user.address} answered ${r.status}: ${await r.text()}`);
  };
  for (let i = 0; i < users.length; i += USER_ADDS_AT_ONCE) await Promise.all(users.slice(i, i + USER_ADDS_AT_ONCE).map(add));
}

export interface StartClusterOptions {
  /** how many nodes (default 3) */
  readonly nodes?: number;
  /** added to the shared database before the nodes start */
  readonly users?: readonly TestUser[];
  readonly domain?: string;
  /** a config file's content for every node (the cluster settings come as flags) */
  readonly config?: object;
  /** more `serve` arguments for every node */
  readonly extraArgs?: readonly string[];
  readonly env?: StartServerOptions['env'];
  /** the nodes share a Redis Cluster of three masters (redis-cluster://…) instead of one Redis */
  readonly redisCluster?: boolean;
}

export interface TestCluster {
  /** node i runs as `node-<i>`; a killed node stays in the list (its exitStatus() says so) */
  readonly nodes: RunningServer[];
  /** `postgres://…` of the shared database */
  readonly database: string;
  /** one Redis, or a Redis Cluster when started with `redisCluster: true` (singleRedis() for the first) */
  readonly redis: TestRedis | TestRedisCluster;
  /** the node id of node i: `node-<i>` */
  nodeId(i: number): string;
  /** SIGKILL (or `signal`) to node i; its data directory stays */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** resolves once node i's log says `node` left the cluster (it withdrew, or stopped announcing itself) */
  waitForNodeGone(i: number, node: string, timeoutMs?: number): Promise<void>;
  /** stops every node, Redis, and drops the database */
  stop(): Promise<void>;
}

export async function startCluster(options: StartClusterOptions = {}): Promise<TestCluster> {
  const count = options.nodes ?? 3;
  const db = await freshPostgresDatabase();
  const redis = options.redisCluster ? await startRedisCluster() : await startRedis();
  const nodes: RunningServer[] = [];
  const nodeId = (i: number): string => `node-${i}`;
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    await db.drop();
  };
  try {
    // one after the other: the first creates the schema and the shared secrets
    for (let i = 0; i < count; i++) {
      // the users, once the first node runs: through its admin API (Enable-CsUser), a few at a
      // time (a `parley user add` each would cost a process start, seconds on a busy machine)
      if (i === 1) await addUsers(nodes[0]!, options.users ?? []);
      nodes.push(
        await startServer({
          ...(options.domain === undefined ? {} : { domain: options.domain }),
          ...(options.config === undefined ? {} : { config: options.config }),
          ...(options.env === undefined ? {} : { env: options.env }),
          // after the harness's own --database (PARLEY_TEST_DATABASE=postgres): the last one counts
          extraArgs: ['--database', db.url, '--cluster', nodeId(i), '--redis', redis.url, ...(options.extraArgs ?? [])],
        }),
      );
    }
    // ready when every node counts every other one alive (each reads the registry every 3 s)
    for (let i = 0; i < count; i++) {
      for (let j = 0; j < count; j++) if (j !== i) await nodes[i]!.waitForLog(new RegExp(`"cluster node ${nodeId(j)} joined"`), 15_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  if (count === 1) await addUsers(nodes[0]!, options.users ?? []);
  return {
    nodes,
    database: db.url,
    redis,
    nodeId,
    async kill(i, signal = 'SIGKILL') {
      await nodes[i]?.kill(signal);
    },
    async waitForNodeGone(i, node, timeoutMs = 30_000) {
      await nodes[i]?.waitForLog(new RegExp(`cluster node ${node} left`), timeoutMs);
    },
    stop,
  };
}

/** The cluster's Redis, which a test of one Redis (its socket, a restart) needs to be a single server. */
export function singleRedis(cluster: TestCluster): TestRedis {
  if (!('socket' in cluster.redis)) throw new Error('this cluster shares a Redis Cluster, not one Redis');
  return cluster.redis;
}
