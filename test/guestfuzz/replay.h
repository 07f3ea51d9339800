/* SPDX-License-Identifier: MIT */
/* Replaying a shrunk reproducer from its printed form: GUESTFUZZ_CODE="48 bc ..." and
 * GUESTFUZZ_REGS="rsp=0x800000000000 fs_base=0x..." (unnamed registers take their defaults). */
#ifndef GUESTFUZZ_REPLAY_H
#define GUESTFUZZ_REPLAY_H

#include <stdbool.h>

#include "program.h"

/* True if GUESTFUZZ_CODE is set; then p and a hold that one program (one snippet, seed 0). */
bool replay_from_env(struct program *p, struct assembled *a);

#endif
