#!/usr/bin/env bash
# One pass of the end-to-end and interop tests on one storage engine, inside a private network
# namespace that has only loopback:
#
#   scripts/test-e2e.sh sqlite|postgres [FILE...]      (default: every test/e2e/**/*.test.ts)
#
# postgres sets PARLEY_TEST_DATABASE=postgres: every server gets a fresh database on the machine's
# PostgreSQL and the tests' CLI commands use --database (test/harness/server.ts). Two files at a
# time. The test command (scripts/test.sh) runs both passes side by side; `npm run test:postgres`
# runs the PostgreSQL one alone.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${1:-}
case "$engine" in
  sqlite | postgres) shift ;;
  *)
    echo "usage: $0 sqlite|postgres [FILE...]" >&2
    exit 2
    ;;
esac
if [ "$#" -eq 0 ]; then
  shopt -s globstar nullglob
  for file in test/e2e/**/*.test.ts; do
    # a cluster's nodes are on PostgreSQL whatever the engine (test/harness/cluster.ts): the same
    # run in both passes would only cost time, so they are the PostgreSQL pass's
    if [ "$engine" = sqlite ] && [[ "$file" == test/e2e/cluster*.test.ts ]]; then continue; fi
    set -- "$@" "$file"
  done
fi

# Every `parley` the tests start (servers and CLI commands, hundreds of processes) compiles the same
# modules: with Node's compile cache only the first does the whole work (a start after it takes about
# half the CPU). The test command gives both passes one cache; alone, a pass makes its own.
if [ -z "${NODE_COMPILE_CACHE:-}" ]; then
  NODE_COMPILE_CACHE=$(mktemp -d)
  trap 'rm -rf "$NODE_COMPILE_CACHE"' EXIT
  export NODE_COMPILE_CACHE
fi

PARLEY_TEST_DATABASE=$engine bash scripts/netns-run.sh node --test --test-reporter=spec --test-concurrency=2 --test-timeout=600000 "$@"
