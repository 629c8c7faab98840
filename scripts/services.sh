#!/usr/bin/env bash
# Starts the machine's PostgreSQL and Redis when they are not running: the storage tests run every
# repository on PostgreSQL as well as SQLite, and the cluster tests use both. This machine kind
# starts them at boot; a new machine (CI) may not have. Installed by scripts/install-test-deps.sh
# (Debian packages postgresql and redis-server).
#
# PostgreSQL is reached through its Unix socket (/var/run/postgresql), which the tests' private
# network namespace can also use, as the `postgres` role (PARLEY_TEST_POSTGRES names another).
# Idempotent; as root, or as a user allowed to run the two servers.
set -euo pipefail

log() { printf 'services: %s\n' "$*"; }

if ! pg_isready -q -h /var/run/postgresql; then
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 50); do pg_isready -q -h /var/run/postgresql && break; sleep 0.2; done
fi
pg_isready -h /var/run/postgresql >/dev/null || { log "PostgreSQL does not answer on /var/run/postgresql" >&2; exit 1; }
log "PostgreSQL ready ($(psql -h /var/run/postgresql -U postgres -d postgres -Atc 'SHOW server_version' 2>/dev/null || echo 'as postgres: no access; set PARLEY_TEST_POSTGRES'))"
# the databases a test process left behind when it was killed (each test drops its own when it
# ends): parley_test_<pid>_<random>, dropped once that process is gone
for db in $(psql -h /var/run/postgresql -U postgres -d postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'parley\_test\_%'" 2>/dev/null); do
  pid=$(echo "$db" | cut -d_ -f3)
  if ! kill -0 "$pid" 2>/dev/null; then
    psql -h /var/run/postgresql -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
done

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
log "Redis ready ($(redis-cli -h 127.0.0.1 -p 6379 ping))"
