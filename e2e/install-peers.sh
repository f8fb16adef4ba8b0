#!/usr/bin/env bash
# Installs the real peers that anx's e2e tests talk to, on Debian 12 (bookworm):
#   from bookworm-backports: curl 8.14, libcurl3-gnutls, ngtcp2-client (gtlsclient),
#                            testssl.sh 3.2 (3.0 prints no grade)
#   from bookworm:           nghttp2-client (h2load), wrk, chromium, slowhttptest,
#                            qemu-user, qemu-user-binfmt (arm64 builds of anx and of the
#                            unit tests run under qemu-aarch64; registered with the
#                            kernel's binfmt_misc, so that an arm64 binary can start
#                            another: the doctor's hardware-off child, tests that
#                            run themselves again),
#                            openssl (s_client: cipher order, session resumption),
#                            prometheus (a real server scraping anx's /metrics, and promtool)
#   built here, once:        curl with HTTP/3 (GnuTLS + ngtcp2 + nghttp3 from backports,
#                            from Debian's curl source) into $ANX_PEERS_CACHE/curl-h3
#   go install, pinned:      h2spec, and Pebble (pebble, pebble-challtestsrv: the ACME
#                            test CA and its DNS server) into <repo>/.tools/bin
# Idempotent and quick when everything is there (no apt-get at all then).
# Needs root only when something is missing. Prints what it does on stderr and,
# on stdout, the path of the HTTP/3 curl (for ANX_CURL_H3).
#
# Environment: ANX_PEERS_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/anx-peers).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${ANX_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/anx-peers}
curl_h3_prefix=$cache/curl-h3
curl_h3=$curl_h3_prefix/bin/curl
tools=$repo/.tools/bin
h2spec_version=v2.2.1+incompatible
pebble_version=v2.10.1

backports_pkgs=(curl libcurl3-gnutls ngtcp2-client testssl.sh)
main_pkgs=(nghttp2-client wrk chromium slowhttptest qemu-user qemu-user-binfmt openssl prometheus)
build_pkgs=(gcc make pkg-config xz-utils dpkg-dev libgnutls28-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev
  libnghttp3-dev libnghttp2-dev zlib1g-dev)

say() { echo "install-peers: $*" >&2; }
die() { say "error: $*"; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root: run it as root (sudo $0)"
}

# installed PKG [MIN_VERSION]: is PKG installed (at MIN_VERSION or later)?
installed() {
  local v
  v=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null) || return 1
  case $v in "install ok installed "*) ;; *) return 1 ;; esac
  [ -z "${2:-}" ] || dpkg --compare-versions "${v##* }" ge "$2"
}

# missing PKG...: print the packages of the list that are not installed.
missing() {
  local p
  for p in "$@"; do installed "$p" || echo "$p"; done
}

# has_suite TYPE: does any apt source already give TYPE (deb or deb-src) of bookworm-backports?
has_suite() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && grep -Eq "^[[:space:]]*$1([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+[[:space:]]+bookworm-backports([[:space:]]|$)" "$f" && return 0
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v want="$1" 'BEGIN { RS = ""; found = 0 }
      {
        types = ""; suites = ""; enabled = 1
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          if (lines[i] ~ /^Types:/) types = " " substr(lines[i], 7) " "
          if (lines[i] ~ /^Suites:/) suites = " " substr(lines[i], 8) " "
          if (lines[i] ~ /^Enabled:[[:space:]]*no/) enabled = 0
        }
        gsub(/[[:space:]]+/, " ", types); gsub(/[[:space:]]+/, " ", suites)
        if (enabled && index(types, " " want " ") && index(suites, " bookworm-backports ")) found = 1
      }
      END { exit !found }' "$f" && return 0
  done
  return 1
}

