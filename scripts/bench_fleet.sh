#!/usr/bin/env bash
# Fleet-scale benchmark rows (issue 20): mqlb against HAProxy and NGINX
# stream, side by side, same thread count, loopback only.
#
#   scripts/bench_fleet.sh [--quick] [--threads N] [--repeats N] [--out FILE]
#                          [--sessions N] [--clients N] [--backends K]
#                          [--redis-backends N] [--rows LIST]
#
# --rows g,i: only these rows (comma-separated, of g h i j jredis; default
# all).
#
# Rows (targets interleaved, the first one rotating each repeat; medians):
#   (g) connection churn: redis-benchmark -c 50 -k 0, connections/s and the
#       proxy's CPU per connection; syscalls per connection from a separate
#       short run under `strace -c -f -p PID` (mqlb and HAProxy). mqlb-defer
#       is the same mqlb through a pool with defer_accept = on.
#   (h) idle sessions (--sessions, default 100000): each client connects,
#       PINGs and stays idle; proxy RSS and descriptors per session and the
#       time to open them all. Capped to what the descriptor limit allows.
#   (i) reconnect storm (--clients, default 20000): every client connects at
#       once to a pool of 3 redis-servers and PINGs; time until the last
#       PONG, errors, peak new-connection rate each backend saw (INFO stats
#       every 100 ms); mqlb with and without max_connect_rate, HAProxy, NGINX.
#   (j) check cost (--backends, default 1000): listening sockets of a test
#       server checked every second with the TCP check; proxy CPU a second
#       and per check (CPU: its threads' /proc schedstat time; mqlb's checks
#       counted by its /metrics, read outside the CPU window). mqlb-reset is mqlb with check_reset = on, the
#       check HAProxy makes (reset before the server's kernel completes it).
#   (jredis) the same with the redis check (--redis-backends, default 300):
#       that many real redis-servers, each checked every second with PING
#       (mqlb: health_check = redis; HAProxy: option redis-check).
# Noise: (g) runs mqlb twice per repeat; the ratio of the two is the noise row.
#
# Environment: MQLB_BIN (default ./mqlb), BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail

THREADS=2
REPEATS=3
QUICK=0
OUT=build/bench-fleet.md
SESSIONS=""
CLIENTS=""
BACKENDS=""
REDIS_BACKENDS=""
ROWS=g,h,i,j,jredis
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --threads) THREADS="$2"; shift ;;
    --repeats) REPEATS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --sessions) SESSIONS="$2"; shift ;;
    --clients) CLIENTS="$2"; shift ;;
    --backends) BACKENDS="$2"; shift ;;
    --redis-backends) REDIS_BACKENDS="$2"; shift ;;
    --rows) ROWS="$2"; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "bench_fleet: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
IFS=, read -r -a rows_asked <<<"$ROWS"
[ ${#rows_asked[@]} -gt 0 ] || rows_asked=("")
for r in "${rows_asked[@]}"; do
    case "$r" in
    g|h|i|j|jredis) ;;
    *) echo "bench_fleet: --rows takes a comma-separated list of g h i j jredis" >&2; exit 2 ;;
    esac
done
row() { case ",$ROWS," in *",$1,"*) return 0 ;; esac; return 1; }
for v in "$THREADS" "$REPEATS" "${SESSIONS:-1}" "${CLIENTS:-1}" "${BACKENDS:-1}" "${REDIS_BACKENDS:-1}"; do
    case "$v" in ''|*[!0-9]*|0) echo "bench_fleet: counts must be >= 1" >&2; exit 2 ;; esac
done
if [ "$QUICK" = 1 ]; then
    [ "$REPEATS" = 3 ] && REPEATS=1
    # (j) and (jredis) kept short: make bench-quick runs in under 3 minutes
    N_G=3000; N_STRACE=1000; J_SECS=3; J_REDIS_SECS=2; J_WARM=1.5
    : "${SESSIONS:=5000}" "${CLIENTS:=2000}" "${BACKENDS:=250}" "${REDIS_BACKENDS:=30}"
else
    N_G=20000; N_STRACE=3000; J_SECS=15; J_REDIS_SECS=15; J_WARM=3
    : "${SESSIONS:=100000}" "${CLIENTS:=20000}" "${BACKENDS:=1000}" "${REDIS_BACKENDS:=300}"
