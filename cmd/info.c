/* SPDX-License-Identifier: MIT */
/* ringfence info: what the start-up probes found on this host, one `key: value` line each. */
#include <stdio.h>

#include "cmd.h"
#include "ringfence.h"

const char *cmd_mmu_name(int mmu)
{
	return mmu == RF_MMU_SHADOW ? "shadow" : mmu == RF_MMU_DIRECT ? "direct" : "unknown";
}

const char *cmd_syscall_name(int mode)
{
	return mode == RF_SYSCALL_VIA_FAULT ? "via-fault" : mode == RF_SYSCALL_NATIVE ? "native" : "unknown";
}

/* A name for the kind of host, from the probes alone: kvm-pvm is the one where SYSCALL stays in
 * ring 3; a shadow MMU with a native SYSCALL is KVM loaded with npt=0 or ept=0. */
const char *cmd_host_name(const struct rf_platform_info *info)
{
	if (info->syscall_mode == RF_SYSCALL_VIA_FAULT)
		return "kvm-pvm";
	return info->mmu == RF_MMU_SHADOW ? "kvm-shadow-mmu" : "kvm-ept-npt";
}

int cmd_info(int argc, char **argv)
{
	(void)argv;
	if (argc)
		return cmd_fail(2, "usage: ringfence info");
	rf_platform *p;
	if (rf_platform_create(NULL, &p) < 0)
		return cmd_fail(RUN_EXIT_PLATFORM, "%s", rf_last_error());
	struct rf_platform_info info;
	rf_platform_info(p, &info);
	printf("host: %s\nmmu: %s\nsyscall: %s\nmax_vcpus: %u\nxcr0: 0x%llx\nfpu_size: %zu\n", cmd_host_name(&info),
	       cmd_mmu_name(info.mmu), cmd_syscall_name(info.syscall_mode), info.max_vcpus,
	       (unsigned long long)info.xcr0, info.fpu_size);
	rf_platform_destroy(p);
	return 0;
}
