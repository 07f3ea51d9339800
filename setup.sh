#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# First command on a fresh machine: installs what ringfence needs, builds it, runs busybox in a sandbox.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# QEMU, a kernel and a static busybox: the QEMU VM of test/vm/with-kvm. Every machine needs it, with
# or without a usable /dev/kvm: the kvm suite runs on hardware-style KVM (NPT) and on KVM's shadow
# MMU (npt=0), and the VM is where we get whichever this machine's /dev/kvm is not.
packages=(meson ninja-build gcc clang libclang-rt-14-dev llvm linux-libc-dev libseccomp-dev
          libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3 python3-protobuf binutils pkgconf
          qemu-system-x86 linux-image-amd64 busybox-static musl-tools)

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
# The main job: an unmodified static busybox, sandboxed, with this checkout as its whole file system.
test/vm/with-kvm sh -c 'build/cmd/ringfence run --root . /bin/busybox ls / &&
	build/cmd/ringfence run --root . /bin/busybox sha256sum /README.md'

