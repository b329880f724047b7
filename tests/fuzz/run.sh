#!/bin/sh
# Run the fuzz targets: tests/fuzz/run.sh SECONDS TARGET...
#
# SECONDS 0 (make fuzz-replay, part of make test): give every input in
# tests/fuzz/regressions/TARGET (crashes found before, kept so they stay
# fixed) and tests/fuzz/corpus/TARGET (the seeds) to the target once: no
# new inputs, the same verdict every run. The targets are those in
# $FUZZ_BIN_DIR (default build-fuzz, libFuzzer's; make fuzz-replay gives
# the build's own, tests/fuzz/replay.c as their main()).
#
# SECONDS > 0 (make fuzz, libFuzzer targets): replay the regression
# inputs, then fuzz for SECONDS from the seeds. New inputs go to
# build-fuzz/corpus/TARGET, never into the tree; a crash input is written
# to build-fuzz/ and fails the run. Ends with one line per target:
# executions, seconds, and corpus size.
set -e
cd "$(dirname "$0")/../.."
secs=$1
shift
B=${FUZZ_BIN_DIR:-build-fuzz}
summary=""
status=0
for t in "$@"; do
    reg=tests/fuzz/regressions/$t
    if [ "$secs" = 0 ]; then
        inputs=$(find "$reg" "tests/fuzz/corpus/$t" -type f 2>/dev/null | sort)
        n=$(printf '%s' "$inputs" | grep -c . || true)
        # shellcheck disable=SC2086  # file names are the corpus's hashes
        if [ "$n" -gt 0 ] && ! "$B/$t" $inputs >"$B/$t.log" 2>&1; then
            tail -n 60 "$B/$t.log"
            echo "fuzz: $t: an input fails (its output above)"
            status=1
        fi
        summary="$summary
fuzz: $t: replayed $n input(s)"
        continue
    fi
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        echo "fuzz: $t: replaying $(ls "$reg" | wc -l) regression input(s)"
        if ! "$B/$t" "$reg"/* >"$B/$t.replay.log" 2>&1; then
            cat "$B/$t.replay.log"
            echo "fuzz: $t: a regression input fails again"
            status=1
            continue
        fi
    fi
    mkdir -p "$B/corpus/$t"
    echo "fuzz: $t: ${secs}s"
    if "$B/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$B/$t-" \
        "$B/corpus/$t" "tests/fuzz/corpus/$t" >"$B/$t.log" 2>&1; then
        :
    else
        tail -n 60 "$B/$t.log"
        echo "fuzz: $t: FAILED (crash input above, in $B/$t-*)"
        status=1
    fi
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$B/$t.log")
    summary="$summary
fuzz: $t: ${runs:-no final stats}, corpus $(ls "$B/corpus/$t" | wc -l) files"
done
echo "$summary"
exit $status
