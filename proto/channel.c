/* SPDX-License-Identifier: MIT */
/* The switch channel's shared page and its turn word, for both sides. Handing the turn over is one
 * atomic exchange; a futex wake follows only when the other side went to sleep on the word, so a
 * round trip between two sides that wait awake makes no system call at all. The futex is a shared
 * one (no FUTEX_PRIVATE_FLAG): the two sides are different processes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

/* ringfence.proto states the layout in bytes for clients in other languages. */
_Static_assert(offsetof(struct channel_page, turn) == 0, "the turn word is at offset 0");
_Static_assert(offsetof(struct channel_page, len) == 4, "the length is at offset 4");
_Static_assert(offsetof(struct channel_page, given_ns) == 8, "the stamp is at offset 8");
_Static_assert(offsetof(struct channel_page, data) == 64, "the message is at offset 64");
_Static_assert(CHANNEL_MAX_MESSAGE + 64 == CHANNEL_SIZE, "the message fills the rest");

int channel_create(int *fd, struct channel_page **page)
{
	/* Sealed at its size: the client could otherwise shrink it, and our next touch of the page would
	 * be a SIGBUS. */
	int f = memfd_create("ringfence-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f < 0)
		return -errno;
	if (ftruncate(f, CHANNEL_SIZE) < 0 || fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int e = -errno;
		close(f);
		return e;
	}
	struct channel_page *p = mmap(NULL, CHANNEL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		close(f);
		return e;
	}
	atomic_store(&p->turn, CHANNEL_CLIENT);
	*fd = f;
	*page = p;
	return 0;
}

int channel_map(int fd, struct channel_page **page)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size != CHANNEL_SIZE)
		return -EINVAL;
	struct channel_page *p = mmap(NULL, CHANNEL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*page = p;
	return 0;
}

void channel_unmap(struct channel_page *page)
{
	if (page)
		munmap(page, CHANNEL_SIZE);
}

struct turn_is {
	struct channel_page *page;
	uint32_t want;
};

static bool turn_came(void *arg)
{
	struct turn_is *t = arg;
	uint32_t v = atomic_load_explicit(&t->page->turn, memory_order_acquire) & ~CHANNEL_SLEEPING;
	return v == t->want || v == CHANNEL_CLOSED;
}

int channel_wait(struct channel_page *page, uint32_t want, struct spin *s, uint64_t cap_ns,
                 bool (*gone)(void *), void *arg)
{
	struct turn_is t = { page, want };
	spin_until(s, cap_ns, turn_came, &t, 256);
	const struct timespec check = { 0, CHANNEL_CHECK_MS * 1000000L };
	bool slept = false;
	for (;;) {
		uint32_t v = atomic_load_explicit(&page->turn, memory_order_acquire);
		if ((v & ~CHANNEL_SLEEPING) == want) {
			spin_arrived_at(s, *(volatile uint64_t *)&page->given_ns);
			return 0;
		}
		if ((v & ~CHANNEL_SLEEPING) == CHANNEL_CLOSED || gone(arg))
			return -ECONNRESET;
		if (!(v & CHANNEL_SLEEPING)) {
			/* Say so before sleeping: the other side's exchange then sees it and wakes us. */
			atomic_compare_exchange_strong(&page->turn, &v, v | CHANNEL_SLEEPING);
			continue;
		}
		/* Ends when woken, when the word is no longer v, or after the check interval: a side that
		 * ended without a word (a client killed, a server's connection closed) is noticed there. */
		s->slept += !slept;
		slept = true;
		if (syscall(SYS_futex, &page->turn, FUTEX_WAIT, v, &check, NULL, 0) < 0 && errno == ETIMEDOUT &&
		    (atomic_load(&page->turn) & ~CHANNEL_SLEEPING) == want &&
		    *(volatile uint64_t *)&page->given_ns + CHANNEL_CHECK_MS * 500000ull < spin_now_ns())
			s->late++;
	}
}

void channel_give(struct channel_page *page, uint32_t to, struct spin *s)
{
	if (s) {
		spin_sent(s);
		page->given_ns = s->sent_ns;
	}
	uint32_t old = atomic_exchange_explicit(&page->turn, to, memory_order_acq_rel);
	if (old & CHANNEL_SLEEPING)
		syscall(SYS_futex, &page->turn, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
