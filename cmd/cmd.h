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

/* ---- exit statuses of `ringfence run` beside the program's own 0..255 ----
 * They follow the shell's conventions (125..127 for "could not run", 128+N for "killed by signal
 * N"), so a script sees the same status as if the program had run natively and died the same way.
 * A program can of course exit with any of these values itself; stderr then says nothing. */
#define RUN_EXIT_PLATFORM    125   /* KVM or the platform failed (no /dev/kvm, out of memory, ...) */
#define RUN_EXIT_UNSUPPORTED 126   /* the program made a syscall ringfence run does not serve */
#define RUN_EXIT_NOLOAD      127   /* missing, unreadable, or not a static x86-64 executable */
#define RUN_EXIT_SIGNAL      128   /* + the signal a native run would have died of (fault.c) */

/* Prints "ringfence: " and the message to stderr; returns status, so callers can return it. */
int cmd_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- elf.c: ELF64 executable parser (pure: no KVM, no I/O) ---- */
#define ELF_MAX_PHDRS 64                     /* Linux stops at one 4 KiB page of them (73) */
#define ELF_USER_MIN  0x10000ull             /* like vm.mmap_min_addr: page 0 and its neighbours stay unmapped */
#define ELF_USER_END  0x800000000000ull      /* the user half; the shim owns everything above */

struct elf_segment {
	uint64_t vaddr, memsz;                /* memsz > 0 */
	uint64_t offset, filesz;              /* filesz <= memsz, inside the file */
	unsigned prot;                        /* RF_PROT_* from p_flags; 0 for a PROT_NONE segment */
};

struct elf_info {
	uint64_t entry;
	uint64_t phdr_vaddr;                  /* where a loaded segment holds the program headers; 0: nowhere */
	unsigned phnum, phentsize;
	unsigned nseg;                        /* PT_LOAD segments, in file order, none overlapping */
	struct elf_segment seg[ELF_MAX_PHDRS];
};

/* Checks that file[0..size) is a static x86-64 ET_EXEC whose PT_LOAD segments all fit the file and
 * the user half without overlapping (by page, as they are mapped) and whose entry point is in an
 * executable one. 0 and *out filled, or -ENOEXEC with one sentence (no prefix) in err. */
int elf_parse(const void *file, size_t size, struct elf_info *out, char *err, size_t errlen);

/* ---- image.c: a loaded program's memory, mappings and user-address lookups ---- */
#define IMAGE_STACK_SIZE (8ull << 20)
#define IMAGE_STACK_TOP  0x7ffffffff000ull   /* as Linux: the last user page stays unmapped */
#define IMAGE_MEM_MAX    (4ull << 30)         /* segments plus stack; more is refused, not tried */

struct rf_platform;
struct rf_memory;
struct rf_as;

struct image_region {
	uint64_t va, len;                     /* page aligned */
	unsigned char *host;                  /* the bytes at va in the memory's host mapping */
	unsigned prot;                        /* RF_PROT_*; 0: reserved but not mapped */
};

struct image {
	struct rf_memory *mem;
	struct rf_as *as;
	unsigned n;                           /* regions, sorted by va; the stack is one of them */
	struct image_region r[ELF_MAX_PHDRS + 1];
	struct image_region *stack;           /* points into r: an image is not copied */
};

/* Creates one memory holding every segment and the stack, copies the file bytes in and maps it all
 * in a new address space. 0, or an exit status (RUN_EXIT_PLATFORM or RUN_EXIT_NOLOAD) after
 * printing why; *im is then empty and image_destroy() is harmless. */
int image_load(struct image *im, struct rf_platform *p, const char *prog, const unsigned char *file,
               const struct elf_info *elf);
void image_destroy(struct image *im);
/* The host address of user address va if a region with all of prot covers it, with how many bytes
 * from there the region still covers in *avail; NULL otherwise. */
unsigned char *image_span(const struct image *im, uint64_t va, unsigned prot, uint64_t *avail);

/* ---- stack.c: the System V x86-64 initial process stack ---- */
struct stack_aux {
	uint64_t type, val;
};

/* Lays out strings, AT_RANDOM bytes, auxv (aux[0..naux) then AT_RANDOM, AT_EXECFN, AT_NULL), envp,
 * argv and argc at the top of the region [va, va+len) whose bytes are at host, as Linux does at
 * execve. *rsp gets the entry stack pointer (16-byte aligned, pointing at argc). -E2BIG if it does
 * not fit a quarter of the region (Linux's limit for arguments). */
int stack_build(unsigned char *host, uint64_t va, uint64_t len, char *const argv[], char *const envp[],
                const char *execfn, const struct stack_aux *aux, unsigned naux,
                const unsigned char random[16], uint64_t *rsp);

/* ---- fault.c: what a fault would have done to a native process ---- */
struct rf_event;
/* Prints "ringfence: PROGRAM: #PF at 0x... (...)" and returns 128 + the signal. */
int fault_report(const char *prog, const struct rf_event *ev);

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