fi
STORM_TIMEOUT=60       # bound on every storm / idle-session run
LIFETIME=3600          # bound on every server we start
RUN_TIMEOUT=120
log() { printf '[bench-fleet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck source=scripts/bench_lib.sh
. "$(dirname "$0")/bench_lib.sh"
bench_install haproxy nginx libnginx-mod-stream redis-server redis-tools strace procps iproute2 python3 coreutils

cd "$(dirname "$0")/.."
MQLB_SRC_BIN=${MQLB_BIN:-./mqlb}
[ -x "$MQLB_SRC_BIN" ] || { echo "bench_fleet: $MQLB_SRC_BIN not found; run make first" >&2; exit 1; }

bench_tmp mqlb-bench-fleet    # TMP, PIDS and the cleanup trap (bench_lib.sh)
cp "$MQLB_SRC_BIN" "$TMP/mqlb"
MQLB="$TMP/mqlb"
BENCH_NAME=bench_fleet
nofile_setup

NOTES=()
CAPPED=0
cap() {   # cap ROW ASKED: sets CAPPED to the count that fits under the descriptor limit
    CAPPED=$2
    if [ "$2" -gt "$SESSION_CAP" ]; then
        NOTES+=("$1 asked for $2 but the descriptor limit here is $NOFILE (hard limit; raising it needs CAP_SYS_RESOURCE), so $SESSION_CAP were used")
        CAPPED=$SESSION_CAP
    fi
}
cap "(h) idle sessions" "$SESSIONS"; SESSIONS=$CAPPED
cap "(i) storm clients" "$CLIENTS"; CLIENTS=$CAPPED
RATE=$(( CLIENTS / 6 ))          # per backend: the storm takes about 2 s
[ "$RATE" -lt 100 ] && RATE=100

R1=$(port); R2=$(port); R3=$(port)
M_RED=$(port); M_RATE=$(port); M_DEF=$(port); M_ADM=$(port); H_RED=$(port); N_RED=$(port)
log "temp dir $TMP, threads $THREADS, repeats $REPEATS, nofile $NOFILE, sessions $SESSIONS, clients $CLIENTS, backends $BACKENDS"

: >"$TMP/runs.log"
RESULTS=$TMP/results.tsv
: >"$RESULTS"
PROBLEMS=$TMP/problems.txt
: >"$PROBLEMS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
problem() { log "PROBLEM: $*"; printf '%s\n' "$*" >>"$PROBLEMS"; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }

# ---------------------------------------------------------------- backends
for r in 1 2 3; do
    pv=R$r
    start_bg "redis$r" redis-server --port "${!pv}" --bind 127.0.0.1 --save "" \
        --appendonly no --maxclients 30000 --dir "$TMP" --dbfilename "r$r.rdb" \
        --protected-mode no
done
for p in "$R1" "$R2" "$R3"; do wait_listen "$p"; done
SAMPLE="127.0.0.1:$R1,127.0.0.1:$R2,127.0.0.1:$R3"
redis_clients() {
    local sum=0 r v
    for r in "$R1" "$R2" "$R3"; do
        v=$(timeout 3 redis-cli -h 127.0.0.1 -p "$r" info clients 2>/dev/null |
            awk -F: '/^connected_clients:/ {print $2+0}') || v=0
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
drain() {   # wait until the backends see the last storm's clients gone
    local i
    for ((i = 0; i < 150; i++)); do
        [ "$(redis_clients)" -le 10 ] && return 0
        sleep 0.1
    done
}

# ---------------------------------------------------------------- proxies
cat >"$TMP/mqlb.ini" <<EOF
[global]
workers = $THREADS
max_connections = 1000000
log_level = warn
shutdown_timeout = 2s

[admin]
listen = 127.0.0.1:$M_ADM

; no health check: HAProxy and NGINX have none here either
[pool redis]
listen = 127.0.0.1:$M_RED
health_check = none
connect_timeout = 3s
idle_timeout = 1h
backend = r1 127.0.0.1:$R1
backend = r2 127.0.0.1:$R2
backend = r3 127.0.0.1:$R3

[pool redis_defer]
listen = 127.0.0.1:$M_DEF
health_check = none
defer_accept = on
connect_timeout = 3s
idle_timeout = 1h
backend = r1 127.0.0.1:$R1
backend = r2 127.0.0.1:$R2
backend = r3 127.0.0.1:$R3

[pool redis_rate]
listen = 127.0.0.1:$M_RATE
health_check = none
connect_timeout = 3s
idle_timeout = 1h
max_connect_rate = $RATE/s
max_queue = $CLIENTS
queue_timeout = ${STORM_TIMEOUT}s
backend = r1 127.0.0.1:$R1
backend = r2 127.0.0.1:$R2
backend = r3 127.0.0.1:$R3
EOF
cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread $THREADS
    maxconn $HAP_MAXCONN
    maxpipes $HAP_MAXPIPES
defaults
    mode tcp
    balance roundrobin
    timeout connect 3s
    timeout client 1h
    timeout server 1h
    maxconn $HAP_MAXCONN
frontend fe_redis
    bind 127.0.0.1:$H_RED
    default_backend be_redis
backend be_redis
    server r1 127.0.0.1:$R1
    server r2 127.0.0.1:$R2
    server r3 127.0.0.1:$R3
EOF
NGX_MOD=$(nginx_stream_load)
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EOF
$NGX_MOD
worker_processes $THREADS;
worker_rlimit_nofile $NOFILE;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections $((NOFILE - 100)); }
stream {
    upstream redis {
        server 127.0.0.1:$R1;
        server 127.0.0.1:$R2;
        server 127.0.0.1:$R3;
    }
    server {
        listen 127.0.0.1:$N_RED backlog=4096;
        proxy_pass redis;
        proxy_connect_timeout 3s;
        proxy_timeout 1h;
    }
}
EOF
"$MQLB" -t -c "$TMP/mqlb.ini" >/dev/null
haproxy -c -q -f "$TMP/haproxy.cfg"
nginx -t -q -p "$TMP/nginx" -e "$TMP/nginx/logs/error.log" -c "$TMP/nginx/nginx.conf"

declare -A PPID_OF=()
declare -A PORT_OF=([direct]=$R1 [mqlb]=$M_RED [mqlb-aa]=$M_RED [mqlb-rate]=$M_RATE
                    [mqlb-defer]=$M_DEF
                    [haproxy]=$H_RED [nginx]=$N_RED)
declare -A PROXY_OF=([mqlb]=mqlb [mqlb-aa]=mqlb [mqlb-rate]=mqlb [mqlb-defer]=mqlb [haproxy]=haproxy [nginx]=nginx)
pool_ready() {   # three PINGs answered through the proxy
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        pings_ok "$port" && return 0
        sleep 0.1
    done
    echo "bench_fleet: nothing answers through port $port" >&2
    return 1
}
start_proxy() {
    case "$1" in
    mqlb)
        start_bg mqlb "$MQLB" -c "$TMP/mqlb.ini"
        PPID_OF[mqlb]=$BG_PID
        wait_listen "$M_RED"; wait_listen "$M_RATE"; wait_listen "$M_DEF"
        pool_ready "$M_RED"; pool_ready "$M_DEF" ;;
    haproxy)
        start_bg haproxy haproxy -db -f "$TMP/haproxy.cfg"
        PPID_OF[haproxy]=$BG_PID
        wait_listen "$H_RED"; pool_ready "$H_RED" ;;
    nginx)
        start_bg nginx nginx -p "$TMP/nginx" -e "$TMP/nginx/logs/error.log" \
            -c "$TMP/nginx/nginx.conf" -g 'daemon off;'
        PPID_OF[nginx]=$BG_PID
        wait_listen "$N_RED"
        for _ in $(seq 1 100); do
            [ "$(proc_set "$BG_PID" | wc -l)" -ge $((THREADS + 1)) ] && break
            sleep 0.05
        done
        pool_ready "$N_RED" ;;
    esac
}
stop_proxy() { local p=${PPID_OF[$1]:-}; [ -n "$p" ] && stop_pids "$p"; PPID_OF[$1]=""; }
check_alive() {
    local proxy=$1 what=$2 p=${PPID_OF[$1]:-}
    [ -z "$p" ] && return 0
    if ! kill -0 "$p" 2>/dev/null; then
        problem "$proxy died during $what; log: $(tail -5 "$TMP/$proxy.log" 2>/dev/null | tr '\n' '|')"
        start_proxy "$proxy" || problem "$proxy could not be restarted"
    fi
}
tpids() { [ "$1" = direct ] && return 0; proc_set "${PPID_OF[${PROXY_OF[$1]}]}"; }

