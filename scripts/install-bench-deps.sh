#!/usr/bin/env bash
# Installs what `npm run bench` needs besides the test tools:
#   kamailio                 - the reference SIP server (Debian 12: 5.6.x)
#   kamailio-sqlite-modules  - db_sqlite, for auth_db and msilo on SQLite
#   kamailio-tls-modules     - Kamailio's tls module (scenarios 6-7, SIP over TLS)
#   stunnel4                 - the TLS client side of scenarios 6-7: Debian's sipp is built without
#                              OpenSSL (`sipp -t ln` refuses), so sipp speaks TCP to stunnel, which
#                              opens a TLS connection to the server per TCP connection (bench/tls.ts)
#   openssl                  - makes the bench's throwaway CA and server certificate
#   sip-tester               - sipp, the load generator
#   sqlite3                  - not required by the bench (it uses node:sqlite), handy to inspect
#   util-linux               - taskset, prlimit
# Idempotent: installs only what is missing. The bench runs its own Kamailio in the foreground
# with bench/kamailio.cfg on a free loopback port; the system service the package ships must not
# run: the install is done with a policy-rc.d that forbids starting services, and the service is
# then stopped and disabled in case it was started anyway (stunnel4's service starts nothing
# without a config in /etc/stunnel; the bench runs its own in the foreground).
set -euo pipefail

log() { printf 'install-bench-deps: %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in kamailio kamailio-sqlite-modules kamailio-tls-modules sip-tester stunnel4 openssl util-linux; do
  if have_pkg "$p"; then log "$p present"; else log "$p missing"; missing+=("$p"); fi
done

stop_system_kamailio() {
  # no systemd in containers; try what exists, ignore what does not
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl stop kamailio.service >/dev/null 2>&1 || true
    $SUDO systemctl disable kamailio.service >/dev/null 2>&1 || true
  fi
  if [ -x /etc/init.d/kamailio ]; then
    $SUDO /etc/init.d/kamailio stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null 2>&1 && $SUDO update-rc.d kamailio disable >/dev/null 2>&1 || true
  fi
}

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != "0" ] && [ -z "$SUDO" ]; then
    log "not root and no sudo: cannot install ${missing[*]}" >&2
    exit 1
  fi
  # forbid service starts during the install (invoke-rc.d honours exit 101), restore afterwards
  policy=/usr/sbin/policy-rc.d
  backup=""
  if [ -e "$policy" ]; then backup="$(mktemp)"; $SUDO cp -a "$policy" "$backup"; fi
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  restore() { if [ -n "$backup" ]; then $SUDO cp -a "$backup" "$policy"; rm -f "$backup"; else $SUDO rm -f "$policy"; fi; }
  trap restore EXIT
  apt_opts=(-q -o DPkg::Lock::Timeout=120)
  log "apt-get update"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
  log "apt-get install ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
fi

stop_system_kamailio
for c in kamailio sipp stunnel openssl taskset prlimit; do
  command -v "$c" >/dev/null 2>&1 || { log "$c still missing" >&2; exit 1; }
done
[ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || { log "Kamailio's tls module (tls.so) still missing" >&2; exit 1; }
log "done: $(kamailio -v 2>/dev/null | head -n1), sipp $(sipp -v 2>&1 | grep -o 'v[0-9][0-9.]*' | head -n1 || true), $(stunnel -version 2>&1 | grep -o 'stunnel [0-9][0-9.]*' | head -n1 || true)"
