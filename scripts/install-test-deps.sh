#!/usr/bin/env bash
# Installs the system tools the end-to-end and interop tests need:
#   sipp    (Debian package sip-tester)  - SIP load/scenario tool used as a real peer
#   unshare (Debian package util-linux)  - private network namespace for interop runs
#   ip      (Debian package iproute2)    - bring up loopback inside that namespace
#   promtool (Debian package prometheus) - checks the /metrics text (test/e2e/metrics.test.ts)
#   chromium (Debian package chromium)   - the browser of the web client's tests (test/e2e/web-*.test.ts),
#                                          driven by playwright-core; /usr/bin/chromium
#   tmux    (Debian package tmux)        - a pseudo-terminal for `parley chat` (test/e2e/chat-terminal.test.ts)
#   pebble  (Debian package pebble)      - Let's Encrypt's test ACME server, and pebble-challtestsrv as its
#                                          DNS server (test/e2e/acme.test.ts)
#   davmail (Debian package davmail)     - the EWS-to-IMAP gateway run against Parley (test/e2e/ews-davmail.test.ts);
#                                          it brings a headless Java runtime (about 120 MB installed)
#   dnsmasq (Debian package dnsmasq-base) - the DNS server answering the partners' SRV and A records
#                                          (test/e2e/federation-*.test.ts); /usr/sbin/dnsmasq, no service started
#   postgresql, redis-server (Debian packages)  - the storage engine of clusters and their shared
#                                          state; scripts/services.sh starts them (storage and cluster tests)
#   kamailio (Debian packages kamailio, kamailio-tls-modules) - a third organisation's SIP server with
#                                          mutual TLS on its federation port (test/e2e/federation-*.test.ts)
#   dovecot (Debian packages dovecot-core, dovecot-imapd) - the IMAP server the IMAP mailbox connector is
#                                          tested against (test/unit/imap-*.test.ts, test/e2e/imap*.test.ts);
#                                          /usr/sbin/dovecot, started by each test with its own config, no service
#
# The prometheus package also holds the Prometheus server, and its postinst starts that daemon
# (invoke-rc.d, failing the install when the start fails, as in a container without an init).
# Only promtool is wanted: a policy-rc.d that forbids starting services is put in place for the
# install (when none exists) and removed after, so no server runs and the install succeeds.
# Idempotent: installs only what is missing. Works as root with no TTY (CI).
set -euo pipefail

log() { printf 'install-test-deps: %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  fi
fi

missing_pkgs=()
# a command, also in /usr/sbin (dnsmasq, kamailio), which a normal user's PATH may not hold
have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}
need() {
  # need COMMAND PACKAGE
  if have "$1"; then
    log "$1 present ($(command -v "$1" || echo "/usr/sbin/$1"))"
  else
    log "$1 missing, will install Debian package $2"
    missing_pkgs+=("$2")
  fi
}
need_file() {
  # need_file FILE PACKAGE: a package with no command of its own (a Kamailio module)
  if [ -e "$1" ] && dpkg -s "$2" >/dev/null 2>&1; then
    log "$2 present ($1)"
  else
    log "$1 missing, will install Debian package $2"
    missing_pkgs+=("$2")
  fi
}

need sipp sip-tester
need unshare util-linux
need ip iproute2
need promtool prometheus
need chromium chromium
need tmux tmux
need pebble pebble
need davmail davmail
need dnsmasq dnsmasq-base
need kamailio kamailio
need pg_ctlcluster postgresql
need redis-server redis-server
need dovecot dovecot-imapd
# the multiarch directory: x86_64-linux-gnu, aarch64-linux-gnu
KAMAILIO_TLS=/usr/lib/$(uname -m)-linux-gnu/kamailio/modules/tls.so
need_file "$KAMAILIO_TLS" kamailio-tls-modules

if [ "${#missing_pkgs[@]}" -eq 0 ]; then
  log "nothing to install"
  exit 0
fi

if [ "$(id -u)" != "0" ] && [ -z "$SUDO" ]; then
  log "not root and no sudo: cannot install ${missing_pkgs[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# wait for another apt/dpkg run rather than fail on its lock; retry a flaky mirror twice
apt_opts=(-o DPkg::Lock::Timeout=120)
retry() {
  local n
  for n in 1 2 3; do
    if "$@"; then return 0; fi
    log "attempt $n of: $* failed"
    sleep $((n * 5))
  done
  return 1
}
log "apt-get update"
retry $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q "${apt_opts[@]}" update
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  # exit 101: "action forbidden by policy" (invoke-rc.d(8)); also honoured by deb-systemd-invoke
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
log "apt-get install ${missing_pkgs[*]}"
retry $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q "${apt_opts[@]}" install -y --no-install-recommends "${missing_pkgs[@]}"

for c in sipp unshare ip promtool chromium tmux davmail dnsmasq kamailio pg_ctlcluster redis-server dovecot; do
  if ! have "$c"; then
    log "$c still missing after install" >&2
    exit 1
  fi
done
if [ ! -e "$KAMAILIO_TLS" ]; then
  log "$KAMAILIO_TLS still missing after install" >&2
  exit 1
fi
log "done: $(sipp -v 2>&1 | grep -o 'v[0-9][0-9.]*[^ ]*' | head -n1 || true)"