PROXIES="mqlb haproxy nginx"
for p in $PROXIES; do start_proxy "$p"; done
log "proxies up: mqlb ${PPID_OF[mqlb]}, haproxy ${PPID_OF[haproxy]}, nginx ${PPID_OF[nginx]}"
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- (g) churn
churn_run() {   # churn_run TARGET N
    local t=$1 n=$2 pids c0 c1 out rc=0 rate
    pids=$(tpids "$t")
    # shellcheck disable=SC2086
    c0=$(cpu_ticks $pids)
    out=$(timeout -k 5 "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$t]}" \
        -c 50 -k 0 -n "$n" -t ping_mbulk -q --csv 2>"$TMP/rb.err") || rc=$?
    # shellcheck disable=SC2086
    c1=$(cpu_ticks $pids)
    rate=$(awk -F, '/^"PING_MBULK"/ {gsub(/"/, "", $2); print $2}' <<<"$out")
    if [ $rc -ne 0 ] || [ -z "$rate" ]; then
        problem "(g) via $t: redis-benchmark exited $rc: $(grep -v 'Keepalive disabled' "$TMP/rb.err" | tail -2 | tr '\n' '|')"
        [ "$t" != direct ] && check_alive "${PROXY_OF[$t]}" "(g)"
        return 0
    fi
    printf 'g %s ticks %s..%s rate %s\n' "$t" "$c0" "$c1" "$rate" >>"$TMP/runs.log"
    record g_rate "$t" "$rate"
    if [ "$t" != direct ]; then
        record g_cpu "$t" "$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN{printf "%.3f", d/hz*1e6/n}')"
        check_alive "${PROXY_OF[$t]}" "(g)"
    fi
}
strace_run() {  # strace_run TARGET: syscalls per connection, top calls
    local proxy=$1 sp i
    rm -f "$TMP/strace.$proxy"
    timeout -s INT -k 5 "$RUN_TIMEOUT" strace -c -f -q -o "$TMP/strace.$proxy" \
        -p "${PPID_OF[${PROXY_OF[$proxy]}]}" 2>>"$TMP/strace.err" &
    sp=$!
    PIDS+=("$sp")
    sleep 1     # attach to every thread
    timeout -k 5 "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$proxy]}" \
        -c 50 -k 0 -n "$N_STRACE" -t ping_mbulk -q --csv >/dev/null 2>&1 ||
        problem "(g) strace run via $proxy: redis-benchmark failed"
    sleep 0.3
    kill -INT "$sp" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$sp" 2>/dev/null || break; sleep 0.1; done
    wait "$sp" 2>/dev/null || true
    if [ ! -s "$TMP/strace.$proxy" ]; then
        problem "(g) strace of $proxy gave no summary: $(tail -2 "$TMP/strace.err" | tr '\n' '|')"
        return 0
    fi
    cp "$TMP/strace.$proxy" "$TMP/strace-$proxy.txt"
    record g_sys "$proxy" "$(awk -v n="$N_STRACE" '$NF == "total" {printf "%.2f", $4/n}' "$TMP/strace.$proxy")"
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 {print $4, $NF}' "$TMP/strace.$proxy" |
        sort -rn | head -8 |
        awk -v n="$N_STRACE" -v p="$proxy" '{s = s sprintf(" %s %.2f,", $2, $1/n)} END {sub(/,$/, "", s); print p ":" s}' \
        >>"$TMP/syscalls.txt"
    check_alive "${PROXY_OF[$proxy]}" "(g) strace"
}

