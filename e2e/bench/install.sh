#!/usr/bin/env bash
# Installs what `make bench` runs beside anx, on Debian 12 (bookworm):
#   nginx-light (nginx 1.22) and h2o (2.2): the servers compared with anx
#   haproxy (2.6):                          the proxy loads' other anchor
#   wrk and nghttp2-client (h2load):        the load generators
# Caddy is optional and not installed here (`make bench-caddy` builds it).
#
# Idempotent: does nothing (and needs no root) when all are present. The
# bench starts its own nginx, h2o and HAProxy with its own configs on free loopback
# ports; the Debian services are kept from starting during the install
# (policy-rc.d), and if one starts anyway, the one this install started is
# stopped again. A service that ran before is left alone.
set -euo pipefail

pkgs=(nginx-light h2o haproxy wrk nghttp2-client)

say() { echo "bench/install: $*" >&2; }
die() { say "error: $*"; exit 1; }

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

todo=()
for p in "${pkgs[@]}"; do installed "$p" || todo+=("$p"); done
if [ ${#todo[@]} -eq 0 ]; then
  say "present: ${pkgs[*]}"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "installing ${todo[*]} needs root: run it as root (sudo $0)"

# pids of the Debian services before the install: those are not ours to stop.
service_pid() { [ -r "$1" ] && cat "$1" 2>/dev/null || true; }
nginx_before=$(service_pid /run/nginx.pid)
h2o_before=$(service_pid /run/h2o.pid)
haproxy_before=$(service_pid /run/haproxy.pid)

# Keep invoke-rc.d from starting services, unless the machine has its own policy.
policy=/usr/sbin/policy-rc.d
ours=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# anx bench/install.sh: no service starts during the install\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  ours=1
  trap 'rm -f "$policy"' EXIT
fi

say "apt-get update"
apt-get update -qq >&2
say "apt-get install ${todo[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${todo[@]}" >&2
[ -z "$ours" ] || { rm -f "$policy"; trap - EXIT; }

for p in "${pkgs[@]}"; do installed "$p" || die "$p is still not installed"; done

# stop_new NAME PIDFILE BEFORE: stop the service NAME if this install started it.
stop_new() {
  local pid
  pid=$(service_pid "$2")
  [ -n "$pid" ] && [ "$pid" != "$3" ] && kill -0 "$pid" 2>/dev/null || return 0
  say "stopping the $1 service the install started (pid $pid)"
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$1" 2>/dev/null; then
    systemctl stop "$1" || true
  elif command -v service >/dev/null; then
    service "$1" stop >&2 || true
  fi
  if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" || true; fi
}
stop_new nginx /run/nginx.pid "$nginx_before"
stop_new h2o /run/h2o.pid "$h2o_before"
stop_new haproxy /run/haproxy.pid "$haproxy_before"
say "installed: ${todo[*]}"
