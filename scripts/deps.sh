#!/bin/sh
# Install every build, test, demo and benchmark need from Debian, only when
# something is missing, so a fresh Debian 12 machine works with one command.
set -e
PKGS="build-essential pkg-config libev-dev libinih-dev libcriterion-dev
libmicrohttpd-dev libjansson-dev python3 redis-server redis-tools mosquitto
mosquitto-clients nats-server procps iproute2 nginx libnginx-mod-stream"
# `deps.sh brokers`: also the brokers of `make test-brokers` (slow to start).
[ "$1" = brokers ] && PKGS="$PKGS rabbitmq-server"
# `deps.sh --fuzz`: clang-14 and its runtime, which carries libFuzzer.
[ "$1" = "--fuzz" ] && PKGS="$PKGS clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
