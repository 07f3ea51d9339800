/* SPDX-License-Identifier: MIT */
/* Host-side floors for ringfence bench: a native syscall and a ptrace PTRACE_SYSEMU round trip. */
#include "cmd.h"
