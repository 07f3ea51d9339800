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



#endif