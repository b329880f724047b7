#!/usr/bin/env bash
# TLS benchmark rows (issue 15): mqlb terminating TLS against HAProxy
# (`bind ... ssl crt`), NGINX stream (`listen ... ssl`) and a direct TLS
# connection to redis-server --tls-port; same certificate (ECDSA P-256,
# signed by a test CA), same OpenSSL, same thread count, loopback only.
#
#   scripts/bench_tls.sh [--quick] [--threads N] [--repeats N] [--out FILE]
#
# Workloads (redis-benchmark --tls; targets interleaved, medians):
#   (t1) -c 50 -k 0: a new TLS connection per request   handshakes/s
#   (t2) -c 50 -P 1  persistent connections: PING, SET, GET  requests/s
#   (t3) -c 50 -P 16 pipelined                          requests/s
#   (t4) -c 4 -d 65536 SET and GET                      bulk MB/s
#   (t6) the same, pipelined 8 deep (-P 8)              bulk MB/s
#        (at -P 1 a 64 KiB SET waits ~40 ms for redis-benchmark's own
#        Nagle and a delayed ACK, the same for every target, direct too)
#   (t5) idle TLS connections held through the proxy    RSS KiB each
# Proxy CPU (utime+stime of its processes) is reported per request.
# (t5) is measured once, in the first repeat, on proxies that never held
# that many connections before: HAProxy keeps freed memory in its pools,
# so a second round of idle connections costs it no new RSS.
# --idle-only runs (t5) alone.
set -euo pipefail

THREADS=2
REPEATS=3
QUICK=0
IDLE_ONLY=0
OUT=build/bench-tls.md
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --idle-only) IDLE_ONLY=1 ;;
    --threads) THREADS="$2"; shift ;;
    --repeats) REPEATS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench_tls: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    [ "$REPEATS" = 3 ] && REPEATS=1
    N1=2000; N2=20000; N3=100000; N4=1000; IDLE=1000
else
    N1=10000; N2=100000; N3=500000; N4=5000; IDLE=5000
fi
LIFETIME=3600
log() { printf '[bench-tls %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck source=scripts/bench_lib.sh
. "$(dirname "$0")/bench_lib.sh"
cd "$(dirname "$0")/.."
MQLB_SRC_BIN=${MQLB_BIN:-./mqlb}
[ -x "$MQLB_SRC_BIN" ] || { echo "bench_tls: $MQLB_SRC_BIN not found; run make first" >&2; exit 1; }
BENCH_NAME=bench_tls
bench_tmp mqlb-bench-tls   # TMP, PIDS and the cleanup trap (bench_lib.sh)
cp "$MQLB_SRC_BIN" "$TMP/mqlb"
ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- certificate
(cd "$TMP"
 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
     -keyout ca.key -out ca.pem -subj "/CN=bench CA" -days 2 2>/dev/null
 openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
     -keyout srv.key -out srv.csr -subj "/CN=bench.test" 2>/dev/null
 printf 'subjectAltName=DNS:bench.test\n' >ext
 openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -set_serial 7 \
     -days 2 -extfile ext -out srv.crt 2>/dev/null
 cat srv.crt srv.key >srv.pem)

# ---------------------------------------------------------------- ports
R=$(port); RT=$(port); M=$(port); MA=$(port); H=$(port); N=$(port)

start_bg redis redis-server --port "$R" --bind 127.0.0.1 --save "" --appendonly no \
    --maxclients 30000 --protected-mode no --dir "$TMP"
start_bg redis-tls redis-server --port 0 --tls-port "$RT" --bind 127.0.0.1 --save "" \
    --appendonly no --maxclients 30000 --protected-mode no --dir "$TMP" \
    --tls-cert-file "$TMP/srv.crt" --tls-key-file "$TMP/srv.key" \
    --tls-ca-cert-file "$TMP/ca.pem" --tls-auth-clients no
DIRECT_PID=$BG_PID
wait_listen "$R"; wait_listen "$RT"

cat >"$TMP/mqlb.ini" <<EOF
[global]
workers = $THREADS
log_level = warn
[admin]
listen = 127.0.0.1:$MA
[pool redis]
listen = 127.0.0.1:$M tls
tls_cert = $TMP/srv.pem
health_check = tcp
backend = r1 127.0.0.1:$R
EOF
cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread $THREADS
    maxconn 8000
defaults
    mode tcp
    timeout connect 3s
    timeout client 1h
    timeout server 1h
frontend fe
    bind 127.0.0.1:$H ssl crt $TMP/srv.pem
    default_backend be
backend be
    server r1 127.0.0.1:$R
EOF
NGX_MOD=$(nginx_stream_load)
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EOF
$NGX_MOD
worker_processes $THREADS;
worker_rlimit_nofile 20000;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 16000; }
stream {
    server {
        listen 127.0.0.1:$N ssl;
        ssl_certificate $TMP/srv.crt;
        ssl_certificate_key $TMP/srv.key;
        proxy_pass 127.0.0.1:$R;
        proxy_timeout 1h;
    }
}
EOF
declare -A PORT=([direct]=$RT [mqlb]=$M [haproxy]=$H [nginx]=$N)
declare -A PID_OF=([direct]=$DIRECT_PID)
start_bg mqlb "$TMP/mqlb" -c "$TMP/mqlb.ini"; PID_OF[mqlb]=$BG_PID
start_bg haproxy haproxy -db -f "$TMP/haproxy.cfg"; PID_OF[haproxy]=$BG_PID
start_bg nginx nginx -p "$TMP/nginx" -e "$TMP/nginx/logs/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;'
PID_OF[nginx]=$BG_PID
for t in mqlb haproxy nginx; do wait_listen "${PORT[$t]}"; done
sleep 1

