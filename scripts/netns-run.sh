#!/usr/bin/env bash
# Runs a command inside a private network namespace that has only the loopback interface, so
# nothing it starts can reach another host: the interop suites (sipp, JsSIP, the server) talk
# to 127.0.0.1 and nothing else.
#
#   scripts/netns-run.sh node --test 'test/e2e/**/*.test.ts'
#
# Needs root (or user namespaces: it falls back to `unshare -r -n` as a normal user), and
# util-linux's unshare and iproute2's ip (scripts/install-test-deps.sh installs them).
# PARLEY_NETNS=off runs the command as it is, for machines where namespaces are not allowed
# (it says so on stderr); the default is to fail rather than run without isolation.
# The command's exit code is returned.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

if [ "${PARLEY_NETNS:-on}" = "off" ]; then
  echo "netns-run: PARLEY_NETNS=off, running without network isolation" >&2
  exec "$@"
fi

for tool in unshare ip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "netns-run: $tool not found (run scripts/install-test-deps.sh)" >&2
    exit 1
  fi
done

# Inside: bring loopback up, check that it is the only interface, then run the command.
# The command keeps the caller's environment, working directory and PATH.
inner='
set -e
ip link set lo up
others=$(ip -o link show | awk -F": " "{print \$2}" | grep -v "^lo$" || true)
if [ -n "$others" ]; then
  echo "netns-run: unexpected interfaces in the namespace: $others" >&2
  exit 1
fi
# tells the command it is in a namespace of its own (the bench may then change its sysctls)
export PARLEY_NETNS_PRIVATE=1
exec "$@"
'

if [ "$(id -u)" = "0" ]; then
  exec unshare --net -- sh -c "$inner" netns-run "$@"
else
  # unprivileged: a user namespace maps us to root inside it, which may create the net namespace
  exec unshare --map-root-user --net -- sh -c "$inner" netns-run "$@"
fi
