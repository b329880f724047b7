#!/usr/bin/env bash
# mqlb benchmark: mqlb against HAProxy and NGINX stream, side by side on the
# same machine, same thread count, loopback only (issue 7).
#
#   scripts/bench.sh [--quick] [--threads N] [--repeats N] [--out FILE]
#   make bench BENCH_ARGS="--quick"
#
# Targets run interleaved (direct, mqlb, haproxy, nginx, then again, the
# starting target rotating each repeat); the table shows medians.
# Workloads:
#   (a) redis-benchmark -c 50 -P 1 -t ping_mbulk,set,get   request rate
#   (b) the same with -P 16                                 pipelined
#   (c) redis-benchmark -c 50 -k 0 -t ping_mbulk            connection rate
#   (d) iperf3 through a one-backend pool, both directions  bulk
#   (e) idle connections held through the proxy             RSS per connection
#   (f) redis-benchmark -c 1 -t ping_mbulk                  p50 / p99 latency
#   (g), (h) mqlb --takeover of idle / busy sessions (bench_takeover.py)
# Proxy CPU time (utime+stime from /proc/PID/stat, summed over the proxy's
# processes) is read around every run and reported per request/connection.
#
# Environment: MQLB_BIN (default ./mqlb; copied into the temp dir so a
# rebuild during the run does not matter), BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail

THREADS=2
REPEATS=3
QUICK=0
OUT=build/bench.md
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --threads) THREADS="$2"; shift ;;
    --threads=*) THREADS="${1#*=}" ;;
    --repeats) REPEATS="$2"; shift ;;
    --repeats=*) REPEATS="${1#*=}" ;;
    --out) OUT="$2"; shift ;;
    --out=*) OUT="${1#*=}" ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
case "$THREADS" in ''|*[!0-9]*|0) echo "bench: --threads must be >= 1" >&2; exit 2 ;; esac
case "$REPEATS" in ''|*[!0-9]*|0) echo "bench: --repeats must be >= 1" >&2; exit 2 ;; esac

if [ "$QUICK" = 1 ]; then
    [ "$REPEATS" = 3 ] && REPEATS=1
    N_A=20000          # requests per test, (a)
    N_B=100000         # (b)
    N_C=5000           # (c) connections
    N_F=5000           # (f)
    IPERF_T=2          # seconds per direction, (d)
    IDLE_SIZES="5000"  # (e)
    RUN_TIMEOUT=60
else
    N_A=100000
    N_B=500000
    N_C=20000
    N_F=20000
    IPERF_T=5
    IDLE_SIZES="5000 20000"
    RUN_TIMEOUT=180
fi
LIFETIME=3600          # hard bound on every server we start

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- packages
# shellcheck source=scripts/bench_lib.sh
. "$(dirname "$0")/bench_lib.sh"
bench_install haproxy nginx libnginx-mod-stream redis-server redis-tools iperf3 procps iproute2 python3 coreutils curl

cd "$(dirname "$0")/.."
MQLB_SRC_BIN=${MQLB_BIN:-./mqlb}
if [ ! -x "$MQLB_SRC_BIN" ]; then
    echo "bench: $MQLB_SRC_BIN not found; run make first" >&2
    exit 1
fi

# ---------------------------------------------------------------- temp dir, cleanup
bench_tmp mqlb-bench      # TMP, PIDS and the cleanup trap (bench_lib.sh)

cp "$MQLB_SRC_BIN" "$TMP/mqlb"
MQLB="$TMP/mqlb"

# ---------------------------------------------------------------- descriptor limit
BENCH_NAME=bench
nofile_setup
IDLE_CAP=$SESSION_CAP
IDLE_NOTE=""
sizes=""
for k in $IDLE_SIZES; do
    if [ "$k" -gt "$IDLE_CAP" ]; then
        IDLE_NOTE="${IDLE_NOTE}(e) asked for $k idle connections but the descriptor limit here is $NOFILE (hard limit; cannot be raised without CAP_SYS_RESOURCE), so $IDLE_CAP were used. "
        k=$IDLE_CAP
    fi
    case " $sizes " in *" $k "*) ;; *) sizes="$sizes $k" ;; esac