RESULTS=$TMP/results.tsv
: >"$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
TLSARGS=(--tls --cacert "$TMP/ca.pem" --sni bench.test)

# bench KEY TARGET NCPU ARGS...: redis-benchmark --tls, rps per test, CPU/req
bench() {
    local key=$1 t=$2 ncpu=$3; shift 3
    local pids c0 c1 out
    pids=$(proc_set "${PID_OF[$t]}")
    # shellcheck disable=SC2086
    c0=$(cpu_ticks $pids)
    out=$(timeout -k 5 300 redis-benchmark -h 127.0.0.1 -p "${PORT[$t]}" "${TLSARGS[@]}" "$@" -q --csv 2>/dev/null) || true
    # shellcheck disable=SC2086
    c1=$(cpu_ticks $pids)
    while IFS=, read -r test rps _rest; do
        test=${test//\"/}; rps=${rps//\"/}
        [ "$test" = test ] || [ -z "$rps" ] && continue
        record "${key}_$test" "$t" "$rps"
    done <<<"$out"
    [ "$t" = direct ] || record "${key}_cpu" "$t" \
        "$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$ncpu" 'BEGIN{printf "%.2f", d/hz*1e6/n}')"
}

cat >"$TMP/hold.py" <<'EOF'
import socket, ssl, sys, time
port, n, ca, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
socks = []
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname="bench.test")
    s.sendall(b"PING\r\n")
    s.recv(16)
    socks.append(s)
open(ready, "w").write("%d\n" % len(socks))
time.sleep(60)
EOF
idle() {   # idle TARGET: RSS KiB per idle TLS connection (after one PING)
    local t=$1 pids r0 r1 hp i
    pids=$(proc_set "${PID_OF[$t]}")
    # shellcheck disable=SC2086
    r0=$(rss_kib $pids)
    rm -f "$TMP/ready"
    timeout 120 python3 "$TMP/hold.py" "${PORT[$t]}" "$IDLE" "$TMP/ca.pem" "$TMP/ready" &
    hp=$!
    for ((i = 0; i < 1200; i++)); do [ -f "$TMP/ready" ] && break; sleep 0.1; done
    sleep 1
    # shellcheck disable=SC2086
    r1=$(rss_kib $pids)
    kill -TERM "$hp" 2>/dev/null || true
    wait "$hp" 2>/dev/null || true
    [ -f "$TMP/ready" ] && record t5 "$t" "$(awk -v a="$r0" -v b="$r1" -v n="$(cat "$TMP/ready")" 'BEGIN{printf "%.2f", (b-a)/n}')"
    sleep 2
}

