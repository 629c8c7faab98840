#!/usr/bin/env bash
# Every end-to-end and interop test again with every server on PostgreSQL (PARLEY_TEST_DATABASE=
# postgres: a fresh database per server, the CLI commands with --database). The unit tests already
# run each repository on both engines in the test command; this is the same e2e suite a second
# time, about as long as the first (≈9 minutes here), which the test command's budget does not
# hold: `npm test` runs the PostgreSQL pass on a part of the suite (scripts/test.sh), this on all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
bash scripts/services.sh
PARLEY_TEST_DATABASE=postgres bash scripts/netns-run.sh node --test --test-reporter=spec --test-concurrency=2 'test/e2e/**/*.test.ts'