# ---------------------------------------------------------------- (i) storm
storm_run() {   # storm_run TARGET
    local t=$1 rc=0 ok err tall peaks
    rm -f "$TMP/sample.json"
    timeout -k 5 $((STORM_TIMEOUT + 30)) python3 scripts/storm.py 127.0.0.1 "${PORT_OF[$t]}" \
        "$CLIENTS" --timeout "$STORM_TIMEOUT" --sample "$SAMPLE" \
        --sample-out "$TMP/sample.json" >"$TMP/storm.json" 2>"$TMP/storm.err" || rc=$?
    if [ $rc -ne 0 ] || [ ! -s "$TMP/sample.json" ]; then
        problem "(i) via $t: storm.py exited $rc: $(tail -2 "$TMP/storm.err" | tr '\n' '|')"
        check_alive "${PROXY_OF[$t]}" "(i)"
        drain
        return 0
    fi
    ok=$(jget "$TMP/storm.json" 'd["ok"]')
    err=$(jget "$TMP/storm.json" 'sum(d["errors"].values())')
    tall=$(jget "$TMP/storm.json" 'd["t_all"]')
    peaks=$(jget "$TMP/sample.json" '" ".join(map(str, d["peak_rate"]))')
    printf 'i %s %s sample %s\n' "$t" "$(cat "$TMP/storm.json")" "$(cat "$TMP/sample.json")" >>"$TMP/runs.log"
    [ "$err" != 0 ] && problem "(i) via $t: $ok of $CLIENTS got PONG; errors $(jget "$TMP/storm.json" 'd["errors"]')"
    [ "$tall" != None ] && record i_time "$t" "$tall"
    record i_err "$t" "$err"
    record i_peak "$t" "$(tr ' ' '\n' <<<"$peaks" | sort -n | tail -1)"
    record i_peak1 "$t" "$(jget "$TMP/sample.json" 'max(d["peak_rate_1s"] or [0])')"
    check_alive "${PROXY_OF[$t]}" "(i)"
    drain
}

