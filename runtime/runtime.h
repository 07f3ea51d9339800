/* SPDX-License-Identifier: MIT */
/* runtime: a small Linux for one static x86-64 process, built on ringfence's public API only.
 *
 * Contracts of this folder:
 * - Only platform/include/ringfence.h is included from below (meson gives this folder no other include
 *   path). cmd/ is a thin front that fills a struct rt_config and calls rt_run().
 * - A process (struct rt_proc) owns its memory map, its file table and its signal actions; a thread
 *   (struct rt_thread) owns a context, a signal mask and its pending signals. Today a process has one
 *   thread; the split is where threads and fork go later (a file table and actions are refcountable,
 *   an address space can be copied page by page from the map).
 * - Every guest address goes through mem_copy_in/out, mem_iov or mem_str_in (mem.c), which check it
 *   against the region map before touching host memory: a bad pointer is -EFAULT, never a host fault.
 * - Syscall handlers return the value the guest gets in rax: >= 0, or a negative errno. Internal
 *   codes above the errno range (RT_*) ask the loop for something else (restart, no return value).
 * - The host file system is reached only below the root, through openat2(RESOLVE_IN_ROOT); writes
 *   only below --rw directories; the host's /proc, /sys and /dev never (files.c, path.c).
 * - Nothing here exits the host process: a guest can only end itself.
 */
#ifndef RINGFENCE_RUNTIME_H
#define RINGFENCE_RUNTIME_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "ringfence.h"

/* ---- exit statuses of `ringfence run` beside the program's own 0..255 ----
 * The shell's conventions (125..127 "could not run", 128+N "killed by signal N"), so a script sees
 * the status a native run would have given. */
#define RT_EXIT_PLATFORM 125   /* KVM or the platform failed (no /dev/kvm, out of memory, ...) */
#define RT_EXIT_NOLOAD   127   /* missing, unreadable, or not a static x86-64 executable */
#define RT_EXIT_SIGNAL   128   /* + the signal that ended the program */

struct rt_config {
	char *const *argv;            /* argv[0] is the program's host path */
	char *const *envp;            /* the program's environment */
	const char *root;             /* host directory the program sees as / (NULL: /) */
	const char *const *rw;        /* host directories below root where writes are allowed */
	unsigned nrw;
	uint64_t memory;              /* bytes of guest memory (0: RT_MEMORY_DEFAULT) */
	FILE *trace;                  /* one line per syscall, or NULL */
	bool stats;                   /* counters to stderr at the end */
	const struct rf_platform_options *platform;  /* NULL: defaults, exit log on stderr */
	bool no_seccomp;              /* debugging only: no syscall filter (seccomp.c) */
};

#define RT_MEMORY_DEFAULT (1ull << 30)
#define RT_MEMORY_MAX     (64ull << 30)

/* Loads and runs the program to its end. Returns its exit status, or RT_EXIT_* after one
 * "ringfence: ..." line on stderr. */
int rt_run(const struct rt_config *cfg);

/* seccomp.c: from here on the process (every thread) may make only the runtime's and the
 * platform's host syscalls; any other kills it with SIGSYS. 0, or RT_EXIT_PLATFORM after a line. */
int rt_seccomp_install(void);

/* Prints "ringfence: " and the message to stderr in one write; returns status. */
int rt_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- elf.c: ELF64 executable parser (pure: no KVM, no I/O) ---- */
#define ELF_MAX_PHDRS 64                     /* Linux stops at one 4 KiB page of them (73) */
#define ELF_USER_MIN  0x10000ull             /* like vm.mmap_min_addr */
#define ELF_USER_END  0x800000000000ull      /* the user half; the shim owns everything above */
#define ELF_PIE_BASE  0x555555554000ull      /* where a static PIE is placed (Linux's ELF_ET_DYN_BASE) */

struct elf_segment {
	uint64_t vaddr, memsz;                /* memsz > 0; vaddr includes the load bias */
	uint64_t offset, filesz;              /* filesz <= memsz, inside the file */
	unsigned prot;                        /* RF_PROT_* from p_flags; 0 for a PROT_NONE segment */
};

struct elf_info {
	uint64_t entry;                       /* load bias included */
	uint64_t bias;                        /* 0 for ET_EXEC, ELF_PIE_BASE - lowest vaddr for a PIE */
	uint64_t phdr_vaddr;                  /* where a loaded segment holds the program headers; 0: nowhere */
	unsigned phnum, phentsize;
	bool pie;
	unsigned nseg;                        /* PT_LOAD segments, in file order, none overlapping */
	struct elf_segment seg[ELF_MAX_PHDRS];
};