# add_backports: add a deb822 source for the missing types of bookworm-backports,
# modelled on the machine's own Debian entry.
add_backports() {
  local types="" src=/etc/apt/sources.list.d/debian.sources dst=/etc/apt/sources.list.d/anx-backports.sources
  has_suite deb || types="deb"
  has_suite deb-src || types="${types:+$types }deb-src"
  [ -n "$types" ] || return 0
  need_root "adding bookworm-backports"
  say "adding bookworm-backports ($types) as $dst"
  if [ -f "$src" ]; then
    awk 'BEGIN { RS = ""; ORS = "\n" } NR == 1' "$src" \
      | sed -e "s/^Types:.*/Types: $types/" -e 's/^Suites:.*/Suites: bookworm-backports/' > "$dst.tmp"
  else
    printf 'Types: %s\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$types" > "$dst.tmp"
  fi
  mv "$dst.tmp" "$dst"
  apt_updated=
}

apt_updated=
apt_update() {
  [ -n "$apt_updated" ] && return 0
  say "apt-get update"
  apt-get update -qq >&2
  apt_updated=1
}

# apt_install [-t SUITE] PKG...: install what is missing of PKG...
apt_install() {
  local target=()
  if [ "$1" = -t ]; then target=(-t "$2"); shift 2; fi
  local todo
  todo=$(missing "$@")
  [ -n "$todo" ] || return 0
  need_root "installing $(echo $todo)"
  add_backports
  apt_update
  say "apt-get install ${target[*]} $(echo $todo)"
  # Keep invoke-rc.d from starting the packages' services (prometheus,
  # nginx...): the tests start their own on free ports. A policy the
  # machine has is left alone.
  local policy=/usr/sbin/policy-rc.d ours=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# anx install-peers.sh: no service starts during the install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    ours=1
  fi
  # shellcheck disable=SC2086 # word splitting of the package list is wanted
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${target[@]}" $todo >&2 || { [ -z "$ours" ] || rm -f "$policy"; return 1; }
  [ -z "$ours" ] || rm -f "$policy"
}

