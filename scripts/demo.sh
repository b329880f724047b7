#!/bin/bash
# make demo: three real redis-server brokers on loopback, mqlb in front of
# them, and the admin URL. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${DEMO_PORT:-6400}         # mqlb listens here; brokers on BASE+1..3
ADMIN=${DEMO_ADMIN_PORT:-9000}
DIR=$(mktemp -d /tmp/mqlb-demo.XXXXXX)
PIDS=()

stop_all() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    echo "demo stopped; files are in $DIR"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

busy() { ss -Hltn "sport = :$1" | grep -q .; }
for p in "$BASE" $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) "$ADMIN"; do
    if busy "$p"; then
        echo "port $p is in use; set DEMO_PORT / DEMO_ADMIN_PORT" >&2
        exit 1
    fi
done

for i in 1 2 3; do
    port=$((BASE + i))
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --logfile "$DIR/redis-$port.log" &
    PIDS+=($!)
done

cat > "$DIR/mqlb.ini" <<INI
; demo config written by scripts/demo.sh
[global]
workers = 0
log_level = info

[admin]
listen = 127.0.0.1:$ADMIN

[pool redis]
listen = 127.0.0.1:$BASE
balance = roundrobin
health_check = redis
check_interval = 1s
check_timeout = 500ms
rise = 2
fall = 2
backend = r1 127.0.0.1:$((BASE + 1)) weight=2
backend = r2 127.0.0.1:$((BASE + 2))
backend = r3 127.0.0.1:$((BASE + 3))
INI

./mqlb -c "$DIR/mqlb.ini" 2> >(tee "$DIR/mqlb.log" >&2) &
MQLB=$!
PIDS+=($MQLB)

for _ in $(seq 100); do
    busy "$ADMIN" && break
    kill -0 "$MQLB" 2>/dev/null || { echo "mqlb did not start" >&2; exit 1; }
    sleep 0.1
done

cat <<MSG

  mqlb is running in front of three redis-server brokers.

    dashboard:  http://127.0.0.1:$ADMIN/
    status:     curl -s http://127.0.0.1:$ADMIN/status
    metrics:    curl -s http://127.0.0.1:$ADMIN/metrics
    connect:    redis-cli -p $BASE ping
    which one:  redis-cli -p $BASE info server | grep tcp_port
    load:       redis-benchmark -p $BASE -q -n 100000 -c 50 -t ping,set,get
    drain r2:   curl -s -X POST http://127.0.0.1:$ADMIN/pools/redis/backends/r2/drain
    broker PIDs: ${PIDS[*]:0:3} (kill one and watch the dashboard)

  Ctrl-C stops mqlb and the brokers.

MSG
wait "$MQLB"
