/*
 * takeover.h: upgrades without a disconnect. A running mqlb (the old
 * process) hands its listening sockets, its established plain-TCP
 * sessions and the runtime state of its backends to a successor started
 * with --takeover (the new process), over the control socket; the
 * messages are handover.h's, the descriptors travel with fdpass.h.
 *
 * Old: takeover_serve() runs on the main loop when a peer of ours
 * connects and asks (ctlserve.c reads its HELLO); the workers freeze their movable sessions at a safe point
 * (between events: no write half done), everything is sent, and only
 * when the successor has adopted it all and acknowledged does the old
 * process let go and retire. Any failure before that thaws every
 * session and resumes accepting: the old process serves as before.
 *
 * New: core_init() calls takeover_receive() before it binds anything,
 * builds its generation and workers with what came, adopts the sessions
 * (takeover_adopt), and commits (takeover_commit) before its workers
 * start.
 */
#ifndef MQLB_TAKEOVER_H
#define MQLB_TAKEOVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct core;
struct gen;
struct listen_set;
struct takeover_in;

/* Environment knob for tests: the successor kills itself (SIGKILL)
 * after receiving this many sessions, before it commits. */
#define TAKEOVER_TEST_DIE_AFTER "MQLB_TEST_TAKEOVER_DIE_AFTER"

/* Seconds the old process waits for the successor to adopt and ack. */
#define TAKEOVER_ACK_TIMEOUT_MS 30000

/* Old side, on the main loop: the peer <pid> on the control connection
 * <fd> sent HELLO (read by ctlserve.c); hand everything over, or refuse
 * and keep serving. <fd> is closed before this returns. */
void takeover_serve(struct core *c, int fd, pid_t pid);

/*
 * New side: connect to <path>, ask for a takeover and receive
 * everything up to END. NULL with <err> (the running instance's refusal
 * in its words, or why it could not be reached).
 */
struct takeover_in *takeover_receive(const char *path, char *err);

/*
 * The listening sockets received, as a listen_set of <nworkers> workers
 * for listen_set_build()'s <old> (the old process's worker i maps to
 * worker i % nworkers). Sockets not placed (more old workers than new)
 * stay with <in>. MQ_ERR on no memory.
 */
int takeover_listen_set(struct takeover_in *in, unsigned nworkers,
                        struct listen_set *out);

/*
 * Mark the received sockets that <built> now uses as taken, so that
 * takeover_in_free() does not close them.
 */
void takeover_listeners_taken(struct takeover_in *in,
                              const struct listen_set *built);

/* Apply the backends' runtime state and the pools' counters to <c>'s
 * generation; backends added at runtime there are added here (after
 * members_use). */
void takeover_apply_state(struct takeover_in *in, struct core *c);

/* The next session id the old process would have used. */
uint64_t takeover_next_id(const struct takeover_in *in);

/* Adopt every received session into <c>'s workers (not yet started);
 * sessions that cannot be adopted are declined (the old one keeps them). */
void takeover_adopt(struct takeover_in *in, struct core *c);

/* Send the acknowledgement and wait for the commit. MQ_ERR with <err>:
 * the old process keeps everything, and this one must not start. */
int takeover_commit(struct takeover_in *in, char *err);

/* Close what was not adopted and free <in>. */
void takeover_in_free(struct takeover_in *in);

#endif /* MQLB_TAKEOVER_H */
