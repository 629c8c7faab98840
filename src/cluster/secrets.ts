// The secrets every node of a cluster must share, kept in PostgreSQL (the one durable store the
// nodes share; Redis may lose everything at a restart): the digest nonce key, so a challenge from
// node A is answered at node B after a failover, the cluster key that signs hop tokens, and the key
// of the dialog proxy's flow tokens (a partner's in-dialog request may reach any node). The
// first node to start makes each one (insert if absent); every other node, now or later, reads the
// same. No file to copy between machines, no manual step. Only cluster mode creates the table: a
// single process keeps its nonce key in its data directory as before.

import { randomBytes } from 'node:crypto';
import type { MigrationSet, Sql } from '../storage/index.ts';

export const CLUSTER_MIGRATIONS: MigrationSet = {
  capability: 'cluster',
  migrations: [
    {
      id: '001-cluster-secrets',
      up: {
        sqlite: 'CREATE TABLE cluster_secrets (name TEXT NOT NULL PRIMARY KEY, secret BLOB NOT NULL) STRICT, WITHOUT ROWID;',
        postgres: 'CREATE TABLE cluster_secrets (name TEXT NOT NULL PRIMARY KEY, secret BYTEA NOT NULL);',
      },
    },
  ],
};

/** The secret `name` (e.g. `nonce.key`), made by whichever node asks first; `bytes` random bytes. */
export async function clusterSecret(sql: Sql, name: string, bytes = 32): Promise<Buffer> {
  await sql.run('INSERT INTO cluster_secrets (name, secret) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [name, randomBytes(bytes)]);
  const row = await sql.get<{ secret: Uint8Array }>('SELECT secret FROM cluster_secrets WHERE name = ?', [name]);
  if (row === undefined) throw new Error(`the cluster secret ${name} was written but cannot be read back`);
  return Buffer.from(row.secret);
}
