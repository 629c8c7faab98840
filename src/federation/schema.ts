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
      up: {
        sqlite: `CREATE TABLE access_edge_configuration (
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
        postgres: `CREATE TABLE access_edge_configuration (
  id BIGINT PRIMARY KEY CHECK (id = 1),
  allow_federated_users BIGINT NOT NULL,
  enable_partner_discovery BIGINT NOT NULL,
  default_route_fqdn TEXT
);
INSERT INTO access_edge_configuration (id, allow_federated_users, enable_partner_discovery, default_route_fqdn) VALUES (1, 0, 0, NULL);
CREATE TABLE federation_domains (
  domain TEXT NOT NULL PRIMARY KEY,
  list TEXT NOT NULL CHECK (list IN ('allowed', 'blocked')),
  proxy_fqdn TEXT,
  comment TEXT,
  created_at BIGINT NOT NULL,
  CHECK (list = 'allowed' OR proxy_fqdn IS NULL)
);`,
      },
    },
    {
      id: '002-federation-version',
      // moved by every write of the federation tables, whichever process or node writes: the
      // router's cache of the organisation's decisions (decision.ts) starts over when it moves
      up: {
        sqlite: `CREATE TABLE federation_version (v INTEGER NOT NULL) STRICT;
INSERT INTO federation_version (v) VALUES (0);
CREATE TRIGGER federation_version_edge AFTER UPDATE ON access_edge_configuration BEGIN UPDATE federation_version SET v = v + 1; END;
CREATE TRIGGER federation_version_domain_insert AFTER INSERT ON federation_domains BEGIN UPDATE federation_version SET v = v + 1; END;
CREATE TRIGGER federation_version_domain_update AFTER UPDATE ON federation_domains BEGIN UPDATE federation_version SET v = v + 1; END;
CREATE TRIGGER federation_version_domain_delete AFTER DELETE ON federation_domains BEGIN UPDATE federation_version SET v = v + 1; END;`,
        postgres: `CREATE TABLE federation_version (v BIGINT NOT NULL);
INSERT INTO federation_version (v) VALUES (0);
CREATE FUNCTION federation_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE federation_version SET v = v + 1;
  PERFORM pg_notify('parley_version', 'federation_version');
  RETURN NULL;
END
$$;
CREATE TRIGGER federation_version_edge AFTER INSERT OR UPDATE OR DELETE ON access_edge_configuration FOR EACH STATEMENT EXECUTE FUNCTION federation_version_bump();
CREATE TRIGGER federation_version_domains AFTER INSERT OR UPDATE OR DELETE ON federation_domains FOR EACH STATEMENT EXECUTE FUNCTION federation_version_bump();`,
      },
    },
  ],
};
