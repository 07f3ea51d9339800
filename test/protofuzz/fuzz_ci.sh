#!/bin/sh
# SPDX-License-Identifier: MIT
# The CI-sized run of the control-plane fuzzer (TAP): the built-in seeds, then a fixed number of
# executions with a fixed -seed, capped by -max_total_time so a slow host still ends in time.
# usage: fuzz_ci.sh FUZZ_PROTO PROTO_REPLAY RUNS SECONDS
# Skips (exit 0) when KVM cannot be used, fails then under RINGFENCE_REQUIRE_KVM=1. On a crash the
# input is printed: save it to a file and replay it with proto_replay -v FILE.
set -u
bin=$1 replay=$2 runs=$3 secs=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/corpus"
"$replay" --write-seeds "$tmp/seeds" || { echo "Bail out! could not write the seeds"; exit 1; }
start=$(date +%s%N)
"$bin" -runs="$runs" -max_total_time="$secs" -seed=1 -max_len=4096 -timeout=20 -rss_limit_mb=3072 \
	-print_final_stats=1 -artifact_prefix="$tmp/" "$tmp/corpus" "$tmp/seeds" >"$tmp/log" 2>&1
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$rc" -eq 77 ]; then
	why=$(grep -m 1 '^protofuzz: no KVM' "$tmp/log" | sed 's/^protofuzz: //')
	if [ "${RINGFENCE_REQUIRE_KVM:-}" = 1 ]; then
		echo "Bail out! KVM is required here (RINGFENCE_REQUIRE_KVM=1) but: $why"
		exit 1
	fi
	echo "1..0 # SKIP $why"
	exit 0
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$tmp/log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$tmp/log" | tail -n 1)
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - control-plane dispatcher: ${execs:-?} inputs, no crash and every response well formed (${ms} ms, $cov)"
else
	echo "not ok 1 - the dispatcher crashed or answered wrongly (exit $rc)"
	grep -m 3 -E '^protofuzz:|ERROR: AddressSanitizer|runtime error' "$tmp/log" | sed 's/^/#   /'
	for a in "$tmp"/crash-* "$tmp"/timeout-* "$tmp"/oom-* "$tmp"/leak-*; do
		[ -f "$a" ] && echo "#   input ($(basename "$a")), hex: $(od -An -tx1 -v "$a" | tr -s ' \n' ' ' | cut -c 1-600)"
	done
	tail -n 30 "$tmp/log" | sed 's/^/#   /'
fi
echo "1..1"
[ "$rc" -eq 0 ]
