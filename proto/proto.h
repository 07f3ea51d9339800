/* SPDX-License-Identifier: MIT */
/* proto: ringfence's control plane. The schema is ringfence.proto; protoc-c's code for it is built
 * once into its own library (rfproto).
 *
 * Contracts of this folder:
 * - Framing (frame.c): a 4-byte little-endian length, then the message. A length above the maximum
 *   is refused before anything is allocated; a frame cut short ends the connection. A Unix-socket
 *   frame may carry one descriptor (SCM_RIGHTS): the server sends memfds that way, and drops any a
 *   client sends.
 * - The dispatcher (dispatch.c) turns one request's bytes into one response's bytes, for one
 *   connection; it never blocks except in a switch, never crashes on any input, and every failure
 *   is an Error in the response. Handles are the server's (handles.c), owned per connection.
 * - The server (server.c) serves many connections at once, a thread each; a connection that hangs
 *   up while its context runs gets that context kicked back and everything it owned released.
 * - The client (client.c) is a small C library over the same messages and framing.
 * - The switch channel (channel.c): the same messages through a page shared with the client (see
 *   ringfence.proto), for the switch loop. Nothing the server reads there is trusted: the length is
 *   bounded and the bytes copied out before they are decoded; every wait on it also ends when the
 *   other side's socket does. One request at a time per connection, on either path (conn.serial),
 *   but for kicks: a switch running on the channel can be kicked by its own connection's socket.
 */
#ifndef RINGFENCE_PROTO_H
#define RINGFENCE_PROTO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence.h"
#include "ringfence.pb-c.h"

#define PROTO_VERSION     1u
#define PROTO_MAX_MESSAGE (16u << 20)   /* one message, prefix excluded: a 16 MiB write fits */
#define PROTO_HEADROOM    4096u         /* what a reply adds around its bytes */
/* The default of server.memory_limit. KVM allocates its per-page tracking (about 1.8 MiB of kernel
 * memory per GiB of memslot with a shadow MMU) when a memory is created, not when it is touched: one
 * MemoryCreate of a few TiB would cost the host GiBs, so the bytes of live memories are capped. */
#define PROTO_MAX_MEMORY  (64ull << 30)
/* Connections one server serves at once (a thread each; server.max_connections, at most this); one
 * more is told so and closed. */
#define PROTO_MAX_CONNECTIONS 256

typedef Ringfence__V1__Request Request;
typedef Ringfence__V1__Response Response;

/* ---- frame.c ---- */
#define FRAME_FIRST_CHUNK (64u << 10)    /* a frame's buffer at first; it doubles as bytes arrive */
/* Reads one frame into *buf (malloc'd, caller frees; while it arrives, at most FRAME_FIRST_CHUNK or
 * twice what came). 0; 1 at a clean end of stream (no byte of a new frame); -EPROTO for a frame cut
 * short; -EMSGSIZE for a length above max (nothing read past the prefix: the stream cannot be
 * resynchronised); -errno. fd_out: receive one descriptor (or -1). */
int frame_read(int fd, uint32_t max, uint8_t **buf, uint32_t *len, int *fd_out);
/* Writes one frame; pass_fd >= 0 goes along with it (Unix sockets only). 0 or -errno. */
int frame_write(int fd, const uint8_t *buf, uint32_t len, int pass_fd);

/* Waiting awake for the other side's next frame. Waking a thread asleep in read(2) costs about as
 * much as the socket round trip itself, and a runtime's switch loop answers within microseconds, so
 * each side may poll for a while first: for up to twice the last wait it saw (the other side's
 * pace), if that was below the cap; never once a wait ran longer (the other side is busy, polling
 * would only take its CPU), until a short one again. Only with a second CPU (spin_default). */
struct spin {
	uint64_t last_ns;                    /* the last wait, from our frame out to theirs in */
	uint64_t sent_ns;                    /* when our last frame went out */
	uint64_t slept;                      /* channel_wait: waits that went to sleep on the word */
	uint64_t late;                       /* ... and woke by the check interval to find the turn theirs
	                                      * since half of it: what a lost wake-up looks like */
};
#define PROTO_SPIN_CAP_NS (200u * 1000u)
/* The channel's: polling its word costs no system call, so paces up to 1 ms (a slow host's switch)
 * are waited for awake rather than paid for with a wake-up; longer ones are never spun on. */
#define CHANNEL_SPIN_CAP_NS (1000u * 1000u)
uint64_t spin_default(uint64_t cap_ns);  /* cap_ns with 2 CPUs or more, else 0 */
void spin_sent(struct spin *s);          /* our frame is out: the wait starts */
uint64_t spin_now_ns(void);              /* CLOCK_MONOTONIC, the clock of the stamps */
/* Before reading fd: polls while the budget lasts (cap_ns 0: returns at once). */
void spin_wait(struct spin *s, int fd, uint64_t cap_ns);
void spin_arrived(struct spin *s);       /* their frame is in: learns the wait */
/* The same where the other side stamped when it answered (CLOCK_MONOTONIC ns): the wait learnt is
 * their pace, not what our sleep added to it (a stamp outside the wait is ignored). */
