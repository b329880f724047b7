# shellcheck shell=bash disable=SC2034  # sets variables for the script that sources it
# Shared helpers of the bench scripts (sourced, not run).
#
# The caller sets TMP (its temp dir), PIDS=() (every PID it started, killed
# by its cleanup trap), LIFETIME (seconds, hard bound on every server) and
# BENCH_NAME (prefix of error messages).

# bench_install PKGS...: install the Debian packages of PKGS that are
# missing (the caller's log() says which).
bench_install() {
    local p missing="" sudo=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing="$missing $p"
    done
    [ -n "$missing" ] || return 0
    log "installing:$missing"
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
}

# bench_tmp PREFIX: make the temp dir TMP (/tmp/PREFIX.XXXXXX), start the
# PID list PIDS and install the traps that stop every PID in it on exit
# (TERM, a few seconds' grace, KILL) and remove TMP, kept when the run
# failed or BENCH_KEEP=1.
bench_tmp() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
bench_cleanup() {
    local rc=$?
    set +e
    stop_pids "${PIDS[@]}"
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then log "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}

# port: a free loopback port, chosen by the kernel.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# free_ports N: N loopback ports free now, below the kernel's ephemeral
# range, where no connect or bind to port 0 of another process takes them
# before a server of ours binds them.
free_ports() {
    python3 - "$1" <<'PYEOF'
import random, socket, sys
n = int(sys.argv[1])
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
got = []
for port in random.sample(range(max(1024, low - 20000), low), min(low - 1024, 20000)):
    if len(got) == n:
        break
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
    except OSError:
        continue
    got.append(port)
if len(got) < n:
    sys.exit("free_ports: only %d free" % len(got))
for port in got:
    print(port)
PYEOF
}

# rotate N WORDS...: WORDS rotated left by N, so no target always goes first.
rotate() {
    local n=$1; shift
    local arr=("$@") i len=$#
    for ((i = 0; i < len; i++)); do printf '%s ' "${arr[$(((i + n) % len))]}"; done
}

# start_bg NAME CMD...: start CMD under a `timeout` guard, log to $TMP/NAME.log;
# sets BG_PID to the server's own PID (the guard's child).
start_bg() {
    local name=$1; shift
    timeout -k 5 "$LIFETIME" "$@" >>"$TMP/$name.log" 2>&1 &
    local w=$!
    PIDS+=("$w")
    local c=""
    for _ in $(seq 1 100); do
        c=$(ps -o pid= --ppid "$w" 2>/dev/null | head -1 | tr -d ' ') || true
        [ -n "$c" ] && break
        kill -0 "$w" 2>/dev/null || break
        sleep 0.02
    done
    if [ -z "$c" ]; then
        echo "$BENCH_NAME: $name did not start; log:" >&2
        tail -20 "$TMP/$name.log" >&2 || true
        return 1
    fi
    PIDS+=("$c")
    BG_PID=$c
}
stop_pids() {  # stop_pids PIDS...: TERM all, wait up to 5 s (a second TERM
               # at 2 s, for a process that was busy), then KILL the rest
    local p i alive
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        if [ $i = 20 ]; then for p in "$@"; do kill -TERM "$p" 2>/dev/null; done; fi
        sleep 0.1
    done
    for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
    return 0
}
pings_ok() {   # pings_ok PORT: three PINGs through PORT, each answered PONG
    local port=$1 ok=0
    for _ in 1 2 3; do
        [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && ok=$((ok + 1))
    done
    [ $ok = 3 ]
}
wait_listen() {   # wait_listen PORT [SECONDS]
    local port=$1 t=${2:-10} i
    for ((i = 0; i < t * 20; i++)); do
        [ -n "$(ss -ltnH "sport = :$port" 2>/dev/null)" ] && return 0
        sleep 0.05
    done
    echo "$BENCH_NAME: nothing listens on port $port after ${t}s" >&2
    return 1
}
# All PIDs of a proxy: the main process and its children (nginx workers).
proc_set() {
    local p=$1
    kill -0 "$p" 2>/dev/null || return 0
    echo "$p"
    ps -o pid= --ppid "$p" 2>/dev/null | tr -d ' ' || true
}
cpu_ticks() {   # cpu_ticks PIDS...: sum of utime+stime in clock ticks
    local p s rest sum=0
    for p in "$@"; do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${s##*) }
        # shellcheck disable=SC2086
        set -- $rest
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}
cpu_ns() {      # cpu_ns PIDS...: CPU time of every thread of PIDS in ns (schedstat)
    local p f t sum=0
    for p in "$@"; do
        for f in /proc/"$p"/task/*/schedstat; do
            { read -r t _ <"$f"; } 2>/dev/null || continue
            sum=$((sum + t))
        done
    done
    echo "$sum"
}
rss_kib() {     # rss_kib PIDS...: sum of VmRSS in KiB
    local p v sum=0
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
fd_count() {    # fd_count PIDS...: open descriptors, summed
    local p sum=0 n
    for p in "$@"; do
        n=$(ls "/proc/$p/fd" 2>/dev/null | wc -l) || n=0
        sum=$((sum + n))
    done
    echo "$sum"
}
CLK_TCK=$(getconf CLK_TCK)

# nofile_setup: raise the soft descriptor limit as far as the hard limit
# allows and size what fits under it. Sets NOFILE, HAP_MAXPIPES,
# HAP_MAXCONN (HAProxy refuses to start if maxconn does not fit: two
# descriptors per connection and two per splice pipe) and SESSION_CAP, the
# most proxied sessions (two descriptors each in the proxy, one in the
# client process) every proxy here can hold, in thousands.
nofile_setup() {
    local hard want=200000
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=1048576
    [ "$hard" -lt "$want" ] && want=$hard
    ulimit -n "$want"
    NOFILE=$(ulimit -n)
    HAP_MAXPIPES=1000
    HAP_MAXCONN=$(( (NOFILE - 2 * HAP_MAXPIPES - 600) / 2 ))
    SESSION_CAP=$(( (HAP_MAXCONN - 100) / 1000 * 1000 ))
}

# nginx_stream_load: the load_module line NGINX needs for its stream module,
# or nothing when the binary has it built in.
nginx_stream_load() {
    local m
    if nginx -V 2>&1 | grep -q -- '--with-stream[^=_]\|--with-stream$'; then
        return 0
    fi
    for m in /usr/lib/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/ngx_stream_module.so; do
        [ -f "$m" ] && { echo "load_module $m;"; return 0; }
    done
    return 0
}
