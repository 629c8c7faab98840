#!/usr/bin/env bash
# Every test, in tiers: type-check, unit tests (no sockets), then end-to-end and interop tests
# against a real `parley serve` inside a private network namespace that has only loopback.
# Run through `npm test`, which puts the pinned Node 24 (node_modules/.bin) first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
bash scripts/services.sh

echo "== type-check (tsc --noEmit; the web client's browser code with its own DOM/JSX config)"
tsc --noEmit
tsc --noEmit -p src/web/app

echo "== unit tests"
# two files at a time: the PostgreSQL half of the storage suites mostly waits on the server
node --test --test-reporter=spec --test-concurrency=2 'test/unit/**/*.test.ts'

echo "== end-to-end and interop tests (private network namespace, loopback only)"
bash scripts/netns-run.sh node --test --test-reporter=spec --test-concurrency=2 'test/e2e/**/*.test.ts'

# The same tests with the servers on PostgreSQL (the unit tests ran every repository on both
# engines already): the files that cover each capability's storage end to end. The whole suite on
# PostgreSQL is `npm run test:postgres` (as long again as the pass above).
echo "== end-to-end tests with the servers on PostgreSQL (a part; all of them: npm run test:postgres)"
PARLEY_TEST_DATABASE=postgres bash scripts/netns-run.sh node --test --test-reporter=spec --test-concurrency=2 \
  test/e2e/im.test.ts test/e2e/offline-im.test.ts test/e2e/presence-lists.test.ts test/e2e/ews-interop.test.ts \
  test/e2e/ews-smtp.test.ts test/e2e/admin-api.test.ts test/e2e/admin-cli.test.ts test/e2e/federation-refusals.test.ts \
  test/e2e/security-signin.test.ts test/e2e/web-api-session.test.ts test/e2e/demo-users.test.ts

# Benchmarks are measurements, not assertions: the smoke run (every scenario, one short step at a
# low rate, under a minute) proves the harness works against both servers and prints its table;
# `npm run bench` makes the numbers to quote in bench/RESULTS.md.
echo "== benchmarks (smoke run: the harness works; nothing measured, nothing asserted)"
bash scripts/install-bench-deps.sh
bench_out=$(mktemp -d)
bash scripts/netns-run.sh node bench/run.ts --smoke --out "$bench_out"
cat "$bench_out/RESULTS.md"
rm -rf "$bench_out"
