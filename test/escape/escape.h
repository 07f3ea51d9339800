/* SPDX-License-Identifier: MIT */
/* The escape guest program (a static glibc executable run inside `ringfence run`): its modes and
 * the helpers they share. Every check is one TAP line; the driver checks the host side after. */
#ifndef ESCAPE_ESCAPE_H
#define ESCAPE_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "guest.h"

/* The fixture, as the driver builds it below TMP (a host directory the guest must never reach):
 *   TMP/secret                    "host secret\n"         outside the root
 *   TMP/root/                     the guest's /, read-only
 *     etc/passwd                  "fixture passwd\n"
 *     data/file                   "read-only data\n";  data/dir/ (empty)
 *     dir/sub/                    (empty)
 *     abs -> /etc/passwd          rel -> ../../../../../../etc/passwd
 *     dir/sub/climb -> ../../../secret      (TMP/secret, if it could climb)
 *     hostabs -> TMP/secret       hostdir -> TMP       up -> ..
 *     loop -> loop                chain0 -> chain1 -> ... -> chain44 -> /etc/passwd
 *     procmem -> /proc/self/mem   kvm -> /dev/kvm      devdir -> /dev
 *     rw/                         the --rw directory
 *       out_abs -> /data/file     out_rel -> ../data/file      out_dir -> ../data
 *       out_dangling -> ../newfile                 host_dangling -> TMP/created
 * In host mode (root /, --rw TMP/rw):
 *   TMP/ro.txt "host read-only\n", TMP/rw/, TMP/rw/out -> TMP/ro.txt, TMP/rw/up -> ..,
 *   TMP/link_mem -> /proc/self/mem, TMP/link_kvm -> /dev/kvm, TMP/link_proc -> /proc/self,
 *   TMP/link_dev -> /dev, TMP/sock (a listening unix socket of the driver's) */
#define FIXTURE_PASSWD "fixture passwd\n"
#define FIXTURE_DATA   "read-only data\n"
#define HOST_SECRET    "host secret\n"
#define HOST_RO        "host read-only\n"
#define LEAKED_FD      7   /* the driver leaves this fd open (read-write, on TMP/secret) */

/* Reads up to n-1 bytes of path into buf (NUL-terminated): length, or -errno. */
long escape_slurp(const char *path, char *buf, size_t n);
/* path opens and reads exactly want. */
void escape_reads(const char *path, const char *want, const char *what);
/* path cannot be opened for reading (with want, or any error if want is 0), and if it somehow
 * opens, it does not hold forbidden. */
void escape_unreadable(const char *path, int want, const char *forbidden, const char *what);
/* No descriptor above 2 is open, and the driver's leaked one is not reachable. */
void escape_no_leaked_fds(void);
/* Signals, tracing and sockets do not reach host processes (pid: the driver's host pid). */
void escape_processes(pid_t pid, const char *sock);

void escape_root(const char *tmp);
void escape_host(const char *tmp, pid_t driver, const char *self);

#endif
