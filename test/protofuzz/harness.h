/* SPDX-License-Identifier: MIT */
/* protofuzz: arbitrary bytes through the control plane's decoder and dispatcher (proto/dispatch.c).
 *
 * An input is a sequence of requests, each a 2-byte little-endian length and that many bytes (the
 * last one takes what is left if its length runs past the end), at most PF_MAX_REQUESTS of them.
 * Each input gets a fresh server on the process's one platform, so handle numbers start at 1 and an
 * input can create objects and then use them; everything it made is released at its end. A switch
 * is kicked before it starts (server.kick_before_switch): no guest code runs.
 *
 * Beyond the sanitizers, every response is checked: it decodes, carries the request's id, has
 * exactly one of an Error and a result, the result fits the operation, a switch that succeeded
 * reports RF_EVENT_INTERRUPTED, and no descriptor is passed on a connection that is not a Unix
 * socket. After the input, nothing the server made is left on the platform and its memory count
 * is back at zero. A broken check calls abort() (libFuzzer keeps the input). */
#ifndef RINGFENCE_PROTOFUZZ_H
#define RINGFENCE_PROTOFUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_MAX_REQUESTS 32   /* a memory_read may cost 16 MiB of shmem: 512 MiB per input at most */

/* Creates the platform. 0; 1 when KVM cannot be used here (*why says so); -1 on another failure. */
int pf_setup(char *why, size_t why_len);

struct pf_stats {
	unsigned requests, errors;   /* requests dispatched; responses that carried an Error */
	char first_error[160];       /* the first Error's message */
};

/* Runs one input (see above). verbose: one line per request on stdout. stats may be NULL. */
void pf_run(const uint8_t *data, size_t n, bool verbose, struct pf_stats *stats);

/* seeds.c: the built-in seeds (valid sessions and some bad requests), made with protobuf-c. A name
 * starting with "valid-" is a seed every request of which must succeed. */
struct pf_seed {
	const char *name;
	uint8_t *data;               /* malloc'd */
	size_t len;
};
/* Fills seeds[0..max) and returns how many; -1 out of memory. Free each data. */
int pf_seeds(struct pf_seed *seeds, int max);

#endif