void spin_arrived_at(struct spin *s, uint64_t their_ns);
/* spin_wait's budget, for any sign the other side has answered: polls ready(arg) meanwhile, and the
 * clock once every per_clock polls (a VM's clock can cost microseconds and a lock in its monitor:
 * polling a word many times per read keeps the spin off the other CPU's back). */
void spin_until(struct spin *s, uint64_t cap_ns, bool (*ready)(void *), void *arg, unsigned per_clock);

/* ---- channel.c: the switch channel's shared page and its turn ---- */
#define CHANNEL_SIZE (64u << 10)
enum {
	CHANNEL_CLIENT = 1,                  /* the client's turn: a reply is there (or nothing yet) */
	CHANNEL_SERVER = 2,                  /* the server's: a request is there */
	CHANNEL_CLOSED = 3,                  /* the server has closed it */
	CHANNEL_SLEEPING = 1u << 31,         /* the waiting side sleeps on the word: wake it */
};
struct channel_page {
	_Atomic uint32_t turn;
	uint32_t len;                        /* bytes of the message in data */
	uint64_t given_ns;                   /* when the turn was last handed over (CLOCK_MONOTONIC), or 0 */
	uint8_t pad[48];                     /* the message starts on its own cache line */
	uint8_t data[];
};
#define CHANNEL_MAX_MESSAGE (CHANNEL_SIZE - 64u)
/* A new channel: a memfd of CHANNEL_SIZE mapped shared, the client's turn. 0 or -errno. */
int channel_create(int *fd, struct channel_page **page);
/* Maps a channel the server sent. 0 or -errno (-EINVAL: not a channel's size). */
int channel_map(int fd, struct channel_page **page);
void channel_unmap(struct channel_page *page);
/* Waits for the turn to be `want`: awake while spin allows, then asleep on the word, asking gone(arg)
 * every CHANNEL_CHECK_MS whether to give up; learns the other side's pace (spin_arrived_at). 0;
 * -ECONNRESET once it is CHANNEL_CLOSED or gone. */
#define CHANNEL_CHECK_MS 100
int channel_wait(struct channel_page *page, uint32_t want, struct spin *s, uint64_t cap_ns,
                 bool (*gone)(void *), void *arg);
/* Hands the turn to `to`, stamped, waking the other side if it sleeps; our wait starts (spin_sent;
 * s NULL: no stamp, no wait). */
void channel_give(struct channel_page *page, uint32_t to, struct spin *s);

/* ---- handles.c: the server's objects, numbered, each owned by one connection ---- */
enum handle_kind { H_MEMORY = 1, H_AS, H_CONTEXT };
struct conn;
struct handles;
struct handles *handles_new(void);
void handles_free(struct handles *h);
/* A new number for obj (never 0, never reused). 0 if out of memory. */
uint64_t handles_add(struct handles *h, enum handle_kind kind, void *obj, const struct conn *owner);
/* The object if id is a live handle of this kind owned by owner (owner NULL: any owner). */
void *handles_get(struct handles *h, uint64_t id, enum handle_kind kind, const struct conn *owner);
void handles_del(struct handles *h, uint64_t id);
/* Calls fn(kind, obj, arg) on each handle owned by owner, contexts first, then address spaces, then
 * memories (the order destruction needs), and forgets them. */
void handles_release(struct handles *h, const struct conn *owner, void (*fn)(enum handle_kind, void *, void *),
                     void *arg);

/* ---- server.c / dispatch.c ---- */
struct server {
	rf_platform *p;
	struct rf_platform_info info;
	pthread_mutex_t lock;               /* the handle table and each connection's `switching` */
	struct handles *handles;
	atomic_bool shut;
	atomic_uint connections;
	atomic_ullong requests;
	atomic_ullong channel_requests;     /* of those, by a switch channel */
	int wake;                           /* eventfd: connections came or went, or shutdown */
	struct conn *conns;                 /* every live connection (under lock) */
	bool kick_before_switch;            /* fuzzing: every switch returns at once */
	_Atomic uint64_t spin_cap_ns;       /* the cap of each connection's spin_wait (server_init: spin_default) */
	_Atomic uint64_t chan_spin_cap_ns;  /* the same for a channel's waits (CHANNEL_SPIN_CAP_NS) */
	unsigned max_connections;           /* served at once (server_init: PROTO_MAX_CONNECTIONS) */
	uint64_t memory_limit;              /* bytes all live memories may total (server_init: PROTO_MAX_MEMORY) */
	uint64_t memory_used;               /* under lock: bytes of the live memories */
	void (*test_hook)(void);            /* called once the filter is in place (tests only) */
};

struct conn {
	struct server *srv;
	int rfd, wfd;
	bool unix_socket;                   /* descriptors can be passed */
	rf_context *switching;              /* under srv->lock: the context in rf_switch, or NULL */
	atomic_bool hung_up;
	struct spin spin;                   /* waiting for the next request */
	pthread_mutex_t serial;             /* dispatch: one request at a time (kicks excepted) */
	struct channel_page *chan;          /* the switch channel, or NULL */
	int chan_fd;
	pthread_t chan_thread;
	atomic_bool chan_stop;              /* the connection is ending: the channel's thread too */
	struct spin chan_spin;
	struct conn *next;                  /* the server's list (under srv->lock) */
};

