#!/bin/sh
# Chaos soak: mqlb in front of three redis-server and three echo backends
# under constant load, with random kill -9 / restart of backends, SIGHUP
# reloads and drain/enable. Default 10 minutes.
#
#   scripts/soak.sh [--seconds N] [--streams N] [--seed N]
#
# The driver is tests/support/soak.py (Python, standard library); it exits
# non-zero if an assertion failed and prints a summary either way.
set -e
cd "$(dirname "$0")/.."
for tool in redis-server redis-benchmark python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "soak: $tool is missing (make deps installs it)" >&2
        exit 2
    }
done
[ -x "${MQLB_BIN:-./mqlb}" ] || make mqlb
MQLB_BIN=$(realpath "${MQLB_BIN:-./mqlb}")
export MQLB_BIN
exec python3 tests/support/soak.py "$@"