done
IDLE_SIZES=$sizes

# ---------------------------------------------------------------- ports
NPORTS=16
read -r EPH_LO _ < /proc/sys/net/ipv4/ip_local_port_range
PMAX=40000
[ "$EPH_LO" -gt 20100 ] && [ "$EPH_LO" -lt "$PMAX" ] && PMAX=$((EPH_LO - NPORTS - 1))
ports_free() {
    local base=$1 used
    used=$(ss -ltnH 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
    local i
    for ((i = 0; i < NPORTS; i++)); do
        if grep -qx "$((base + i))" <<<"$used"; then return 1; fi
    done
    return 0
}
BASE=""
for _ in $(seq 1 50); do
    b=$((20000 + RANDOM % (PMAX - 20000)))
    if ports_free "$b"; then BASE=$b; break; fi
done
[ -n "$BASE" ] || { echo "bench: no free port range found" >&2; exit 1; }
R1=$BASE; R2=$((BASE + 1)); R3=$((BASE + 2)); IPERF=$((BASE + 3))
M_RED=$((BASE + 4)); M_IPF=$((BASE + 5)); M_ADM=$((BASE + 6))
H_RED=$((BASE + 7)); H_IPF=$((BASE + 8)); H_SPL=$((BASE + 9))
N_RED=$((BASE + 10)); N_IPF=$((BASE + 11))
log "temp dir $TMP, ports $BASE..$((BASE + 11)), threads $THREADS, repeats $REPEATS, nofile $NOFILE"

# ---------------------------------------------------------------- process helpers
# (start_bg, stop_pids, wait_listen, proc_set, cpu_ticks, rss_kib: bench_lib.sh)

: >"$TMP/runs.log"     # raw numbers of every run, copied next to the table
RESULTS=$TMP/results.tsv
: >"$RESULTS"
PROBLEMS=$TMP/problems.txt
: >"$PROBLEMS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
problem() { log "PROBLEM: $*"; printf '%s\n' "$*" >>"$PROBLEMS"; }

# ---------------------------------------------------------------- backends
for r in 1 2 3; do
    port_var=R$r
    start_bg "redis$r" redis-server --port "${!port_var}" --bind 127.0.0.1 \
        --save "" --appendonly no --maxclients 30000 --dir "$TMP" \
        --dbfilename "r$r.rdb" --protected-mode no
    eval "REDIS${r}_PID=$BG_PID"
done
start_bg iperf3 iperf3 -s -B 127.0.0.1 -p "$IPERF"
for p in "$R1" "$R2" "$R3" "$IPERF"; do wait_listen "$p"; done

# ---------------------------------------------------------------- proxy configs
cat >"$TMP/mqlb.ini" <<EOF
[global]
workers = $THREADS
max_connections = 100000
log_level = warn
shutdown_timeout = 2s

[admin]
listen = 127.0.0.1:$M_ADM

[pool redis]
listen = 127.0.0.1:$M_RED
balance = roundrobin
health_check = tcp
check_interval = 2s
check_timeout = 1s
connect_timeout = 3s
idle_timeout = 1h
backend = r1 127.0.0.1:$R1
backend = r2 127.0.0.1:$R2
backend = r3 127.0.0.1:$R3

; one backend, the iperf3 server; no health check (HAProxy and NGINX have
; none here either, and a check connection could disturb iperf3's handshake)
[pool iperf]
listen = 127.0.0.1:$M_IPF
balance = roundrobin
health_check = none
connect_timeout = 3s
idle_timeout = 1h
backend = i1 127.0.0.1:$IPERF
EOF

cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread $THREADS
    maxconn $HAP_MAXCONN
    maxpipes $HAP_MAXPIPES
    pidfile $TMP/haproxy.pid

defaults
    mode tcp
    balance roundrobin
    timeout connect 3s
    timeout client 1h
    timeout server 1h
    maxconn 100000

frontend fe_redis
    bind 127.0.0.1:$H_RED
    default_backend be_redis

backend be_redis
    server r1 127.0.0.1:$R1
    server r2 127.0.0.1:$R2
    server r3 127.0.0.1:$R3

frontend fe_iperf
    bind 127.0.0.1:$H_IPF
    default_backend be_iperf

backend be_iperf
    server i1 127.0.0.1:$IPERF

frontend fe_iperf_splice
    bind 127.0.0.1:$H_SPL
    option splice-auto
    default_backend be_iperf_splice

backend be_iperf_splice
    option splice-auto
    server i1 127.0.0.1:$IPERF
EOF

NGX_MOD=$(nginx_stream_load)
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EOF
$NGX_MOD
worker_processes $THREADS;
worker_rlimit_nofile $NOFILE;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events {
    worker_connections $((NOFILE - 100));
}
stream {
    upstream redis {
        server 127.0.0.1:$R1;
        server 127.0.0.1:$R2;
        server 127.0.0.1:$R3;
    }
    upstream iperf {
        server 127.0.0.1:$IPERF;
    }
    server {
        listen 127.0.0.1:$N_RED;
        proxy_pass redis;
        proxy_connect_timeout 3s;
        proxy_timeout 1h;
    }
    server {
        listen 127.0.0.1:$N_IPF;
        proxy_pass iperf;
        proxy_connect_timeout 3s;
        proxy_timeout 1h;
    }
}
EOF

"$MQLB" -t -c "$TMP/mqlb.ini" >/dev/null
haproxy -c -q -f "$TMP/haproxy.cfg"
nginx -t -q -p "$TMP/nginx" -e "$TMP/nginx/logs/error.log" -c "$TMP/nginx/nginx.conf"

declare -A PPID_OF=()      # proxy -> main PID
declare -A RED_PORT=([direct]=$R1 [mqlb]=$M_RED [haproxy]=$H_RED [nginx]=$N_RED)
declare -A IPF_PORT=([direct]=$IPERF [mqlb]=$M_IPF [haproxy]=$H_IPF
                     [haproxy-splice]=$H_SPL [nginx]=$N_IPF)
declare -A PROXY_OF=([mqlb]=mqlb [haproxy]=haproxy [haproxy-splice]=haproxy [nginx]=nginx)

wait_pool_ready() {   # all three redis backends answer through the proxy
    local proxy=$1 port=$2 i
    for i in $(seq 1 100); do
        if [ "$proxy" = mqlb ]; then
            if curl -s -m 1 "http://127.0.0.1:$M_ADM/status" 2>/dev/null |
                python3 -c 'import json,sys
d=json.load(sys.stdin)
st=[b["state"] for p in d["pools"] for b in p["backends"] if p["name"]=="redis"]
sys.exit(0 if st.count("up")==3 else 1)' 2>/dev/null; then
                return 0
            fi
        else
            pings_ok "$port" && return 0
        fi
        sleep 0.1
    done
    echo "bench: $proxy pool not ready" >&2
    return 1
}

start_proxy() {
    local proxy=$1
    case "$proxy" in
    mqlb)
        start_bg mqlb "$MQLB" -c "$TMP/mqlb.ini"
        PPID_OF[mqlb]=$BG_PID
        wait_listen "$M_RED"; wait_listen "$M_IPF" ;;
    haproxy)
        start_bg haproxy haproxy -db -f "$TMP/haproxy.cfg"
        PPID_OF[haproxy]=$BG_PID
        wait_listen "$H_RED"; wait_listen "$H_IPF"; wait_listen "$H_SPL" ;;
    nginx)
        start_bg nginx nginx -p "$TMP/nginx" -e "$TMP/nginx/logs/error.log" \
            -c "$TMP/nginx/nginx.conf" -g 'daemon off;'
        PPID_OF[nginx]=$BG_PID
        wait_listen "$N_RED"; wait_listen "$N_IPF"
        # wait for every worker
        for _ in $(seq 1 100); do
            [ "$(proc_set "$BG_PID" | wc -l)" -ge $((THREADS + 1)) ] && break
            sleep 0.05
        done ;;
    esac
    wait_pool_ready "$proxy" "${RED_PORT[$proxy]}"
}
stop_proxy() {
    local proxy=$1 p=${PPID_OF[$1]:-}
    [ -n "$p" ] && stop_pids "$p"
    PPID_OF[$proxy]=""
}
# Check a proxy is still alive after a run; report a crash with its log.
check_alive() {
    local proxy=$1 what=$2 p=${PPID_OF[$1]:-}
    [ -z "$p" ] && return 0
    if ! kill -0 "$p" 2>/dev/null; then
        problem "$proxy died during $what; last log lines: $(tail -5 "$TMP/$proxy.log" 2>/dev/null | tr '\n' '|')"
        start_proxy "$proxy" || problem "$proxy could not be restarted"
    fi
}