START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((rep = 0; rep < REPEATS; rep++)); do
    order=$(rotate "$rep" direct mqlb haproxy nginx)
    log "repeat $((rep + 1))/$REPEATS: $order"
    if [ "$IDLE_ONLY" = 0 ]; then
        for t in $order; do bench t1 "$t" "$N1" -c 50 -k 0 -n "$N1" -t ping_mbulk; done
        # SET before GET: the key GET reads is the one t4/t6 filled with
        # 64 KiB in the repeat before, which made t2's GET a bulk GET
        for t in $order; do bench t2 "$t" $((3 * N2)) -c 50 -P 1 -n "$N2" -t ping_mbulk,set,get; done
        for t in $order; do bench t3 "$t" "$N3" -c 50 -P 16 -n "$N3" -t ping_mbulk; done
        for t in $order; do bench t4 "$t" $((2 * N4)) -c 4 -d 65536 -n "$N4" -t set,get; done
        for t in $order; do bench t6 "$t" $((2 * N4)) -c 4 -d 65536 -P 8 -n "$N4" -t set,get; done
    fi
    if [ "$rep" = 0 ]; then
        for t in $(rotate "$rep" mqlb haproxy nginx); do idle "$t"; done
    fi
done
mkdir -p "$(dirname "$OUT")"
{
    echo "## mqlb TLS benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm), nproc $(nproc), load at start $LOAD0, at end $(cut -d' ' -f1-3 /proc/loadavg), run time $(( $(date +%s) - START ))s"
    echo "- $("$TMP/mqlb" -V 2>&1 | head -1); $(haproxy -v 2>&1 | head -1 | sed 's/ - https.*//'); $(nginx -v 2>&1 | sed 's/^nginx version: //'); redis $(redis-server --version | awk '{print $3}' | sed 's/v=//'); $(openssl version)"
    echo "- threads $THREADS, repeats $REPEATS (medians), ECDSA P-256 certificate, OpenSSL's default TLS 1.3 suite for all; requests: t1 $N1, t2 $N2, t3 $N3, t4 $N4 x 64 KiB; idle connections $IDLE"
    echo
    python3 - "$RESULTS" <<'EOF'
import sys, statistics, collections
res = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, t, v = line.rstrip("\n").split("\t")
    res[(k, t)].append(float(v))
rows = [
    ("t1_PING_MBULK", "(t1) TLS handshakes/s, c50 -k 0 (higher better)", 1),
    ("t1_cpu", "(t1) proxy CPU µs/handshake (lower better)", 1),
    ("t2_PING_MBULK", "(t2) TLS c50 P1 PING_MBULK req/s (higher better)", 1),
    ("t2_SET", "(t2) TLS c50 P1 SET req/s (higher better)", 1),
    ("t2_GET", "(t2) TLS c50 P1 GET req/s (higher better)", 1),
    ("t2_cpu", "(t2) proxy CPU µs/request (lower better)", 1),
    ("t3_PING_MBULK", "(t3) TLS c50 P16 PING_MBULK req/s (higher better)", 1),
    ("t3_cpu", "(t3) proxy CPU µs/request (lower better)", 1),
    ("t4_SET", "(t4) TLS bulk SET 64 KiB, MB/s (higher better)", 65536 / 1e6),
    ("t4_GET", "(t4) TLS bulk GET 64 KiB, MB/s (higher better)", 65536 / 1e6),
    ("t4_cpu", "(t4) proxy CPU µs/64 KiB request (lower better)", 1),
    ("t6_SET", "(t6) TLS bulk SET 64 KiB pipelined -P 8, MB/s (higher better)", 65536 / 1e6),
    ("t6_GET", "(t6) TLS bulk GET 64 KiB pipelined -P 8, MB/s (higher better)", 65536 / 1e6),
    ("t6_cpu", "(t6) proxy CPU µs/64 KiB request (lower better)", 1),
    ("t5", "(t5) RSS KiB per idle TLS connection (lower better)", 1),
]
T = ("direct", "mqlb", "haproxy", "nginx")
def med(k, t, scale):
    v = res.get((k, t))
    return statistics.median(v) * scale if v else None
def fmt(v):
    return "-" if v is None else ("{:,.0f}".format(v) if v >= 100 else "%.2f" % v)
print("| workload | direct TLS redis | mqlb | haproxy | nginx | mqlb/haproxy | mqlb/nginx |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k, label, scale in rows:
    v = {t: med(k, t, scale) for t in T}
    if all(x is None for x in v.values()):
        continue
    r = lambda a, b: "-" if a is None or not b else "%.2f" % (a / b)
    print("| %s | %s | %s | %s | %s | %s | %s |" % (label, fmt(v["direct"]), fmt(v["mqlb"]),
          fmt(v["haproxy"]), fmt(v["nginx"]), r(v["mqlb"], v["haproxy"]), r(v["mqlb"], v["nginx"])))
EOF
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