# ---------------------------------------------------------------- (h) idle sessions
idle_run() {    # idle_run PROXY
    local proxy=$1 pids rss0 rss1 fd0 fd1 hp i ok tall
    stop_proxy "$proxy"
    drain
    start_proxy "$proxy"
    sleep 0.5
    pids=$(proc_set "${PPID_OF[$proxy]}")
    # shellcheck disable=SC2086
    rss0=$(rss_kib $pids); fd0=$(fd_count $pids)
    rm -f "$TMP/hold.ready"
    timeout -k 5 $((STORM_TIMEOUT + 60)) python3 scripts/storm.py 127.0.0.1 "${PORT_OF[$proxy]}" \
        "$SESSIONS" --concurrency 1000 --timeout "$STORM_TIMEOUT" --hold 60 \
        --ready "$TMP/hold.ready" >"$TMP/hold.out" 2>&1 &
    hp=$!
    PIDS+=("$hp")
    for ((i = 0; i < (STORM_TIMEOUT + 10) * 10; i++)); do
        [ -f "$TMP/hold.ready" ] && break
        kill -0 "$hp" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -f "$TMP/hold.ready" ]; then
        problem "(h) via $proxy: the clients did not finish: $(tail -2 "$TMP/hold.out" | tr '\n' '|')"
        kill -TERM "$hp" 2>/dev/null || true
        check_alive "$proxy" "(h)"
        return 0
    fi
    sleep 1
    pids=$(proc_set "${PPID_OF[$proxy]}")
    # shellcheck disable=SC2086
    rss1=$(rss_kib $pids); fd1=$(fd_count $pids)
    kill -TERM "$hp" 2>/dev/null || true
    wait "$hp" 2>/dev/null || true
    ok=$(jget "$TMP/hold.ready" 'd["ok"]')
    tall=$(jget "$TMP/hold.ready" 'd["t_all"]')
    printf 'h %s rss %s..%s fd %s..%s %s\n' "$proxy" "$rss0" "$rss1" "$fd0" "$fd1" "$(cat "$TMP/hold.ready")" >>"$TMP/runs.log"
    [ "$ok" != "$SESSIONS" ] && problem "(h) via $proxy: $ok of $SESSIONS sessions answered: $(jget "$TMP/hold.ready" 'd["errors"]')"
    if [ "$ok" -gt 0 ]; then
        record h_rss "$proxy" "$(awk -v a="$rss0" -v b="$rss1" -v n="$ok" 'BEGIN{printf "%.2f", (b-a)/n}')"
        record h_fd "$proxy" "$(awk -v a="$fd0" -v b="$fd1" -v n="$ok" 'BEGIN{printf "%.3f", (b-a)/n}')"
        record h_time "$proxy" "$tall"
    fi
    check_alive "$proxy" "(h)"
    drain
}

