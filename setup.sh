#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# First command on a fresh machine: installs what ringfence needs, builds it, runs hello in a sandbox.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(meson ninja-build gcc clang libclang-rt-14-dev llvm linux-libc-dev libseccomp-dev
          libprotobuf-c-dev protobuf-c-compiler python3 binutils)
# Without a usable /dev/kvm (a cloud VM whose hypervisor does not nest), the KVM tests and the
# main job run in a QEMU VM that has one: test/vm/with-kvm.
if ! { [ -c /dev/kvm ] && exec 3<>/dev/kvm; } 2>/dev/null; then
	packages+=(qemu-system-x86 linux-image-amd64 busybox-static)
fi
exec 3>&- 2>/dev/null || true

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -d build ] || meson setup build
ninja -C build
test/vm/with-kvm build/cmd/ringfence run build/test/progs/hello
