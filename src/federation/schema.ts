// The federation tables (issue 15). Run after SETTINGS_MIGRATIONS (the decision reads the users'
// effective CsExternalAccessPolicy) and DIRECTORY_MIGRATIONS.
import type { MigrationSet } from '../storage/index.ts';

export const FEDERATION_MIGRATIONS: MigrationSet = {
  capability: 'federation',
  migrations: [
    {
      id: '001-federation',
      // access_edge_configuration: CsAccessEdgeConfiguration, Global only, so exactly one row.
      // federation_domains: the allowed and the blocked lists in one table, so that a domain is
      // on at most one of them by its primary key, not by a check every writer must remember.
      up: `CREATE TABLE access_edge_configuration (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  allow_federated_users INTEGER NOT NULL,
  enable_partner_discovery INTEGER NOT NULL,
  default_route_fqdn TEXT
) STRICT;
INSERT INTO access_edge_configuration (id, allow_federated_users, enable_partner_discovery, default_route_fqdn) VALUES (1, 0, 0, NULL);
CREATE TABLE federation_domains (
  domain TEXT NOT NULL PRIMARY KEY,
  list TEXT NOT NULL CHECK (list IN ('allowed', 'blocked')),
  proxy_fqdn TEXT,
  comment TEXT,
  created_at INTEGER NOT NULL,
  CHECK (list = 'allowed' OR proxy_fqdn IS NULL)
) STRICT;`,
    },
  ],
};
