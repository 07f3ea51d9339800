/* SPDX-License-Identifier: MIT */
/* The fuzzer's fixture: kvmtest.h's platform, memory and mappings (and its skip when KVM is
 * missing), with the code area filled with hlt so a program that runs off its end stops. */
#include <string.h>

#include "../kvm/kvmtest.h"
#include "driver.h"

_Static_assert(GF_CODE_VA == KT_CODE_VA && GF_DATA_VA == KT_DATA_VA && GF_STACK_TOP == KT_STACK_TOP,
               "program.h follows the kvmtest.h layout");

void fixture_open(struct gf_env *e, struct watchdog *wd)
{
	struct kt t;
	kt_init(&t, NULL);
	struct rf_platform_info info;
	rf_platform_info(t.p, &info);
	*e = (struct gf_env){ .p = t.p, .mem = t.mem, .as = t.as, .c = t.c, .host = t.host,
	                      .xcr0 = info.xcr0, .fpu_size = info.fpu_size, .wd = wd };
	memset(e->host, GF_FILL, GF_CODE_SIZE);
	checker_install(e->host);
}

int fixture_close(struct gf_env *e)
{
	return rf_context_destroy(e->c) | rf_as_destroy(e->as) | rf_memory_destroy(e->mem) |
	       rf_platform_destroy(e->p);
}
