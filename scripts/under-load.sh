#!/usr/bin/env bash
# Runs each given test command N times in a row while `rrl bench learner`
# keeps every core busy, and says how many runs of each passed (the race
# check of flaky-prone tests). Logs of failed runs are kept and named.
# Usage: scripts/under-load.sh N 'cargo test -p launch --test actor_learner' ...
set -u
cd "$(dirname "$0")/.."
source .venv/rrl.env
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
runs=$1
shift
cargo build -q -p launch --bin rrl || exit 1
rrl="${CARGO_TARGET_DIR:-target}/debug/rrl"
logs=$(mktemp -d)
# The load in a process group of its own, so it all goes at the end.
set -m
( while true; do "$rrl" bench learner --updates 2000 --rounds 3 --threads 2 > /dev/null 2>&1; done ) &
load=$!
set +m
trap 'kill -- -$load 2>/dev/null' EXIT
sleep 5 # the load is up
status=0
for command in "$@"; do
    passed=0
    for run in $(seq "$runs"); do
        log="$logs/$(echo "$command" | tr -c 'a-zA-Z0-9' '_')-$run.log"
        if bash -c "$command" > "$log" 2>&1; then
            passed=$((passed + 1))
        else
            status=1
            echo "FAILED run $run: $command (log: $log)"
            tail -20 "$log"
        fi
    done
    echo "$passed/$runs passed under load: $command"
done
exit $status
