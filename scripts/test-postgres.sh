#!/usr/bin/env bash
# The end-to-end and interop tests with every server on PostgreSQL only: the test command's
# PostgreSQL pass (scripts/test.sh runs it beside the SQLite pass) alone, to look into a failure on
# that engine without the rest. Files can be named: npm run test:postgres -- test/e2e/im.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
bash scripts/services.sh
bash scripts/test-e2e.sh postgres "$@"