/* Checks that file[0..size) is a static x86-64 ET_EXEC or static PIE (ET_DYN without PT_INTERP)
 * whose PT_LOAD segments fit the file and the user half without sharing pages, with the entry point
 * in an executable one. 0 and *out filled, or -ENOEXEC with one sentence (no prefix) in err. */
int elf_parse(const void *file, size_t size, struct elf_info *out, char *err, size_t errlen);

/* ---- stack.c: the System V x86-64 initial process stack ---- */
struct stack_aux {
	uint64_t type, val;
};

/* Lays out strings, AT_RANDOM bytes, auxv (aux[0..naux) then AT_RANDOM, AT_EXECFN, AT_NULL), envp,
 * argv and argc at the top of [va, va+len) whose bytes are at host, as Linux's execve does. *rsp
 * gets the entry stack pointer (16-byte aligned, at argc). -E2BIG beyond a quarter of the region. */
int stack_build(unsigned char *host, uint64_t va, uint64_t len, char *const argv[], char *const envp[],
                const char *execfn, const struct stack_aux *aux, unsigned naux,
                const unsigned char random[16], uint64_t *rsp);

/* ---- mem.c / mm.c: guest memory, the region map, checked guest access ---- */
#define RT_PAGE        4096ull
#define RT_USER_TOP    0x7ffffffff000ull     /* Linux's TASK_SIZE: the last page below the hole is never
                                              * mapped (a SYSCALL there would return to a non-canonical
                                              * address) */
#define RT_STACK_TOP   RT_USER_TOP
#define RT_STACK_SIZE  (8ull << 20)          /* RLIMIT_STACK; mapped whole at start */
#define RT_STACK_GAP   (1ull << 20)          /* Linux's stack_guard_gap: nothing is placed in it */
#define RT_MMAP_TOP    (RT_STACK_TOP - RT_STACK_SIZE - RT_STACK_GAP)
#define RT_MAX_REGIONS 65530                 /* vm.max_map_count */
#define RT_NO_PAGE     UINT32_MAX

enum region_kind { REGION_IMAGE, REGION_BRK, REGION_STACK, REGION_MMAP };

/* A run of pages with one protection. pages[] holds one guest-memory page number per page, or is
 * NULL when none is allocated (a PROT_NONE reservation never made accessible): allocated pages are
 * all-or-nothing per region, so the host memory spent on page arrays is bounded by guest memory. */
struct region {
	uint64_t va, len;
	unsigned prot;                        /* RF_PROT_*; 0: reserved, faults on any access */
	enum region_kind kind;
	bool shared;                          /* MAP_SHARED: kept for fork, same as private today */
	bool nowrite;                         /* a shared file mapping: never writable (Linux's !VM_MAYWRITE) */
	uint32_t *pages;
};

struct rt_mem {
	rf_memory *mem;
	rf_as *as;
	unsigned char *host;                  /* rf_memory_host(mem) */
	uint64_t npages, used;                /* guest pages in all, allocated */
	uint64_t *bitmap;                     /* 1: allocated */
	uint64_t next;                        /* next-fit cursor */
	struct region *r;                     /* sorted by va, none overlapping */
	unsigned n, cap;
	uint64_t brk_start, brk;              /* brk region: [brk_start, page_up(brk)) */
	uint64_t mapped_peak;                 /* pages, for --stats */
};

int mem_init(struct rt_mem *m, rf_platform *p, uint64_t bytes);
void mem_destroy(struct rt_mem *m);
/* Adds a region at [va, va+len) (page aligned, free) with fresh zero pages when prot != 0 or
 * populate. 0, -ENOMEM (guest memory or region count exhausted), or a platform error. */
#define MEM_SHARED  1u   /* MAP_SHARED */
#define MEM_NOWRITE 2u   /* a shared file mapping: never writable (Linux's !VM_MAYWRITE) */
int mem_add(struct rt_mem *m, uint64_t va, uint64_t len, unsigned prot, enum region_kind kind, unsigned flags,
            bool populate);
