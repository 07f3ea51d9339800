#!/bin/sh
# SPDX-License-Identifier: MIT
# Proves the kick fuzzer can fail: each planted-bug build of vcpu/kick.c must crash within a bounded run (TAP).
# usage: mutants.sh KICK_REPLAY SEEDS RUNS FUZZ_KICK_M1 [FUZZ_KICK_M2 ...]
# Each binary is vcpu/kick.c built with -DKICK_MUTANT=N (N from its name, fuzz_kick_mN), run twice
# with a fixed -seed and at most RUNS executions: over the seed corpus, then from an empty corpus
# (the fuzzer alone, no seed written for the case); seeds named bug-* are left out. New inputs go to a scratch directory, never
# into the source tree. A run counts as a catch only if it stops on the harness's abort() ("kick
# invariant violated"): a sanitizer report or a timeout would be a harness bug.
set -u
replay=$1 seeds=$2 runs=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

what() {
	case $1 in
	1) echo "ignores if_flag" ;;
	2) echo "ignores exception.injected" ;;
	3) echo "trusts only ready_for_interrupt_injection" ;;
	4) echo "injects twice" ;;
	5) echo "clears the window request too early" ;;
	6) echo "forgets the deadline" ;;
	7) echo "takes the state back with TF set" ;;
	8) echo "takes the state back while an exception is re-injected" ;;
	9) echo "takes the state back in ring 0" ;;
	*) echo "unknown mutant" ;;
	esac
}

# catch BIN N LABEL CORPUS...: one TAP line.
i=0 failed=0
catch() {
	bin=$1 n=$2 label=$3
	shift 3
	i=$((i + 1))
	mkdir "$tmp/new$i" "$tmp/art$i"
	start=$(date +%s%N)
	"$bin" -runs="$runs" -seed=1 -max_len=1024 -timeout=20 -print_final_stats=1 \
		-artifact_prefix="$tmp/art$i/" "$tmp/new$i" "$@" >"$tmp/log$i" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$tmp/log$i" | tail -n 1)
	why=$(grep -m 1 'kick invariant violated' "$tmp/log$i")
	if [ "$rc" -ne 0 ] && [ -n "$why" ]; then
		echo "ok $i - mutant $n ($(what "$n")) caught $label after ${execs:-?} executions, ${ms} ms"
		echo "#   ${why#kick invariant violated: }"
		for a in "$tmp/art$i/"crash-*; do
			[ -f "$a" ] && echo "#   steps: $("$replay" --decode "$a" | cut -c 1-160)"
		done
	else
		failed=1
		echo "not ok $i - mutant $n ($(what "$n")) not caught $label in $runs runs (exit $rc)"
		tail -n 15 "$tmp/log$i" | sed 's/^/#   /'
	fi
}

# Seeds named bug-* reproduce a bug of the real kick.c: they would make every mutant look caught.
mkdir "$tmp/empty" "$tmp/seeds"
for s in "$seeds"/*; do
	case ${s##*/} in bug-*) ;; *) cp "$s" "$tmp/seeds/" ;; esac
done
for bin in "$@"; do
	n=${bin##*_m}
	catch "$bin" "$n" "from the seeds" "$tmp/seeds"
	catch "$bin" "$n" "from an empty corpus" "$tmp/empty"
done
echo "1..$i"
exit $failed
