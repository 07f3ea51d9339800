/* SPDX-License-Identifier: MIT */
/* libFuzzer entry point: each input is a run of requests through the control plane's dispatcher
 * (harness.h). Exits 77 with the reason on stderr when KVM cannot be used here. */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	char why[512];
	int r = pf_setup(why, sizeof why);
	if (r) {
		fprintf(stderr, "protofuzz: %s: %s\n", r > 0 ? "no KVM" : "rf_platform_create failed", why);
		exit(r > 0 ? 77 : 1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	pf_run(data, n, false, NULL);
	return 0;
}
