#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Second command: every test suite, in a normal and an ASan+UBSan build. The kvm suite runs on both
# kinds of KVM MMU, hardware-style (EPT/NPT) and KVM's shadow MMU: on this machine's /dev/kvm for the
# kind it is, and in a QEMU VM with nested KVM (test/vm/with-kvm) for the other, or for both where
# there is no /dev/kvm. Ends with "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")"

builds=(build build-asan)
[ -d build ] || meson setup build
[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
# libFuzzer needs clang: a third tree, ASan+UBSan, for the fuzz suite (bounded by executions).
[ -d build-fuzz ] || CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false
for b in "${builds[@]}" build-fuzz; do ninja -C "$b"; done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
logs=()

# Host-only suites first: they need no KVM.
for b in "${builds[@]}"; do
	# shellcheck disable=SC2043  # one host-only suite today
	for s in unit; do
		meson test -C "$b" --suite "$s" --logbase "testlog-$s" --print-errorlogs --no-rebuild || true
		logs+=("$b/meson-logs/testlog-$s.json")
	done
done

# Through with-kvm, with its options; run again, up to three times, if the VM itself failed (125).
# QEMU's TCG wedges its own kernel now and then (soft lockups in the idle task; 2 of about 15 runs
# in 2026-11, 3 of 6 on 2026-12-01); with-kvm then exits 125 at the timeout. A hang of ours is not retried: inside a working VM it is a
# test's watchdog or meson's timeout, reported like any failure.
#   suite_with_kvm BUILD SUITE LOGBASE [WITH_KVM_OPTION...] [-- MESON_TEST_OPTION...]
suite_with_kvm() {
	local b=$1 s=$2 log=$3 attempt status t0=$SECONDS opts=() mopts=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	[ $# -gt 0 ] && shift && mopts=("$@")
	for attempt in 1 2 3; do
		rm -f "$b/meson-logs/$log.json"
		status=0
		test/vm/with-kvm "${opts[@]}" meson test -C "$b" --suite "$s" --logbase "$log" --print-errorlogs \
			--no-rebuild "${mopts[@]}" || status=$?
		[ "$status" = 125 ] || break
		echo "run-tests: the VM running $b's $s suite ($log) failed (attempt $attempt)"
	done
	echo "run-tests: $b's $s suite ($log) took $((SECONDS - t0)) s"
	logs+=("$b/meson-logs/$log.json")
}
# Longer than meson's 300 s per kvm test (a whole kvm suite takes 1-3 min in the VM): a test that
# hangs inside a working VM is killed by meson and reported, not mistaken for a VM failure and
# retried; a wedged VM costs 7 minutes, not 15.
export RINGFENCE_VM_TIMEOUT=${RINGFENCE_VM_TIMEOUT:-420}
# One VM CPU: with two (multi-threaded TCG) the VM's kernel wedged in 3 ASan runs in a row, always
# while the run test creates many short-lived KVM VMs; with one it did not, and the kvm suite takes
# no longer (1 min 45 s with the stress tests, 2026-12-01).
export RINGFENCE_VM_CPUS=${RINGFENCE_VM_CPUS:-1}

# Which KVMs the kvm suite runs on. The platform must be right on hardware-style KVM (EPT/NPT) and on
# KVM's shadow MMU (kvm-pvm's), which sees no host edit to a page table it has shadowed. The VM
# gives both (with-kvm --force-vm: NPT; --shadow-mmu: npt=0), so whichever this machine's /dev/kvm
# is, the VM supplies the other. `ringfence info` says which (its probe guest decides, not a log).
dev_kvm='' mmu='' dev_name=host-kvm
if [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; then
	dev_kvm=1
	info=$(timeout 60 build/cmd/ringfence info 2>/dev/null) || info=''
	mmu=$(printf '%s\n' "$info" | sed -n '/^mmu:/{s/^mmu:[[:space:]]*//;s/[[:space:]]*$//;p;q}')
	host=$(printf '%s\n' "$info" | sed -n '/^host:/{s/^host:[[:space:]]*//;s/[[:space:]]*$//;p;q}')
	dev_name=${host:-$dev_name}
fi

# The fuzz suite: the kick fuzzers need no KVM and run here (in the TCG VM they would be about 45
# times slower); the KVM fuzzers (guest code, the control plane: suite fuzz-kvm too) run on KVM, in
# the VM where this machine has none, each capped by its own clock.
meson test -C build-fuzz --suite fuzz --no-suite fuzz-kvm --logbase testlog-fuzz --print-errorlogs --no-rebuild || true
logs+=("build-fuzz/meson-logs/testlog-fuzz.json")
suite_with_kvm build-fuzz fuzz-kvm testlog-fuzz-kvm

# Each host: a log name, and a label for the summary. /dev/kvm's name and MMU come from the probes
# (ringfence info), never from the kernel log.
declare -A label=(
	[vmnpt]="vm-npt (hardware-style KVM under QEMU TCG)"
	[vmshadow]="vm-shadow (KVM's shadow MMU under QEMU TCG, npt=0)"
)
case ${dev_kvm:+$mmu} in
shadow)
	label[dev]="$dev_name (this machine's /dev/kvm, shadow MMU)"
	hosts=(dev vmnpt) ;;
direct)
	label[dev]="$dev_name (this machine's /dev/kvm, EPT/NPT)"
	hosts=(dev vmshadow) ;;
*)
	if [ -n "$dev_kvm" ]; then
		# An older ringfence, or one that cannot use KVM: /dev/kvm's MMU is unknown, so both VMs run.
		echo "run-tests: build/cmd/ringfence info did not say which MMU /dev/kvm has; running both VMs too"
		label[dev]="$dev_name (this machine's /dev/kvm, MMU unknown)"
		hosts=(dev vmnpt vmshadow)
	else
		hosts=(vmnpt vmshadow)
	fi ;;