/* The host bytes of [va, va+len) of a populated region, for filling it (loader, file mappings). */
int mem_fill(struct rt_mem *m, uint64_t va, const void *src, size_t len);
/* Pages of guest memory: allocate n (zeroed), free (zeroed for the next user), zero in place. */
int mem_pages_alloc(struct rt_mem *m, uint64_t n, uint32_t *out);
void mem_pages_free(struct rt_mem *m, const uint32_t *pages, uint64_t n);
void mem_pages_zero(struct rt_mem *m, const uint32_t *pages, uint64_t n);
/* Removes whatever is mapped in [va, va+len), splitting regions; frees their pages. */
int mem_remove(struct rt_mem *m, uint64_t va, uint64_t len);
/* Changes protection of [va, va+len); -ENOMEM if part of it is unmapped (nothing changed). */
int mem_protect(struct rt_mem *m, uint64_t va, uint64_t len, unsigned prot);
/* Moves or grows a mapping as mremap does (flags: MREMAP_*). */
int64_t mem_remap(struct rt_mem *m, uint64_t old, uint64_t old_len, uint64_t new_len, unsigned flags,
                  uint64_t new_va);
/* Zero-fills the allocated pages of [va, va+len) (MADV_DONTNEED on private anonymous memory). */
int mem_zero(struct rt_mem *m, uint64_t va, uint64_t len);

/* A free gap of len bytes (plus a guard page each side) below top, highest first; 0 if none. */
uint64_t mem_find_gap(const struct rt_mem *m, uint64_t len, uint64_t top);
bool mem_is_free(const struct rt_mem *m, uint64_t va, uint64_t len);
const struct region *mem_find(const struct rt_mem *m, uint64_t va);

/* Checked guest access: prot is what the guest itself would need (RF_PROT_READ to read its buffer,
 * RF_PROT_WRITE to have it written). */
int mem_copy_in(const struct rt_mem *m, void *dst, uint64_t va, size_t len);
int mem_copy_out(const struct rt_mem *m, uint64_t va, const void *src, size_t len);
/* A NUL-terminated string of at most max bytes with the NUL: its length, -EFAULT, or -ENAMETOOLONG. */
long mem_str_in(const struct rt_mem *m, char *dst, uint64_t va, size_t max);
/* Host iovecs for the longest accessible prefix of [va, va+len) (at most max entries): the bytes
 * covered, 0 when the first byte is not accessible. */
size_t mem_iov(const struct rt_mem *m, uint64_t va, size_t len, unsigned prot, struct iovec *iov, int max,
               int *niov);

/* ---- the process ---- */
#define RT_NSIG 64

struct rt_sigaction {                     /* the kernel's struct sigaction for x86-64, as the guest has it */
	uint64_t handler, flags, restorer, mask;
};

struct rt_file;
#define RT_MAX_FDS 1024

struct rt_files {
	struct rt_file *fd[RT_MAX_FDS];
	bool cloexec[RT_MAX_FDS];
};

struct rt_fs {
	int root;                             /* O_PATH fd of the root directory */
	char *root_path;                      /* its canonical host path, no trailing slash ("" for /) */
	char **rw;                            /* canonical host paths of the writable directories */
	unsigned nrw;
	char cwd[4096];                       /* the guest's working directory, absolute guest path */
	unsigned umask;
	dev_t deny[64];                       /* devices of the host's /proc, /sys and /dev mounts */
	unsigned ndeny;
};

struct rt_waker;

struct rt_stats {
	uint64_t calls[512];
	uint64_t guest_ns, host_ns, switches, faults, signals, kicks;
};

struct rt_proc {
	rf_platform *p;
	struct rt_mem mem;
	struct rt_files files;
	struct rt_fs fs;
	struct rt_sigaction act[RT_NSIG + 1];
	const char *exe;                      /* host path of the program (messages, /proc/self/exe) */
	char exe_guest[4096];                 /* readlink("/proc/self/exe") */
	int pid, ppid;
	char comm[16];                        /* prctl(PR_SET_NAME) */
	struct rt_waker *waker;
	FILE *trace;
	bool show_stats;
	struct rt_stats stats;
	bool exited;
	int status;
};

struct rt_thread {
	struct rt_proc *proc;
	rf_context *c;
	uint64_t mask;                        /* blocked signals, bit sig-1 */
	uint64_t pending;                     /* raised, not yet delivered */
	struct { int signo, code; uint64_t addr; int pid; } info[RT_NSIG + 1];   /* siginfo per pending */
	uint64_t altstack_sp, altstack_size;
	int altstack_flags;
	uint64_t tid_address;
	uint64_t saved_mask;                  /* rt_sigsuspend's mask to put back after the handler */
	bool has_saved_mask;
	uint64_t restart_nr;                  /* a syscall interrupted by a signal (RT_RESTART), or 0 */
	uint64_t fault_err, fault_trapno, fault_cr2;   /* for the signal frame's sigcontext */
	char fault_desc[160];                 /* what the fault was, for a death message */
};

