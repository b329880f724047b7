#!/bin/sh
# Install every build, test, demo and benchmark need from Debian, only when
# something is missing, so a fresh Debian 12 machine works with one command.
# The browser test's playwright-core comes from npm, pinned by
# tests/browser/package-lock.json; it drives Debian's own chromium.
set -e
cd "$(dirname "$0")/.."
PKGS="build-essential pkg-config libev-dev libinih-dev libcriterion-dev
libmicrohttpd-dev libjansson-dev python3 redis-server redis-tools mosquitto
mosquitto-clients nats-server procps iproute2 python3-prometheus-client
chromium nodejs nginx libnginx-mod-stream libssl-dev openssl libc-ares-dev
libsystemd-dev dnsmasq-base prometheus haproxy strace"
# `deps.sh brokers`: also the brokers of `make test-brokers` (slow to start).
[ "$1" = brokers ] && PKGS="$PKGS rabbitmq-server python3-pika"
# `deps.sh --fuzz`: clang-14 and its runtime, which carries libFuzzer.
[ "$1" = "--fuzz" ] && PKGS="$PKGS clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
# Debian's npm, unless the installed nodejs brings its own (NodeSource's does)
command -v npm >/dev/null 2>&1 || missing="$missing npm"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    echo "deps: npm ci in tests/browser"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
