/* SPDX-License-Identifier: MIT */
/* cmd: the `ringfence` command. Each subcommand is one function returning the process exit status;
 * only main.c exits. */
#ifndef RINGFENCE_CMD_H
#define RINGFENCE_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ringfence run PROGRAM [ARGS]: exit status of the program, or one of RUN_EXIT_* below. */
int cmd_run(int argc, char **argv);
/* ringfence bench [--json] [--iterations N]: prints figures, each with its floor and ratio. */
int cmd_bench(int argc, char **argv);
/* ringfence serve --socket PATH | --fd N | --fd R:W: the protobuf control plane (proto/). */
int cmd_serve(int argc, char **argv);
struct server;
/* serve_seccomp.c: the server's syscall allowlist (libseccomp), on every thread. 0 or -errno. */
int serve_seccomp(struct server *s);
/* ringfence info: the probes' findings as `key: value` lines (host, mmu, syscall, ...). */
int cmd_info(int argc, char **argv);
struct rf_platform_info;
const char *cmd_host_name(const struct rf_platform_info *info);
const char *cmd_mmu_name(int mmu);
const char *cmd_syscall_name(int mode);

/* ---- exit statuses of `ringfence run` beside the program's own 0..255 (runtime.h's RT_EXIT_*) ----
 * The shell's conventions (125..127 for "could not run", 128+N for "killed by signal N"), so a script
 * sees the same status as if the program had run natively and died the same way. */
#define RUN_EXIT_PLATFORM    125   /* KVM or the platform failed (no /dev/kvm, out of memory, ...) */
#define RUN_EXIT_UNSUPPORTED 126   /* bench_sysemu: a traced program made a syscall it does not emulate */
#define RUN_EXIT_NOLOAD      127   /* missing, unreadable, or not a static x86-64 executable */
#define RUN_EXIT_SIGNAL      128   /* + the signal that ended the program */

/* Prints "ringfence: " and the message to stderr; returns status, so callers can return it. */
int cmd_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* bench_floor.c: host-only floors for `ringfence bench`, sampled like vcpu/floor.c does: warmup
 * untimed round trips, then ns[0..n) = CLOCK_MONOTONIC nanoseconds of batch round trips each.
 * 0 or -errno. */
#include <stdint.h>
/* A raw syscall(SYS_getppid) on the host. */
uint64_t bench_now_ns(void);   /* CLOCK_MONOTONIC in ns, for every bench figure */
int bench_floor_native(unsigned warmup, unsigned batch, uint64_t *ns, unsigned n);
/* A traced child's getppid stopped with PTRACE_SYSEMU and answered with GETREGS + SETREGS. */
int bench_floor_ptrace(unsigned warmup, unsigned batch, uint64_t *ns, unsigned n);
/* end bench_floor.c */

/* bench_kick.c: kick latency (rf_kick -> the switch returns RF_EVENT_INTERRUPTED) for a guest
 * spinning in ring 3 or (storm) faulting on every lap; sampled like the floors. split (or NULL)
 * gets each timed kick's two parts: rf_kick -> the first exit, and that exit -> the report. */
struct rf_platform;   /* ringfence.h's rf_platform; cmd.h is also built without the library */
struct kick_split {
	uint64_t *to_exit, *to_report;
	unsigned n, cap;
};
int bench_kick(struct rf_platform *p, bool storm, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n,
               struct kick_split *split);

/* bench_mmu.c: a remap the guest sees at its next read (round trip), and the rf_as_unmap of `pages`
 * pages the guest has read while the space runs on another vCPU (the call alone). */
int bench_remap(struct rf_platform *p, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n);
int bench_unmap(struct rf_platform *p, unsigned pages, unsigned warmup, unsigned batch, uint64_t *ns, unsigned n);

