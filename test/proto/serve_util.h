/* SPDX-License-Identifier: MIT */
/* The control plane's tests: `ringfence serve` run as a child process (started, connected to, waited
 * for, all with bounded waits and no sleeps) and the guest code the tests load through it. */
#ifndef RINGFENCE_TEST_SERVE_UTIL_H
#define RINGFENCE_TEST_SERVE_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

struct serve_proc {
	pid_t pid;
	int pidfd;                 /* readable once the server exits (-1 if pidfd_open is missing) */
	int inotify;               /* the socket's directory: its creation wakes serve_connect */
	bool reaped;
	int status;                /* waitpid's, once reaped */
	char dir[64];              /* a fresh directory under /tmp */
	char sock[128];            /* dir/sock */
	char err_path[128];        /* dir/stderr: the server's stderr, when captured */
};

struct serve_opts {
	bool no_socket;            /* no "--socket DIR/sock" (args say --fd) */
	const char *const *args;   /* more arguments, NULL-terminated (or NULL) */
	const char *const *env;    /* added to our environment, NULL-terminated (or NULL) */
	bool capture_err;          /* the server's stderr to dir/stderr, else ours */
	int keep[2];               /* descriptors the server inherits (-1: none; 0 is never one) */
	int stdio;                 /* > 0: becomes the server's stdin and stdout */
};
/* Starts `ringfence serve [--socket DIR/sock] ARGS...` (opts NULL: just the socket). 0, or -errno. */
int serve_start(struct serve_proc *sp, const char *ringfence, const struct serve_opts *opts);
/* Connects to the server's socket: retried while the socket does not exist or does not listen yet,
 * waking on its creation (inotify) or the server's death, at most 30 s. 0, or -errno. */
int serve_connect(struct serve_proc *sp, struct rfc *c);
/* Waits for the server's exit, at most timeout_ms. 0 (sp->status set), or -ETIMEDOUT. */
int serve_wait(struct serve_proc *sp, int timeout_ms);
/* Kills the server if still running (SIGKILL), reaps it and removes its directory. */
void serve_cleanup(struct serve_proc *sp);
/* The server's stderr so far (dir/stderr), into buf (NUL-terminated). */
void serve_stderr(const struct serve_proc *sp, char *buf, size_t size);

/* True once the server's stats, asked on c, count n open connections (at most timeout_ms). */
bool conns_eventually(struct rfc *c, unsigned n, int timeout_ms);

/* Skips the whole program (TAP) when /dev/kvm cannot be opened, unless RINGFENCE_REQUIRE_KVM=1. */
void kvm_or_skip(void);
/* True if fn returned true within timeout_ms, calling it again after each poll(2) of 1 ms (for
 * state only the server's side can change: a connection count dropping). */
bool eventually(bool (*fn)(void *), void *arg, int timeout_ms);

/* ---- the guest: one code page at GUEST_VA (memory offset 0), the whole 2 MiB memory mapped RWX ---- */
#define GUEST_VA        0x400000ull
#define GUEST_MEM       (2ull << 20)
#define G_SYSCALL       0x05    /* mov $39,%eax (at 0); syscall */
#define G_AFTER_SYSCALL 0x07    /* mov %eax,0x0: a write fault at address 0 */
#define G_UD2           0x0e    /* ud2 */
#define G_SPIN          0x10    /* movl $1,GUEST_VA+G_MARKER; then jmp . at G_SPIN_LOOP */
#define G_SPIN_LOOP     0x1b
#define G_READ_DATA     0x20    /* mov 0x500000,%eax; syscall; jmp . */
#define G_MARKER        0x1000  /* the spinning guest's "I am running" word (memory offset) */
#define G_DATA_VA       0x500000ull
extern const uint8_t guest_code[];
extern const size_t guest_code_size;
/* Waits until the guest has written 1 at host+G_MARKER (it is in its spin loop), at most 30 s. */
bool guest_wait_spinning(volatile const uint8_t *host);

/* A connection with a memory holding the guest code (mapped here too), an address space mapping all
 * of it RWX at GUEST_VA, and a context at rip. Bails out (TAP) if any of it fails. */
struct objs {
	struct rfc c;
	uint64_t mem, as, ctx;
	int mfd;
	uint8_t *host;
};
void objs_make(struct serve_proc *sp, struct objs *o, uint64_t rip);
/* Closes the connection (the server releases its objects) and our mapping. */
void objs_drop(struct objs *o);
/* o's switch request with this id, packed into buf (64 bytes are enough): its length. */
size_t switch_request(const struct objs *o, uint64_t id, uint8_t *buf);
/* Sends o's switch request on its socket and returns without reading the answer (the guest is left
 * running). */
void send_switch(struct objs *o);


#endif