/* One request in, one response out (*out malloc'd, caller frees; *pass_fd a descriptor to send
 * with it, or -1; pass_fd NULL: none can go, as on the channel). A reply above max_reply bytes is a
 * TOO_LARGE Error instead. Returns the response length (0: out of memory, nothing to say). Never
 * fails: bad input is an Error response. */
uint32_t dispatch(struct conn *c, const uint8_t *in, uint32_t len, uint8_t **out, int *pass_fd,
                  uint32_t max_reply);
/* An Error response with id 0 packed into buf (at most cap bytes): its length, 0 if it did not fit. */
uint32_t pack_error(uint8_t *buf, size_t cap, Ringfence__V1__ErrorCode code, int err, const char *message);
/* Starts serving c's channel (dispatch's ChannelOpen), and stops it (the connection's end). */
int channel_serve(struct conn *c);
void channel_stop(struct conn *c);
/* Releases everything c owns (after its last request). */
void dispatch_release(struct conn *c);

/* Under srv->lock: marks c as hung up and kicks back the switch it runs, if any (op_switch, which
 * sets `switching` under the same lock, kicks at once when it finds the mark). The watcher does it
 * on a hang-up, channel_stop at the connection's end. */
void conn_take_back(struct conn *c);
int server_init(struct server *s, rf_platform *p);
void server_destroy(struct server *s);
/* Serves a listening socket until shutdown and every connection has closed. 0 or -errno. */
int server_listen(struct server *s, int listen_fd);
/* Serves one connection (an inherited socket, or a pipe pair) until it closes. */
int server_one(struct server *s, int rfd, int wfd);

/* ---- client.c: a small C client ---- */
struct rfc {
	int fd;
	uint64_t next_id;
	uint32_t max;                        /* the server's maximum message size */
	char error[256];                     /* the last remote Error's message */
	int code;                            /* and its ErrorCode */
	struct spin spin;                    /* waiting for a response */
	_Atomic uint64_t spin_cap_ns;        /* rfc_attach/rfc_connect: spin_default(); 0: always sleep */
	_Atomic uint64_t chan_spin_cap_ns;   /* the same on the channel (CHANNEL_SPIN_CAP_NS) */
	struct channel_page *chan;           /* rfc_channel_open: requests go this way, or NULL */
};
int rfc_connect(struct rfc *c, const char *socket_path);
void rfc_attach(struct rfc *c, int fd);   /* an already-connected socket */
void rfc_close(struct rfc *c);
/* Opens the switch channel (needs a Unix socket): from then on rfc_call sends every request that
 * can go that way (all but MemoryCreate, ChannelOpen, and reads or writes larger than the channel)
 * through it, and the socket only watches the server's end. 0 or -errno. */
int rfc_channel_open(struct rfc *c);
/* Sends req (its id is set here) and waits for the response: 0 and *resp (free it with
 * rfc_free), or -errno for a transport failure. A remote Error is returned in *resp too. */
int rfc_call(struct rfc *c, Request *req, Response **resp, int *fd_out);
void rfc_free(Response *resp);
/* Convenience calls: 0 or a negative errno (the remote errno_value, or -EPROTO; c->error says). */
int rfc_hello(struct rfc *c, Ringfence__V1__HelloReply **reply);   /* free with rfc_free_hello */
void rfc_free_hello(Ringfence__V1__HelloReply *reply);
int rfc_memory_create(struct rfc *c, uint64_t size, uint64_t *handle, int *fd);
int rfc_memory_write(struct rfc *c, uint64_t memory, uint64_t offset, const void *data, size_t len);
int rfc_memory_read(struct rfc *c, uint64_t memory, uint64_t offset, void *data, size_t len);
int rfc_as_create(struct rfc *c, uint64_t *handle);
int rfc_as_map(struct rfc *c, uint64_t as, uint64_t va, uint64_t len, uint64_t memory, uint64_t offset,
               unsigned prot);
int rfc_as_unmap(struct rfc *c, uint64_t as, uint64_t va, uint64_t len);
int rfc_context_create(struct rfc *c, uint64_t *handle);
int rfc_destroy(struct rfc *c, enum handle_kind kind, uint64_t handle);
int rfc_get_regs(struct rfc *c, uint64_t context, struct rf_regs *regs);
int rfc_set_regs(struct rfc *c, uint64_t context, const struct rf_regs *regs);
int rfc_switch(struct rfc *c, uint64_t context, uint64_t as, struct rf_event *ev, struct rf_regs *regs);
int rfc_kick(struct rfc *c, uint64_t context);
int rfc_stats(struct rfc *c, Ringfence__V1__StatsReply **reply);   /* free with rfc_free_stats */
void rfc_free_stats(Ringfence__V1__StatsReply *reply);
int rfc_shutdown(struct rfc *c);

#endif
