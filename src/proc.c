/*
 * proc.c: the descriptor limit and the privilege drop, done once at
 * start by the core.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/log.h"
#include "mqlb/proc.h"

#define PROC_FD_RESERVE     64      /* listeners, checks, admin, logs */

int
proc_drop_privileges(const char *user)
{
    struct passwd *pw;

    pw = getpwnam(user);
    if (pw == NULL) {
        log_error("user %s: no such user", user);
        return MQ_ERR;
    }
    if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 ||
        setuid(pw->pw_uid) == -1) {
        log_error("dropping privileges to %s failed: %s", user,
                  strerror(errno));
        return MQ_ERR;
    }
    log_notice("running as user %s (uid %u)", user, (unsigned)pw->pw_uid);
    return MQ_OK;
}

/*
 * Descriptors that are not two per session: the reserve (admin, logs,
 * the loops), every worker's listener of every listen address, and per
 * backend a check socket and a NATS watch.
 */
static rlim_t
proc_fixed_fds(const struct config *cf)
{
    rlim_t n = PROC_FD_RESERVE;
    size_t i;

    for (i = 0; i < cf->npools; i++) {
        n += (rlim_t)cf->pools[i].nlistens * (cf->workers > 0 ? cf->workers
                                                               : 1);
        n += (rlim_t)cf->pools[i].nbackends * 2;
    }
    return n;
}

/* As haproxy does: admit fewer sessions rather than run out. */
unsigned
proc_fit_fd_limit(const struct config *cf, long *npipes)
{
    unsigned want = cf->max_connections;
    bool chosen = want != 0;
    rlim_t fixed = proc_fixed_fds(cf), need, ask;
    struct rlimit rl;
    unsigned fit;

    *npipes = LONG_MAX;
    if (!chosen) {
        want = CONFIG_MAX_CONNECTIONS_AUTO;
    }
    need = (rlim_t)want * 2 + fixed;
    ask = need + (rlim_t)want * 2;      /* and a pipe a session */

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        return want;
    }
    if (rl.rlim_cur < ask && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < ask ? rl.rlim_max : ask;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need) {
        *npipes = (long)((rl.rlim_cur - need) / 2);
        return want;
    }
    fit = rl.rlim_cur > fixed + 2 ? (unsigned)((rl.rlim_cur - fixed) / 2) : 1;
    *npipes = 0;
    if (chosen) {
        log_warn("max_connections = %u needs %llu descriptors but the "
                 "limit is %llu: admitting at most %u sessions", want,
                 (unsigned long long)need, (unsigned long long)rl.rlim_cur,
                 fit);
    } else {
        log_notice("max_connections = auto: %u sessions fit the "
                   "descriptor limit of %llu", fit,
                   (unsigned long long)rl.rlim_cur);
    }
    return fit;
}
