/*
 * privsep.h: the privileged helper that lets a reload work after `user =`
 * dropped root. mqlb forks it while still root and single-threaded; the
 * helper keeps uid 0 with two capabilities only (CAP_NET_BIND_SERVICE,
 * CAP_DAC_READ_SEARCH) and answers two requests over a socketpair:
 *
 *   read   the config file given at start (its path is fixed then), so a
 *          root-only (0600) file can be read again at reload;
 *   listen a TCP listening socket on an address, with mqlb's socket
 *          options, passed back (SCM_RIGHTS), so a reload may listen on a
 *          new port below 1024.
 *
 * It parses nothing from the network, takes no other request, and exits
 * when mqlb closes its end (or dies: PR_SET_PDEATHSIG).
 */
#ifndef MQLB_PRIVSEP_H
#define MQLB_PRIVSEP_H

#include <stddef.h>
#include <sys/types.h>

#include "mqlb/config.h"

struct privsep;

/*
 * Fork the helper for config file <path> (kept). Call as root, before any
 * thread starts. NULL with <err> (MQ_ERR_LEN) filled on failure.
 */
struct privsep *privsep_start(const char *path, char *err);

/* The helper's process id (tests, logs). */
pid_t privsep_pid(const struct privsep *ps);

/*
 * The whole config file as the helper read it: a NUL-terminated copy the
 * caller frees, its length in <*len>. NULL with <err> filled (the open or
 * read error, "cannot open: Permission denied" style) on failure.
 */
char *privsep_read_config(struct privsep *ps, size_t *len, char *err);

/*
 * A listening socket on <a> (SO_REUSEADDR, SO_REUSEPORT, TCP_NODELAY,
 * IPV6_V6ONLY for IPv6, non-blocking, close-on-exec), made by the helper.
 * The fd, or -1 with <err> filled.
 */
int privsep_listen(struct privsep *ps, const struct config_addr *a,
                   int backlog, char *err);

/* Close the channel and reap the helper. NULL is a no-op. */
void privsep_stop(struct privsep *ps);

#endif /* MQLB_PRIVSEP_H */