/* bench_sysemu.c: the children of ringfence bench --programs. bench_sysemu_run() runs argv[0] (a static
 * program) with every syscall stopped by PTRACE_SYSEMU and served by the tracer: getppid, openat of
 * /dev/null (a fake fd), write (to a fake fd: counted as done; to 1 or 2: copied out with
 * process_vm_readv and written to out_fd/err_fd, -1 meaning this process's own), exit/exit_group;
 * anything else gets -ENOSYS. Returns the program's status as a shell reports it (127: it could
 * not be executed, 128+N: signal N), or -errno (-EPERM: PTRACE_TRACEME refused). */
struct bench_sysemu_stats {
	unsigned long syscalls;               /* served, exit included */
	unsigned long unsupported;            /* answered -ENOSYS */
};
int bench_sysemu_run(char *const argv[], int out_fd, int err_fd, struct bench_sysemu_stats *stats);
/* Runs argv[0] traced only to stop it at its exit, and reads its VmHWM there: the peak RSS (KiB) of
 * the process image execve made, which wait4's ru_maxrss cannot give (it counts the forking parent's
 * memory too). The same return as bench_sysemu_run(); *hwm_kib is -errno if it could not be read. */
int bench_traced_hwm(char *const argv[], int out_fd, int err_fd, long *hwm_kib);
/* Runs argv[0] as a plain child (posix_spawn), stdout and stderr as above, and waits for it: its
 * shell status or -errno; *maxrss gets wait4's ru_maxrss in KiB. */
int bench_spawn_run(char *const argv[], int out_fd, int err_fd, long *maxrss);
/* end bench_sysemu.c */

/* bench_programs.c: `ringfence bench --programs`: wall time of whole static programs (bench/progs and
 * test/progs hello) natively, under `ringfence run` and under bench_sysemu_run(), in one run, with the
 * per-syscall overhead as a ratio to the ring-3 fault floor, start-up time and peak RSS. */
struct bench_programs_opts {
	bool only;                            /* --programs: these figures and no others */
	const char *dir;                      /* --progs-dir DIR; NULL: next to the ringfence executable */
	unsigned runs;                        /* --program-runs N: timed runs per program and runner */
};
/* Takes its own options out of argv (shifting the rest down, *argc updated) so the caller parses
 * what remains. 0, or 2 (a usage error) after saying why. */
int bench_programs_options(int *argc, char **argv, struct bench_programs_opts *o);
/* Prints the figures (a table, or one JSON object per line). 0, or 1 if a figure failed. */
int bench_programs(const struct bench_programs_opts *o, bool json);
/* end bench_programs.c */

/* bench_proto.c: one `switch` round trip through the control plane (rfc_switch -> server_one on a
 * socketpair in a thread -> the guest's SYSCALL -> back), by the switch channel and by the socket,
 * the same through rf_switch, and a bare Unix-socket ping-pong of frames of that request's and
 * response's sizes; sampled like the floors. bench_proto_open makes the server, the client (with its
 * channel), the echo threads and both guests on p; on failure (said on stderr, -errno) *bp is still
 * set: bench_proto_close it. */
struct bench_proto;
enum bench_proto_trip {
	BP_CHANNEL = 1,     /* rfc_switch by the switch channel */
	BP_SOCKET,          /* rfc_switch by the socket */
	BP_SLEEP,           /* the same with neither side waiting awake for the other (spin caps 0) */
	BP_RELAY,           /* the ping-pong's frames with an rf_switch by the answering thread in
	                     * between: a remote switch without protobuf or the server */
	BP_CAPI,            /* rf_switch of the same guest */
	BP_PINGPONG,        /* the frames alone */
};
int bench_proto_open(struct rf_platform *p, struct bench_proto **bp);
void bench_proto_close(struct bench_proto *bp);
void bench_proto_sizes(const struct bench_proto *bp, unsigned *request, unsigned *response);
int bench_proto_measure(struct bench_proto *bp, enum bench_proto_trip trip, unsigned warmup, unsigned batch,
                        uint64_t *ns, unsigned n);
/* end bench_proto.c */

#endif