# ---------------------------------------------------------------- (j) check cost
PER_POOL=250          # mqlb's per-pool backend limit is 256
J_ADM=$(port)
# j_setup KIND PORTFILE NAME: $TMP/mqlb-NAME.ini and $TMP/haproxy-NAME.cfg,
# each checking every port of PORTFILE every second with the KIND check
# (tcp or redis), PER_POOL backends a pool.
j_setup() {
    local kind=$1 ports=$2 name=$3 i=0 p hopt=""
    [ "$kind" = redis ] && hopt='    option redis-check\n'
    {
        printf '[global]\nworkers = %s\nlog_level = warn\nshutdown_timeout = 2s\n' "$THREADS"
        printf '\n[admin]\nlisten = 127.0.0.1:%s\n' "$J_ADM"
    } >"$TMP/mqlb-$name.ini"
    printf 'global\n    nbthread %s\n    maxconn 2000\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout check 1s\n    timeout client 1h\n    timeout server 1h\n' \
        "$THREADS" >"$TMP/haproxy-$name.cfg"
    while read -r p; do
        if [ $((i % PER_POOL)) = 0 ]; then
            printf '\n[pool c%s]\nlisten = 127.0.0.1:%s\nhealth_check = %s\ncheck_interval = 1s\ncheck_timeout = 1s\n' \
                $((i / PER_POOL)) "$(port)" "$kind" >>"$TMP/mqlb-$name.ini"
            printf 'listen c%s\n    bind 127.0.0.1:%s\n%b' $((i / PER_POOL)) "$(port)" "$hopt" \
                >>"$TMP/haproxy-$name.cfg"
        fi
        printf 'backend = b%s 127.0.0.1:%s\n' "$i" "$p" >>"$TMP/mqlb-$name.ini"
        printf '    server b%s 127.0.0.1:%s check inter 1s\n' "$i" "$p" >>"$TMP/haproxy-$name.cfg"
        i=$((i + 1))
    done <"$ports"
    "$MQLB" -t -c "$TMP/mqlb-$name.ini" >/dev/null && haproxy -c -q -f "$TMP/haproxy-$name.cfg"
}
# (j): the listening sockets, mqlb-checks.ini, mqlb-reset-checks.ini and
# haproxy-checks.cfg
J_LISTENERS=""
j_tcp_setup() {
    local i
    start_bg listeners python3 scripts/listeners.py "$BACKENDS" "$TMP/ports.txt" \
        "$TMP/accepts.txt" "$LIFETIME" || true
    J_LISTENERS=${BG_PID:-}
    for ((i = 0; i < 300; i++)); do [ -s "$TMP/ports.txt" ] && break; sleep 0.1; done
    [ -s "$TMP/ports.txt" ] || { problem "(j) listeners.py did not start"; return 1; }
    j_setup tcp "$TMP/ports.txt" checks || return 1
    sed 's/^health_check = tcp$/health_check = tcp\ncheck_reset = on/' \
        "$TMP/mqlb-checks.ini" >"$TMP/mqlb-reset-checks.ini"
    "$MQLB" -t -c "$TMP/mqlb-reset-checks.ini" >/dev/null
}
# (jredis): REDIS_BACKENDS redis-servers (their PIDs in REDIS_PIDS), the
# ports of those that answer PING in $TMP/redis-ports.txt (REDIS_N of them),
# mqlb-redis.ini and haproxy-redis.cfg
REDIS_PIDS=()
REDIS_N=0
redis_answering() {  # redis_answering PORTFILE SECONDS: the ports that answer PING by then
    python3 - "$1" "$2" <<'PYEOF'
import socket, sys, time
ports = [int(l) for l in open(sys.argv[1]) if l.strip()]
end = time.monotonic() + float(sys.argv[2])
ok = set()
while len(ok) < len(ports) and time.monotonic() < end:
    for port in ports:
        if port in ok:
            continue
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.makefile("rb").readline() == b"+PONG\r\n":
                    ok.add(port)
        except OSError:
            pass
    if len(ok) < len(ports):
        time.sleep(0.2)
for port in ports:
    if port in ok:
        print(port)
PYEOF
}
jredis_setup() {
    local p
    free_ports "$REDIS_BACKENDS" >"$TMP/redis-ports.all" ||
        { problem "(jredis) not $REDIS_BACKENDS free ports"; return 1; }
    while read -r p; do
        start_bg "redis-$p" redis-server --port "$p" --bind 127.0.0.1 --save "" \
            --appendonly no --hz 1 --protected-mode no --maxclients 100 \
            --dir "$TMP" --dbfilename "c$p.rdb" && REDIS_PIDS+=("$BG_PID")
    done <"$TMP/redis-ports.all"
    redis_answering "$TMP/redis-ports.all" 60 >"$TMP/redis-ports.txt"
    REDIS_N=$(wc -l <"$TMP/redis-ports.txt")
    log "  (jredis) $REDIS_N of $REDIS_BACKENDS redis-servers answer PING"
    [ "$REDIS_N" = "$REDIS_BACKENDS" ] ||
        problem "(jredis) $REDIS_N of $REDIS_BACKENDS redis-servers answered PING within 60 s; the row checks those"
    [ "$REDIS_N" -gt 0 ] && j_setup redis "$TMP/redis-ports.txt" redis
}
jredis_stop() {
    local p left=0
    stop_pids "${REDIS_PIDS[@]}"
    for p in "${REDIS_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
    [ $left = 0 ] || problem "(jredis) $left redis-servers still run after KILL"
    REDIS_PIDS=()
}
accepts() { cat "$TMP/accepts.txt" 2>/dev/null || echo 0; }
# mqlb's checks so far (pass and fail), from its /metrics; "-" if unknown
mqlb_checks() {
    python3 - "$J_ADM" <<'PYEOF' 2>/dev/null || echo -
import sys, urllib.request
t = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode()
print(int(sum(float(l.split()[-1]) for l in t.splitlines()
              if l.startswith("mqlb_backend_checks_total{"))))
PYEOF
}
# checks_run PROXY NAME KEYS TARGETS SECS: PROXY (mqlb or haproxy) with
# $TMP/mqlb-NAME.ini or $TMP/haproxy-NAME.cfg, checking TARGETS backends;
# its CPU a second over SECS, checks a second and CPU a check go to the
# table rows KEYS (comma-separated).
checks_run() {
    local proxy=$1 name=$1-$2 keys=$3 targets=$4 secs=$5 pid pids c0 c1 a0 a1 t0 t1 n0=- n1=- m0 m1 n k
    case "$proxy" in
    mqlb) start_bg "$name" "$MQLB" -c "$TMP/$name.ini" || return 0 ;;
    haproxy) start_bg "$name" haproxy -db -f "$TMP/$name.cfg" || return 0 ;;
    esac
    pid=$BG_PID
    sleep "$J_WARM"     # startup and the first round of checks
    # the /metrics render (about 0.1 s of CPU at 1,000 backends) stays
    # outside the CPU window: the counts have their own times
    if [ "$proxy" = mqlb ]; then n0=$(mqlb_checks); fi
    m0=$(date +%s.%N)
    pids=$(proc_set "$pid")
    # CPU in ns (schedstat), not clock ticks: a quick run's few checks
    # cost less than the ticks' resolution
    # shellcheck disable=SC2086
    c0=$(cpu_ns $pids); a0=$(accepts); t0=$(date +%s.%N)
    sleep "$secs"
    # shellcheck disable=SC2086
    c1=$(cpu_ns $pids); a1=$(accepts); t1=$(date +%s.%N)
    if [ "$proxy" = mqlb ]; then n1=$(mqlb_checks); fi
    m1=$(date +%s.%N)
    if ! kill -0 "$pid" 2>/dev/null; then
        problem "($keys) $name died: $(tail -3 "$TMP/$name.log" | tr '\n' '|')"
        return 0
    fi
    stop_pids "$pid"
    printf '%s %s cpu_ns %s..%s accepts %s..%s checks %s..%s secs %s..%s\n' "$keys" "$name" \
        "$c0" "$c1" "$a0" "$a1" "$n0" "$n1" "$t0" "$t1" >>"$TMP/runs.log"
    local cpu rate
    cpu=$(awk -v d=$((c1 - c0)) -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", d/1e6/(b-a)}')
    # HAProxy's TCP check (and mqlb's with check_reset = on) never reaches
    # accept(): it delays the handshake's last ACK (TCP_QUICKACK off) and
    # resets. HAProxy's checks are taken at their configured rate (inter 1s).
    if [ "$proxy" = haproxy ]; then
        rate=$targets
    elif [ "$n0" != - ] && [ "$n1" != - ]; then
        rate=$(awk -v d=$((n1 - n0)) -v a="$m0" -v b="$m1" 'BEGIN{printf "%.1f", d/(b-a)}')
    else
        problem "($keys) $name: no check count from /metrics"
        return 0
    fi
    n=$(awk -v r="$rate" 'BEGIN{print (r > 0)}')
    for k in ${keys//,/ }; do
        record "${k}_rate" "$proxy" "$rate"
        record "${k}_cpu" "$proxy" "$cpu"
        [ "$n" = 1 ] && record "${k}_per" "$proxy" "$(awk -v c="$cpu" -v r="$rate" 'BEGIN{printf "%.1f", c*1e3/r}')"
    done
    return 0
}

# ---------------------------------------------------------------- runs
for ((rep = 0; rep < REPEATS; rep++)); do
    order=$(rotate "$rep" direct mqlb haproxy nginx mqlb-defer mqlb-aa)
    log "repeat $((rep + 1))/$REPEATS, order: $order"
    if row g; then
        for t in $order; do churn_run "$t" "$N_G"; done
        log "  (g) done"
    fi
    if row i; then
        for t in $(rotate "$rep" mqlb mqlb-rate haproxy nginx); do storm_run "$t"; done
        log "  (i) done"
    fi
done
if row g; then
    for p in mqlb mqlb-defer haproxy; do strace_run "$p"; done
    log "  (g) strace done"
fi
if row h; then
    for ((rep = 0; rep < REPEATS; rep++)); do
        # shellcheck disable=SC2086
        for p in $(rotate "$rep" $PROXIES); do idle_run "$p"; done
        log "  (h) repeat $((rep + 1))/$REPEATS done"
    done
fi
for p in $PROXIES; do stop_proxy "$p"; done
if row j && j_tcp_setup; then
    for ((rep = 0; rep < REPEATS; rep++)); do
        for p in $(rotate "$rep" mqlb mqlb-reset haproxy); do
            case "$p" in
            mqlb) checks_run mqlb checks j "$BACKENDS" "$J_SECS" ;;
            mqlb-reset) checks_run mqlb reset-checks jr "$BACKENDS" "$J_SECS" ;;
            haproxy) checks_run haproxy checks j,jr "$BACKENDS" "$J_SECS" ;;  # jr: the same HAProxy runs
            esac
        done
        log "  (j) repeat $((rep + 1))/$REPEATS done"
    done
