#!/usr/bin/env bash
# Installs every Debian 12 package Nexra needs to build, run, test and bench.
# Idempotent: does nothing when all packages are already present.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config ca-certificates
  libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libyaml-dev
  libssl-dev libsodium-dev libsqlite3-dev sqlite3 libpq-dev libpcre2-dev
  libstemmer-dev wordnet-base
  json-schema-test-suite
  postgresql-15 postgresql-client-15
  python3 python3-pytest python3-requests python3-jwt python3-setuptools python3-pip python3-wheel python3-cryptography
  clang libclang-rt-14-dev
  wrk nginx-light
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged nginx and PostgreSQL services are not used: the bench and the
# test harness start their own instances on free loopback ports.
for svc in nginx postgresql; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