install_packages() {
  local old=()
  installed curl 8.14 || old+=(curl)
  installed libcurl3-gnutls 8.14 || old+=(libcurl3-gnutls)
  installed testssl.sh 3.2 || old+=(testssl.sh)
  if [ ${#old[@]} -gt 0 ]; then
    # an older curl or testssl.sh from bookworm counts as missing: upgrade it from backports
    need_root "installing ${old[*]} from backports"
    add_backports
    apt_update
    say "apt-get install -t bookworm-backports ${old[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports "${old[@]}" >&2
  fi
  apt_install -t bookworm-backports "${backports_pkgs[@]}"
  apt_install "${main_pkgs[@]}"
  local p
  for p in "${backports_pkgs[@]}" "${main_pkgs[@]}"; do installed "$p" || die "$p is still not installed"; done
  installed curl 8.14 || die "curl is older than 8.14"
  installed testssl.sh 3.2 || die "testssl.sh is older than 3.2"
}

# build_curl_h3: build curl with HTTP/3 from Debian's curl source, once.
build_curl_h3() {
  if [ -x "$curl_h3" ] && "$curl_h3" -V 2>/dev/null | grep -q HTTP3; then
    say "curl with HTTP/3: already built at $curl_h3"
    return 0
  fi
  say "building curl with HTTP/3 into $curl_h3_prefix (a few minutes, once)"
  apt_install -t bookworm-backports "${build_pkgs[@]}"
  add_backports # deb-src of backports, for apt-get source
  apt_update
  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  (
    cd "$work"
    chmod 755 "$work" # let apt's sandbox user write the download
    say "apt-get source --download-only -t bookworm-backports curl"
    apt-get source -q --download-only -t bookworm-backports curl >&2 || true
    local tarball
    tarball=$(ls curl_*.orig.tar.* 2>/dev/null | head -n 1)
    [ -n "$tarball" ] || die "could not download curl's source package from bookworm-backports"
    tar xf "$tarball"
    cd curl-*/
    say "configure + make ($tarball)"
    ./configure -q --prefix="$curl_h3_prefix" --with-gnutls --with-ngtcp2 --with-nghttp3 --with-nghttp2 \
      --disable-shared --disable-ldap --disable-docs --without-libpsl --without-brotli --without-zstd \
      --without-libidn2 >&2
    make -s -j"$(nproc)" >&2
    make -s install >&2
  )
  rm -rf "$work"
  trap - EXIT
  "$curl_h3" -V | grep -q HTTP3 || die "the built curl has no HTTP/3"
  say "curl with HTTP/3: built at $curl_h3"
}

# need_go WHAT: make sure go is in PATH (adding /usr/local/go/bin if need be), to install WHAT.
need_go() {
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then PATH=/usr/local/go/bin:$PATH; fi
  command -v go >/dev/null || die "go is not in PATH (needed to install $1)"
}

# install_h2spec: go install h2spec, pinned, into <repo>/.tools/bin.
install_h2spec() {
  need_go h2spec
  # h2spec's own --version says 2.0.0 whatever the tag: ask the binary's module info
  if [ -x "$tools/h2spec" ] && go version -m "$tools/h2spec" 2>/dev/null | grep -q "mod[[:space:]]*github.com/summerwind/h2spec[[:space:]]*$h2spec_version"; then
    say "h2spec: $h2spec_version already at $tools/h2spec"
    return 0
  fi
  say "go install github.com/summerwind/h2spec/cmd/h2spec@$h2spec_version into $tools"
  mkdir -p "$tools"
  (cd "$repo" && GOBIN=$tools GOFLAGS= go install "github.com/summerwind/h2spec/cmd/h2spec@$h2spec_version")
}

# install_pebble: go install Pebble and pebble-challtestsrv, pinned, into <repo>/.tools/bin.
install_pebble() {
  need_go Pebble
  local cmd todo=()
  for cmd in pebble pebble-challtestsrv; do
    if [ -x "$tools/$cmd" ] && go version -m "$tools/$cmd" 2>/dev/null | grep -q "mod[[:space:]]*github.com/letsencrypt/pebble/v2[[:space:]]*$pebble_version"; then
      say "$cmd: $pebble_version already at $tools/$cmd"
    else
      todo+=("github.com/letsencrypt/pebble/v2/cmd/$cmd@$pebble_version")
    fi
  done
  [ ${#todo[@]} -gt 0 ] || return 0
  say "go install ${todo[*]} into $tools"
  mkdir -p "$tools"
  (cd "$repo" && GOBIN=$tools GOFLAGS= go install "${todo[@]}")
}

# register_qemu_binfmt: have the kernel start arm64 binaries through
# qemu-aarch64 (binfmt_misc; the entry qemu-user-binfmt ships for systemd,
# which may not run here), mounting binfmt_misc first if need be.
register_qemu_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  if [ -f "$dir/qemu-aarch64" ] && head -n 1 "$dir/qemu-aarch64" | grep -qx enabled && grep -qx enabled "$dir/status"; then
    say "binfmt_misc: qemu-aarch64 already registered"
    return 0
  fi
  need_root "registering qemu-aarch64 with binfmt_misc"
  [ -f "$conf" ] || die "$conf is missing: is qemu-user-binfmt installed?"
  if [ ! -f "$dir/register" ]; then
    say "mount -t binfmt_misc binfmt_misc $dir"
    mount -t binfmt_misc binfmt_misc "$dir" || die "cannot mount binfmt_misc on $dir"
  fi
  echo 1 > "$dir/status"
  if [ -f "$dir/qemu-aarch64" ]; then
    echo 1 > "$dir/qemu-aarch64"
  else
    say "registering $conf with binfmt_misc"
    cat "$conf" > "$dir/register" || die "binfmt_misc refused $conf"
  fi
  head -n 1 "$dir/qemu-aarch64" | grep -qx enabled || die "qemu-aarch64 is registered but not enabled in $dir"
}

install_packages
register_qemu_binfmt
build_curl_h3
install_h2spec
install_pebble
say "all peers present"
echo "$curl_h3"