PROXIES="mqlb haproxy nginx"
for p in $PROXIES; do start_proxy "$p"; done
log "proxies up: mqlb ${PPID_OF[mqlb]}, haproxy ${PPID_OF[haproxy]}, nginx ${PPID_OF[nginx]}"


tpids() {    # PIDs whose CPU counts for a target ("" for direct)
    local t=$1
    [ "$t" = direct ] && return 0
    proc_set "${PPID_OF[${PROXY_OF[$t]}]}"
}

# redis_run KEY TARGET NREQ_FOR_CPU ARGS...: run redis-benchmark, record rps
# per test as KEY_TEST (and p50/p99 for latency), proxy CPU per request as KEY_cpu
redis_run() {
    local key=$1 t=$2 ncpu=$3; shift 3
    local port=${RED_PORT[$t]} pids c0 c1 out rc=0
    pids=$(tpids "$t")
    # shellcheck disable=SC2086
    c0=$(cpu_ticks $pids)
    out=$(timeout -k 5 "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" "$@" -q --csv 2>"$TMP/rb.err") || rc=$?
    # shellcheck disable=SC2086
    c1=$(cpu_ticks $pids)
    if [ $rc -ne 0 ] || ! grep -q '^"[A-Z_]*","[0-9]' <<<"$out"; then
        problem "$key via $t: redis-benchmark $* exited $rc; stderr: $(grep -v 'Keepalive disabled' "$TMP/rb.err" | tail -3 | tr '\n' '|') stdout: $(tail -3 <<<"$out" | tr '\n' '|')"
        check_alive "${PROXY_OF[$t]:-none}" "$key"
        return 0
    fi
    while IFS=, read -r test rps _avg _min p50 _p95 p99 _max; do
        test=${test//\"/}; rps=${rps//\"/}
        [ "$test" = test ] && continue
        record "${key}_$test" "$t" "$rps"
        if [ "$key" = f ]; then
            record f_p50 "$t" "$(awk -v v="${p50//\"/}" 'BEGIN{print v*1000}')"
            record f_p99 "$t" "$(awk -v v="${p99//\"/}" 'BEGIN{print v*1000}')"
        fi
    done <<<"$out"
    printf '%s %s ticks %s..%s out %s\n' "$key" "$t" "$c0" "$c1" "$(tr '\n' ' ' <<<"$out")" >>"$TMP/runs.log"
    if [ "$t" != direct ]; then
        record "${key}_cpu" "$t" "$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$ncpu" 'BEGIN{printf "%.3f", d/hz*1e6/n}')"
        check_alive "${PROXY_OF[$t]}" "$key"
    fi
}

# iperf_run TARGET: both directions, Gbit/s and proxy CPU ms per GB
iperf_run() {
    local t=$1 port=${IPF_PORT[$1]} dir flag pids c0 c1 out rc gbps bytes
    for dir in fwd rev; do
        flag=""; [ $dir = rev ] && flag=-R
        pids=$(tpids "$t")
        for _ in 1 2 3; do
            rc=0
            # shellcheck disable=SC2086
            c0=$(cpu_ticks $pids)
            out=$(timeout -k 5 $((IPERF_T + 20)) iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_T" \
                --connect-timeout 3000 -J $flag 2>&1) || rc=$?
            # shellcheck disable=SC2086
            c1=$(cpu_ticks $pids)
            read -r gbps bytes < <(python3 -c 'import json,sys
try:
    d=json.loads(sys.stdin.read()); s=d["end"]["sum_received"]
    print(s["bits_per_second"]/1e9, s["bytes"])
except Exception:
    print("x x")' <<<"$out")
            [ "$gbps" != x ] && [ $rc -eq 0 ] && break
            sleep 1
        done
        if [ "$gbps" = x ] || [ $rc -ne 0 ]; then
            problem "d_$dir via $t: iperf3 $flag failed (rc $rc): $(grep -o '"error":[^}]*' <<<"$out" | head -1)"
            check_alive "${PROXY_OF[$t]:-none}" "d_$dir"
            continue
        fi
        printf 'd_%s %s ticks %s..%s gbps %s bytes %s\n' "$dir" "$t" "$c0" "$c1" "$gbps" "$bytes" >>"$TMP/runs.log"
        record "d_$dir" "$t" "$gbps"
        if [ "$t" != direct ]; then
            record "d_cpu_$dir" "$t" "$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v b="$bytes" 'BEGIN{printf "%.2f", d/hz*1e3/(b/1e9)}')"
            check_alive "${PROXY_OF[$t]}" "d_$dir"
        fi
        sleep 0.5   # let the iperf3 server get ready for the next client
    done
}

# ---------------------------------------------------------------- idle memory
cat >"$TMP/hold.py" <<'EOF'
import os, socket, sys, time
host, port, n, out, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
socks, fail, err = [], 0, ""
for i in range(n):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, port))
        socks.append(s)
    except OSError as e:
        fail += 1
        err = str(e)
        s.close()
        if fail > 50:
            break
with open(out + ".tmp", "w") as f:
    f.write("%d %d %s\n" % (len(socks), fail, err.replace(" ", "_") or "-"))
os.rename(out + ".tmp", out)
time.sleep(hold)
# still open? a closed peer reads as EOF
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print("closed_by_peer", closed)
EOF

redis_clients() {   # total connected clients on the three backends
    local sum=0 r v
    for r in "$R1" "$R2" "$R3"; do
        v=$(timeout 3 redis-cli -h 127.0.0.1 -p "$r" info clients 2>/dev/null |
            awk -F: '/^connected_clients:/ {print $2+0}') || v=0
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

idle_run() {    # idle_run PROXY K
    local proxy=$1 k=$2 pids rss0 rss1 base ok fail err hp i cur
    stop_proxy "$proxy"
    start_proxy "$proxy"
    sleep 0.5
    pids=$(proc_set "${PPID_OF[$proxy]}")
    # shellcheck disable=SC2086
    rss0=$(rss_kib $pids)
    base=$(redis_clients)
    rm -f "$TMP/hold.ready"
    timeout -k 5 120 python3 "$TMP/hold.py" 127.0.0.1 "${RED_PORT[$proxy]}" "$k" \
        "$TMP/hold.ready" 60 >"$TMP/hold.out" 2>&1 &
    hp=$!
    PIDS+=("$hp")
    for ((i = 0; i < 900; i++)); do
        [ -f "$TMP/hold.ready" ] && break
        kill -0 "$hp" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -f "$TMP/hold.ready" ]; then
        problem "e_$k via $proxy: holder did not finish connecting: $(tail -3 "$TMP/hold.out" | tr '\n' '|')"
        kill -TERM "$hp" 2>/dev/null || true
        check_alive "$proxy" "e_$k"
        return 0
    fi
    read -r ok fail err <"$TMP/hold.ready"
    # wait until the proxy has connected every session to a backend
    cur=0
    for ((i = 0; i < 300; i++)); do
        cur=$(( $(redis_clients) - base ))
        [ "$cur" -ge "$ok" ] && break
        sleep 0.1
    done
    sleep 1
    pids=$(proc_set "${PPID_OF[$proxy]}")
    # shellcheck disable=SC2086
    rss1=$(rss_kib $pids)
    kill -TERM "$hp" 2>/dev/null || true
    wait "$hp" 2>/dev/null || true
    if [ "$fail" -gt 0 ] || [ "$cur" -lt "$ok" ]; then
        problem "e_$k via $proxy: $ok connected, $fail failed ($err), backends saw $cur new clients"
    fi
    printf 'e_%s %s rss %s..%s ok %s fail %s backends %s\n' "$k" "$proxy" "$rss0" "$rss1" "$ok" "$fail" "$cur" >>"$TMP/runs.log"
    # per session the proxy actually holds (connected on both sides)
    [ "$cur" -lt "$ok" ] && ok=$cur
    if [ "$ok" -gt 0 ]; then
        record "e_$k" "$proxy" "$(awk -v a="$rss0" -v b="$rss1" -v n="$ok" 'BEGIN{printf "%.2f", (b-a)/n}')"
        record "e_base" "$proxy" "$rss0"
    fi
    check_alive "$proxy" "e_$k"
    # let the backends see the disconnects before the next measurement
    for ((i = 0; i < 100; i++)); do
        [ "$(redis_clients)" -le $((base + 5)) ] && break
        sleep 0.1
    done
}

# ---------------------------------------------------------------- runs
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((rep = 0; rep < REPEATS; rep++)); do
    order=$(rotate "$rep" direct mqlb haproxy nginx)
    log "repeat $((rep + 1))/$REPEATS, order: $order"
    for t in $order; do redis_run a "$t" $((3 * N_A)) -c 50 -P 1 -n "$N_A" -t ping_mbulk,set,get; done
    log "  (a) done"
    for t in $order; do redis_run b "$t" $((3 * N_B)) -c 50 -P 16 -n "$N_B" -t ping_mbulk,set,get; done
    log "  (b) done"
    for t in $order; do redis_run c "$t" "$N_C" -c 50 -k 0 -n "$N_C" -t ping_mbulk; done
    log "  (c) done"
    for t in $order; do redis_run f "$t" "$N_F" -c 1 -n "$N_F" -t ping_mbulk; done
    log "  (f) done"
    for t in $(rotate "$rep" direct mqlb haproxy haproxy-splice nginx); do iperf_run "$t"; done
    log "  (d) done"
done
for ((rep = 0; rep < REPEATS; rep++)); do
    for k in $IDLE_SIZES; do
        # shellcheck disable=SC2086
        for p in $(rotate "$rep" $PROXIES); do idle_run "$p" "$k"; done
        log "  (e) $k idle, repeat $((rep + 1))/$REPEATS done"
    done
done
ELAPSED=$(( $(date +%s) - START ))

# ---------------------------------------------------------------- table
mkdir -p "$(dirname "$OUT")"
{
    echo "## mqlb benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(uname -srm), nproc: $(nproc), load at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- mqlb: $("$MQLB" -V 2>&1 | head -1); haproxy: $(haproxy -v 2>&1 | head -1 | sed 's/ - https.*//'); nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'); redis: $(redis-server --version | awk '{print $3}' | sed 's/v=//'); iperf3: $(iperf3 --version | head -1 | awk '{print $2}')"
    echo "- threads: $THREADS (mqlb workers, haproxy nbthread, nginx worker_processes); repeats: $REPEATS (medians); mode: $([ "$QUICK" = 1 ] && echo quick || echo full); run time ${ELAPSED}s"
    echo "- requests per test: (a) $N_A, (b) $N_B, (c) $N_C connections, (f) $N_F; iperf3 ${IPERF_T}s per direction; idle connections:$IDLE_SIZES"
    echo "- loopback only; CPU = utime+stime of the proxy's processes (/proc/PID/stat, ${CLK_TCK} Hz ticks)"
    [ -n "$IDLE_NOTE" ] && echo "- note: $IDLE_NOTE"
    echo
    python3 - "$RESULTS" "$IDLE_SIZES" <<'EOF'
import sys, statistics, collections
res = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, t, v = line.rstrip("\n").split("\t")
    res[(k, t)].append(float(v))
sizes = sys.argv[2].split()
rows = [
    ("a_PING_MBULK", "(a) c50 P1 PING_MBULK, req/s (higher better)", "rate"),
    ("a_SET", "(a) c50 P1 SET, req/s (higher better)", "rate"),
    ("a_GET", "(a) c50 P1 GET, req/s (higher better)", "rate"),
    ("a_cpu", "(a) proxy CPU µs/request (lower better)", "cpu"),
    ("b_PING_MBULK", "(b) c50 P16 PING_MBULK, req/s (higher better)", "rate"),
    ("b_SET", "(b) c50 P16 SET, req/s (higher better)", "rate"),
    ("b_GET", "(b) c50 P16 GET, req/s (higher better)", "rate"),
    ("b_cpu", "(b) proxy CPU µs/request (lower better)", "cpu"),
    ("c_PING_MBULK", "(c) c50 -k 0, connections/s (higher better)", "rate"),
    ("c_cpu", "(c) proxy CPU µs/connection (lower better)", "cpu"),
    ("d_fwd", "(d) bulk client→server, Gbit/s (higher better)", "gbps"),
    ("d_rev", "(d) bulk server→client (-R), Gbit/s (higher better)", "gbps"),
    ("d_cpu_fwd", "(d) proxy CPU ms/GB client→server (lower better)", "cpu"),
    ("d_cpu_rev", "(d) proxy CPU ms/GB server→client (lower better)", "cpu"),
]
rows += [("e_%s" % k, "(e) RSS KiB per idle connection @%s (lower better)" % k, "kib") for k in sizes]
rows += [
    ("e_base", "(e) RSS KiB at start (lower better)", "int"),
    ("f_p50", "(f) c1 latency p50, µs (lower better)", "us"),
    ("f_p99", "(f) c1 latency p99, µs (lower better)", "us"),
    ("f_PING_MBULK", "(f) c1 PING_MBULK, req/s (higher better)", "rate"),
    ("f_cpu", "(f) proxy CPU µs/request (lower better)", "cpu"),
]
def med(k, t):
    v = res.get((k, t))
    return statistics.median(v) if v else None
def fmt(v, kind):
    if v is None:
        return "-"
    if kind == "rate" or kind == "int":
        return "{:,.0f}".format(v)
    if kind == "gbps":
        return "%.2f" % v
    if kind == "us":
        return "%.0f" % v
    return "%.2f" % v
def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2f" % (a / b)
print("| workload | direct | mqlb | haproxy | haproxy-splice | nginx | mqlb/haproxy | mqlb/direct |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for key, label, kind in rows:
    if not any((key, t) in res for t in ("direct", "mqlb", "haproxy", "haproxy-splice", "nginx")):
        continue
    v = {t: med(key, t) for t in ("direct", "mqlb", "haproxy", "haproxy-splice", "nginx")}
    ref = v["haproxy"]
    if key.startswith("d_"):
        # bulk: against HAProxy's better setting (splice-auto, normally)
        cands = [x for x in (v["haproxy"], v["haproxy-splice"]) if x is not None]
        if cands:
            ref = max(cands) if key in ("d_fwd", "d_rev") else min(cands)
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        label, fmt(v["direct"], kind), fmt(v["mqlb"], kind), fmt(v["haproxy"], kind),
        fmt(v["haproxy-splice"], kind), fmt(v["nginx"], kind),
        ratio(v["mqlb"], ref), ratio(v["mqlb"], v["direct"])))
print()
print("Bulk rows compare mqlb with HAProxy's better setting (plain or splice-auto). "
      "\"direct\" is one redis-server / the iperf3 server without a proxy.")
EOF
    if [ -s "$PROBLEMS" ]; then
        echo
        echo "Problems seen during the run:"
        echo
        sed 's/^/- /' "$PROBLEMS"
    fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
# (g), (h): upgrades without a disconnect (scripts/bench_takeover.py).
log "takeover: idle and busy sessions moved to a new process"
{
    echo
    echo "### Takeover (mqlb --takeover, $THREADS workers)"
    echo
    echo "| takeover | mqlb |"
    echo "|---|---:|"
    if [ "$QUICK" = 1 ]; then TO_ARGS="--idle 2000 --busy 200"; else TO_ARGS=""; fi
    MQLB_BIN="$MQLB" python3 "$(dirname "$0")/bench_takeover.py" \
        --workers "$THREADS" $TO_ARGS 2>&1 || problem "takeover benchmark failed"
} >>"$OUT"
cp "$TMP/runs.log" "${OUT%.md}-runs.log" 2>/dev/null || true
cat "$OUT"
log "table saved to $OUT"
