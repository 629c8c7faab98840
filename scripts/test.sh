#!/usr/bin/env bash
# Every test, in tiers: type-check, unit tests (no sockets), then end-to-end and interop tests
# against a real `parley serve` inside a private network namespace that has only loopback.
# Run through `npm test`, which puts the pinned Node 24 (node_modules/.bin) first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
bash scripts/services.sh

# Every test file and every `parley` the tests start (each a new process) compiles the same modules:
# with Node's compile cache, one for the whole run, only the first does the whole work (a start
# after it takes about half the CPU).
compile_cache=$(mktemp -d)
trap 'rm -rf "$compile_cache"' EXIT
export NODE_COMPILE_CACHE="$compile_cache"

echo "== type-check (tsc --noEmit; the web client's browser code with its own DOM/JSX config)"
tsc --noEmit
tsc --noEmit -p src/web/app

echo "== unit tests"
# two files at a time: the PostgreSQL half of the storage suites mostly waits on the server
# a test that hangs fails after 5 minutes instead of holding the run (none takes a minute). Not
# --test-force-exit: it ends a file once the tests known so far are done, before the ones its
# suites register later (24 unit tests went unrun)
node --test --test-reporter=spec --test-concurrency=2 --test-timeout=300000 'test/unit/**/*.test.ts'

# The whole end-to-end suite twice, the same files: once with every server on SQLite, once on
# PostgreSQL (scripts/test-e2e.sh). The two passes run at the same time, each in its own private
# network namespace with two files at a time: much of a file's time is waiting (on timers, on
# PostgreSQL, on other processes), so four files keep the 2 cores busy where two left them idle.
# Each line says which pass it is from; both passes end before the exit code is known.
echo "== end-to-end and interop tests, on SQLite and on PostgreSQL at once (private network namespaces, loopback only)"
e2e_pass() {
  bash scripts/test-e2e.sh "$1" 2>&1 | sed -u "s/^/[$1] /"
}
# an interrupted run (Ctrl-C) ends both passes and everything they started, not only this script
trap 'trap - INT TERM; kill 0' INT TERM
e2e_pass sqlite & sqlite_pass=$!
e2e_pass postgres & postgres_pass=$!
e2e_failed=""
wait "$sqlite_pass" || e2e_failed="$e2e_failed sqlite"
wait "$postgres_pass" || e2e_failed="$e2e_failed postgres"
trap - INT TERM
if [ -n "$e2e_failed" ]; then
  echo "== end-to-end tests failed on:$e2e_failed (the lines [engine] ✖ above say which)" >&2
  exit 1
fi

# Benchmarks are measurements, not assertions: the smoke run (every scenario, one short step at a
# low rate, under a minute) proves the harness works against both servers and prints its table;
# `npm run bench` makes the numbers to quote in bench/RESULTS.md.
echo "== benchmarks (smoke run: the harness works; nothing measured, nothing asserted)"
bash scripts/install-bench-deps.sh
bench_out=$(mktemp -d)
bash scripts/netns-run.sh node bench/run.ts --smoke --out "$bench_out"
cat "$bench_out/RESULTS.md"
rm -rf "$bench_out"
