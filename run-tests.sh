#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Second command: every test suite, in a normal and an ASan+UBSan build; KVM suites run in a QEMU VM
# with nested KVM when this machine has no /dev/kvm. Ends with "N passed, N failed".
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
	for s in unit; do
		meson test -C "$b" --suite "$s" --logbase "testlog-$s" --print-errorlogs --no-rebuild || true
		logs+=("$b/meson-logs/testlog-$s.json")
	done
done

meson test -C build-fuzz --suite fuzz --logbase testlog-fuzz --print-errorlogs --no-rebuild || true
logs+=("build-fuzz/meson-logs/testlog-fuzz.json")

# KVM suites, one VM boot per build. QEMU's TCG (the nested KVM we get on machines without
# /dev/kvm) wedged its own kernel in 2 of about 15 runs; with-kvm then exits 125 at the timeout and
# the build's suite runs once more. A hang of ours is not retried: inside a working VM it is a
# test's watchdog or meson's timeout, reported like any failure.
export RINGFENCE_VM_TIMEOUT=${RINGFENCE_VM_TIMEOUT:-600}
for b in "${builds[@]}"; do
	for attempt in 1 2; do
		rm -f "$b/meson-logs/testlog-kvm.json"
		status=0
		test/vm/with-kvm meson test -C "$b" --suite kvm --logbase testlog-kvm --print-errorlogs --no-rebuild ||
			status=$?
		[ "$status" = 125 ] || break
		echo "run-tests: the VM running $b's kvm suite failed (attempt $attempt)"
	done
	logs+=("$b/meson-logs/testlog-kvm.json")
done

# One summary over every log; a missing log (a suite that never ran) is a failure.
python3 - "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
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
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