fi
[ -n "$J_LISTENERS" ] && stop_pids "$J_LISTENERS" && rm -f "$TMP/accepts.txt"
if row jredis; then
    if jredis_setup; then
        for ((rep = 0; rep < REPEATS; rep++)); do
            for p in $(rotate "$rep" mqlb haproxy); do checks_run "$p" redis jredis "$REDIS_N" "$J_REDIS_SECS"; done
            log "  (jredis) repeat $((rep + 1))/$REPEATS done"
        done
    fi
    jredis_stop
fi
ELAPSED=$(( $(date +%s) - START ))

# ---------------------------------------------------------------- table
mkdir -p "$(dirname "$OUT")"
{
    echo "## mqlb fleet benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(uname -srm), nproc: $(nproc), load at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- mqlb: $("$MQLB" -V 2>&1 | head -1); haproxy: $(haproxy -v 2>&1 | head -1 | sed 's/ - https.*//'); nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'); redis: $(redis-server --version | awk '{print $3}' | sed 's/v=//')"
    echo "- threads: $THREADS; repeats: $REPEATS (medians); mode: $([ "$QUICK" = 1 ] && echo quick || echo full); rows: $ROWS; run time ${ELAPSED}s; nofile $NOFILE"
    echo "- (g) $N_G connections per run, strace run $N_STRACE; (h) $SESSIONS sessions; (i) $CLIENTS clients, mqlb-rate: max_connect_rate = $RATE/s per backend; (j) $BACKENDS backends, ${J_SECS}s; (jredis) $REDIS_N redis-servers, ${J_REDIS_SECS}s"
    for n in "${NOTES[@]}"; do echo "- note: $n"; done
    echo
    python3 - "$RESULTS" "$RATE" "$REDIS_N" <<'EOF'
import sys, statistics, collections
res = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, t, v = line.rstrip("\n").split("\t")
    res[(k, t)].append(float(v))
rate = float(sys.argv[2])
rn = "redis check, %s redis-servers" % sys.argv[3]
cols = ("direct", "mqlb", "mqlb-defer", "mqlb-rate", "haproxy", "nginx")
rows = [
    ("g_rate", "(g) c50 -k 0, connections/s (higher better)", "int"),
    ("g_cpu", "(g) proxy CPU µs/connection (lower better)", "f2"),
    ("g_sys", "(g) syscalls/connection, strace -c -f (lower better)", "f2"),
    ("i_time", "(i) storm: s until the last PONG (lower better)", "f2"),
    ("i_err", "(i) storm: clients without PONG (lower better)", "int"),
    ("i_peak", "(i) storm: peak new conn/s at one backend, over 100 ms", "int"),
    ("i_peak1", "(i) storm: peak new conn/s at one backend, over 1 s", "int"),
    ("h_rss", "(h) RSS KiB per idle session (lower better)", "f2"),
    ("h_fd", "(h) descriptors per idle session", "f2"),
    ("h_time", "(h) s to open all sessions (lower better)", "f2"),
    ("j_cpu", "(j) proxy CPU ms per second (lower better)", "f2"),
    ("j_rate", "(j) checks/s (mqlb: its /metrics; haproxy: configured, see below)", "int"),
    ("j_per", "(j) proxy CPU µs per check (lower better)", "f2"),
    ("jr_cpu", "(j) mqlb with check_reset = on: proxy CPU ms per second (lower better)", "f2"),
    ("jr_rate", "(j) mqlb with check_reset = on: checks/s", "int"),
    ("jr_per", "(j) mqlb with check_reset = on: proxy CPU µs per check (lower better)", "f2"),
    ("jredis_cpu", "(j) %s: proxy CPU ms per second (lower better)" % rn, "f2"),
    ("jredis_rate", "(j) %s: checks/s (mqlb: its /metrics; haproxy: configured)" % rn, "int"),
    ("jredis_per", "(j) %s: proxy CPU µs per check (lower better)" % rn, "f2"),
]
def med(k, t):
    v = res.get((k, t))
    return statistics.median(v) if v else None
def fmt(v, kind):
    if v is None:
        return "-"
    return "{:,.0f}".format(v) if kind == "int" else "%.2f" % v
def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else "%.2f" % (a / b)
print("| workload | " + " | ".join(cols) + " | mqlb/haproxy | mqlb-defer/haproxy |")
print("|---|" + "---:|" * (len(cols) + 2))
for key, label, kind in rows:
    if not any((key, t) in res for t in cols):
        continue
    v = {t: med(key, t) for t in cols}
    print("| %s | %s | %s | %s |" % (label, " | ".join(fmt(v[t], kind) for t in cols),
                                    ratio(v["mqlb"], v["haproxy"]),
                                    ratio(v["mqlb-defer"], v["haproxy"])))
a, b = med("g_rate", "mqlb"), med("g_rate", "mqlb-aa")
if a and b:
    print("| noise: (g) conn/s of mqlb measured a second time in the same repeat (%s), second/first in the ratio column | - | %s | - | - | - | - | %.2f | - |"
          % (fmt(b, "int"), fmt(a, "int"), b / a))
print()
p, p1 = med("i_peak", "mqlb-rate"), med("i_peak1", "mqlb-rate")
if p:
    print("mqlb-rate is the same mqlb with max_connect_rate = %d/s per backend (and a "
          "wait queue); its peak at one backend is %.2f× the limit over 100 ms (the rate "
          "allows bursts of a tenth of a second's worth) and %s over 1 s."
          % (rate, p / rate, "%.2f×" % (p1 / rate) if p1 else "- (the storm was shorter)"))
if med("j_cpu", "haproxy") is not None:
    print("HAProxy's TCP check (and mqlb's with check_reset = on) resets before the handshake "
          "completes on the server side, so the check listeners never accept it; HAProxy's check "
          "rate is the configured one (inter 1s), mqlb's is counted by its /metrics. The "
          "check_reset rows compare with the same HAProxy runs.")
if med("jredis_cpu", "haproxy") is not None or med("jredis_cpu", "mqlb") is not None:
    print("The redis check rows: each redis-server is checked every second with a new "
          "connection, PING and +PONG (mqlb: health_check = redis, PING inline; HAProxy: "
          "option redis-check, PING as a RESP array, check inter 1s). They differ in the "
          "close: mqlb closes with a FIN and its side keeps the TIME_WAIT (check_reset applies "
          "to bare checks only), HAProxy resets (no TIME_WAIT on either side).")
print("\"direct\" is one redis-server without a proxy. Storm and idle clients: "
      "scripts/storm.py; check targets: scripts/listeners.py.")
EOF
    if [ -s "$TMP/syscalls.txt" ]; then
        echo
        echo "Syscalls per connection in the strace run (most frequent first):"
        echo
        sed 's/^/- /' "$TMP/syscalls.txt"
    fi
    if [ -s "$PROBLEMS" ]; then
        echo
        echo "Problems seen during the run:"
        echo
        sed 's/^/- /' "$PROBLEMS"
    fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cp "$TMP/runs.log" "${OUT%.md}-runs.log" 2>/dev/null || true
for p in mqlb mqlb-defer haproxy; do cp "$TMP/strace-$p.txt" "${OUT%.md}-strace-$p.txt" 2>/dev/null || true; done
cat "$OUT"
log "table saved to $OUT"