/* Internal return codes of handlers, beyond the errno range (-4095..-1). */
#define RT_NORETURN  (-100000L)   /* registers were set by the handler (rt_sigreturn, exit) */
#define RT_RESTART   (-100001L)   /* interrupted by a signal: restart if its handler has SA_RESTART,
                                   * else -EINTR (Linux's ERESTARTSYS) */

static inline uint64_t sigbit(int sig) { return 1ull << (sig - 1); }

/* ---- syscalls.c: the table, dispatch, --trace and --stats ---- */
typedef long syscall_fn(struct rt_thread *t, const uint64_t a[6]);
struct syscall_desc {
	const char *name;
	syscall_fn *fn;
	const char *args;                     /* one letter per argument, for --trace (syscalls.c) */
};
extern const struct syscall_desc syscall_table[];
extern const unsigned syscall_count;
/* Serves the syscall the guest stopped at; its result is in rax unless RT_NORETURN. */
void syscall_dispatch(struct rt_thread *t);
void stats_print(struct rt_thread *t);

/* Handlers, by area (each file's header comment says what it serves). */
syscall_fn sys_brk, sys_mmap, sys_munmap, sys_mprotect, sys_mremap, sys_madvise, sys_msync,
	sys_mincore;                                                           /* sys_mem.c */
syscall_fn sys_read, sys_write, sys_pread64, sys_pwrite64, sys_readv, sys_writev, sys_lseek,
	sys_close, sys_dup, sys_dup2, sys_dup3, sys_fcntl, sys_ioctl, sys_pipe2, sys_pipe, sys_getdents64,
	sys_fstat, sys_ftruncate, sys_fsync, sys_close_range, sys_poll, sys_ppoll;  /* sys_fd.c */
struct stat;
int fd_stat(struct rt_file *f, struct stat *st);
syscall_fn sys_open, sys_openat, sys_creat, sys_newfstatat, sys_stat, sys_lstat, sys_statx,
	sys_faccessat, sys_faccessat2, sys_access, sys_readlink, sys_readlinkat, sys_getcwd, sys_chdir,
	sys_fchdir, sys_umask, sys_unlink, sys_unlinkat, sys_rmdir, sys_mkdir, sys_mkdirat, sys_rename,
	sys_renameat, sys_renameat2, sys_symlink, sys_symlinkat, sys_statfs, sys_fstatfs, sys_utimensat,
	sys_chmod, sys_fchmod, sys_fchmodat;                                  /* sys_path.c */
syscall_fn sys_rt_sigaction, sys_rt_sigprocmask, sys_rt_sigreturn, sys_rt_sigpending,
	sys_rt_sigsuspend, sys_sigaltstack, sys_kill, sys_tkill, sys_tgkill, sys_pause, sys_alarm,
	sys_setitimer, sys_getitimer;                                          /* sys_signal.c */
syscall_fn sys_nanosleep, sys_clock_nanosleep, sys_clock_gettime, sys_clock_getres,
	sys_gettimeofday, sys_time;                                            /* sys_time.c */
syscall_fn sys_exit, sys_exit_group, sys_arch_prctl, sys_set_tid_address, sys_set_robust_list,
	sys_getpid, sys_getppid, sys_gettid, sys_getuid, sys_getgid, sys_setid, sys_getgroups,
	sys_getpgrp, sys_getsid, sys_setpgid, sys_uname, sys_sysinfo, sys_prlimit64, sys_getrlimit,
	sys_setrlimit, sys_getrandom, sys_prctl, sys_sched_yield, sys_sched_getaffinity, sys_getrusage,
	sys_times, sys_futex, sys_wait4, sys_getcpu, sys_enosys;             /* sys_proc.c */

/* ---- files.c: the file table ---- */
enum file_kind { FILE_HOST, FILE_NULL, FILE_ZERO, FILE_RANDOM };
struct rt_file {
	unsigned refs;
	enum file_kind kind;
	int host;                             /* FILE_HOST: the host descriptor (O_CLOEXEC) */
	bool dir;
	bool writable;                        /* opened with write access (below an --rw directory) */
	char *gpath;                          /* guest path it was opened by (directories: for *at) */
};
struct rt_file *file_new(enum file_kind kind, int host, const char *gpath);
void file_put(struct rt_file *f);
/* The lowest free descriptor >= min, installed with f (a reference is taken): the number, or -EMFILE. */
int files_install(struct rt_files *ft, struct rt_file *f, int min, bool cloexec);
struct rt_file *files_get(struct rt_files *ft, uint64_t fd);   /* NULL: EBADF */
int files_close(struct rt_files *ft, uint64_t fd);
int files_init_stdio(struct rt_files *ft);
void files_destroy(struct rt_files *ft);

/* ---- path.c: guest paths to host objects, inside the root ---- */
#define RT_PATH_MAX 4096
int fs_init(struct rt_fs *fs, const char *root, const char *const *rw, unsigned nrw);
void fs_destroy(struct rt_fs *fs);
/* Reads a path argument and makes it absolute (against dirfd's path or the cwd) into out. */
int path_in(struct rt_thread *t, int64_t dirfd, uint64_t va, char out[RT_PATH_MAX], bool empty_ok);
/* The served devices and the refused host trees, decided on the lexically cleaned path:
 * FILE_* kind for a served device, -EACCES for the host's /proc, /sys, /dev, 0 for the file system. */
int path_special(const char *abs);
/* openat2 below the root: flags as open(2); nofollow for the last component. A host fd or -errno.
 * Objects on the host's /proc, /sys or /dev and device nodes are refused with -EACCES. */
int path_open(struct rt_fs *fs, const char *abs, int flags, unsigned mode);
/* The parent directory of abs (O_PATH) and its last component; -EROFS unless writable below --rw. */
int path_parent_rw(struct rt_fs *fs, const char *abs, char base[256]);
/* 0 if the object behind host fd is below an --rw directory, -EROFS if not. */
int path_fd_writable(const struct rt_fs *fs, int fd);
/* The guest path of a host fd below the root (for getcwd and directory fds). */
int path_of_fd(const struct rt_fs *fs, int fd, char out[RT_PATH_MAX]);
bool path_fd_denied(const struct rt_fs *fs, int fd);

/* ---- signals.c: raising, delivering, frames ---- */
/* Queues sig for t with its siginfo (code, addr, pid). Ignored signals are dropped here. */
void signal_raise(struct rt_thread *t, int sig, int code, uint64_t addr, int pid);
/* A fault the guest caused: queued and forced as Linux's force_sig does (unblocked, and back to the
 * default action if it was blocked or ignored). */
void signal_force(struct rt_thread *t, int sig, int code, uint64_t addr);
/* Delivers every deliverable pending signal before the next guest entry: builds frames, or ends the
 * process (proc->exited). result: the interrupted syscall's result (RT_RESTART etc.), or 0. */
void signal_deliver(struct rt_thread *t);
/* A signal is pending that would interrupt a sleep (not blocked, not ignored). */
bool signal_interrupts(struct rt_thread *t);
void signal_collect(struct rt_thread *t);  /* moves signals raised by the waker into t->pending */
const char *signal_name(int sig);
/* The event the guest raised as a signal (faults.c). */
void fault_to_signal(struct rt_thread *t, const struct rf_event *ev);
/* The one-line message of a death by signal, and the exit status. */
int signal_death(struct rt_thread *t, int sig);

/* ---- waker.c: a host thread for timers and host signals, which kicks the guest ---- */
int waker_start(struct rt_proc *proc, struct rt_thread *t);
void waker_stop(struct rt_proc *proc);
/* Waits until timeout_ns (-1: forever) passes (0), a signal that interrupts arrives (-EINTR), or one
 * of the n host pollfds is ready (their count, revents set). */
struct pollfd;
int waker_wait(struct rt_thread *t, struct pollfd *fds, int n, int64_t timeout_ns);
/* ITIMER_REAL: arm (value 0: disarm) and read. Times in ns. */
int waker_itimer(struct rt_proc *proc, uint64_t value, uint64_t interval, uint64_t *old_value,
                 uint64_t *old_interval);
uint64_t waker_take(struct rt_proc *proc);   /* signals raised by the waker since the last call */

/* ---- loader.c ---- */
/* Maps the program and its stack and sets the entry registers: 0, or an exit status after a message. */
int loader_load(struct rt_thread *t, const char *path, char *const argv[], char *const envp[]);
/* The same file checks without KVM, for a guest memory of `memory` bytes: 0 or RT_EXIT_NOLOAD after
 * a message. */
int loader_check(const char *path, uint64_t memory);

uint64_t rt_now_ns(void);

#endif
