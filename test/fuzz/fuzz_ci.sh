#!/bin/sh
# SPDX-License-Identifier: MIT
# The CI-sized fuzz run of the real kick state machine: a fixed number of executions from the seeds (TAP).
# usage: fuzz_ci.sh FUZZ_KICK SEEDS RUNS
# Bounded by executions with a fixed -seed, so it takes the same path on every machine; new inputs
# go to a scratch directory. On a crash the input is printed: save it under seeds/ and replay it
# with KICK_FUZZ_TRACE=1 kick_replay FILE.
set -u
bin=$1 seeds=$2 runs=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/corpus"
start=$(date +%s%N)
"$bin" -runs="$runs" -seed=1 -max_len=1024 -timeout=20 -print_final_stats=1 \
	-artifact_prefix="$tmp/" "$tmp/corpus" "$seeds" >"$tmp/log" 2>&1
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$tmp/log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$tmp/log" | tail -n 1)
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - real kick.c: ${execs:-?} executions, no invariant broken (${ms} ms, $cov)"
else
	echo "not ok 1 - real kick.c broke an invariant or the harness crashed (exit $rc)"
	grep -m 1 'kick invariant violated' "$tmp/log" | sed 's/^/#   /'
	for a in "$tmp"/crash-* "$tmp"/timeout-* "$tmp"/oom-*; do
		[ -f "$a" ] && echo "#   input ($(basename "$a")): $(od -An -c "$a" | tr -s ' \n' ' ' | cut -c 1-400)"
	done
	tail -n 20 "$tmp/log" | sed 's/^/#   /'
fi
echo "1..1"
[ "$rc" -eq 0 ]
