#!/bin/sh
# Run libFuzzer targets: tests/fuzz/run.sh SECONDS TARGET...
#
# For each target: replay every input in tests/fuzz/regressions/TARGET
# (crashes found before, kept so they stay fixed), then fuzz for SECONDS
# from the seeds in tests/fuzz/corpus/TARGET; with SECONDS 0, replay the
# seeds once instead of fuzzing (make fuzz-smoke: deterministic). New inputs go to
# build-fuzz/corpus/TARGET, never into the tree; a crash input is written
# to build-fuzz/ and fails the run. Ends with one line per target:
# executions, seconds, and corpus size.
set -e
cd "$(dirname "$0")/../.."
secs=$1
shift
B=build-fuzz
summary=""
status=0
for t in "$@"; do
    reg=tests/fuzz/regressions/$t
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        echo "fuzz: $t: replaying $(ls "$reg" | wc -l) regression input(s)"
        if ! "$B/$t" "$reg"/* >"$B/$t.replay.log" 2>&1; then
            cat "$B/$t.replay.log"
            echo "fuzz: $t: a regression input fails again"
            status=1
            continue
        fi
    fi
    if [ "$secs" = 0 ]; then
        # Replay only: every seed once, no new inputs, the same each run.
        n=$(ls "tests/fuzz/corpus/$t" 2>/dev/null | wc -l)
        if [ "$n" -gt 0 ] && ! "$B/$t" -runs=0 -timeout=10 \
            "tests/fuzz/corpus/$t" >"$B/$t.log" 2>&1; then
            tail -n 60 "$B/$t.log"
            echo "fuzz: $t: a seed input fails"
            status=1
        fi
        summary="$summary
fuzz: $t: replayed $n seed input(s)"
        continue
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
