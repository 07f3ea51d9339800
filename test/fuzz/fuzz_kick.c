/* SPDX-License-Identifier: MIT */
/* libFuzzer entry point: runs vcpu/kick.c against the KVM model and aborts on a broken invariant. */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char why[512];
	if (kick_fuzz_run(data, n, why, sizeof why)) {
		/* abort(), not a return code: libFuzzer keeps the input as a crash artifact. Replay it with
		 * kick_replay FILE (KICK_FUZZ_TRACE=1 prints every step). */
		fprintf(stderr, "kick invariant violated: %s\n", why);
		abort();
	}
	return 0;
}