esac

# One VM boot per build and VM host; /dev/kvm first, it is the fastest. The kick stress (10^4
# kicks per policy) and the whole-program comparisons (suite programs: libc, busybox; ~3 min in the
# VM) run in both builds on /dev/kvm and in the normal build in the VM: under TCG the ASan build
# doubles their time, and the VM's rare triple fault (README) is not made likelier twice.
for h in "${hosts[@]}"; do
	for b in "${builds[@]}"; do
		skip=()
		[ "$h" != dev ] && [ "$b" = build-asan ] && skip=(-- --no-suite stress --no-suite programs)
		case $h in
		dev)
			t0=$SECONDS
			rm -f "$b/meson-logs/testlog-kvm-$h.json"
			meson test -C "$b" --suite kvm --logbase "testlog-kvm-$h" --print-errorlogs --no-rebuild || true
			echo "run-tests: $b's kvm suite (testlog-kvm-$h) took $((SECONDS - t0)) s"
			logs+=("$b/meson-logs/testlog-kvm-$h.json") ;;
		vmnpt) suite_with_kvm "$b" kvm "testlog-kvm-$h" --force-vm "${skip[@]}" ;;
		vmshadow) suite_with_kvm "$b" kvm "testlog-kvm-$h" --shadow-mmu "${skip[@]}" ;;
		esac
	done
done

# Name the hosts in the summary; one whose suite left no results in a build says so.
ran=''
for h in "${hosts[@]}"; do
	missing=''
	for b in "${builds[@]}"; do
		[ -e "$b/meson-logs/testlog-kvm-$h.json" ] || missing+=" $b"
	done
	ran+=", ${label[$h]}${missing:+ [no results from$missing]}"
done
hosts_line="run-tests: kvm suite ran on: ${ran#, }"

# One summary over every log; a missing log (a suite that never ran) is a failure.
python3 - "$hosts_line" "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[2:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        print(f"run-tests: no results in {path}")
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"run-tests: FAILED {t.get('name')} ({r}) in {path}")
print(sys.argv[1])
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
