/*
 * proc.c: the descriptor limit and the privilege drop, done once at
 * start by the core.
 */
#include <errno.h>
#include <grp.h>
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

/* As haproxy does: admit fewer sessions rather than run out. */
unsigned
proc_fit_fd_limit(unsigned want)
{
    bool chosen = want != 0;
    struct rlimit rl;
    rlim_t need;
    unsigned fit;

    if (!chosen) {
        want = CONFIG_MAX_CONNECTIONS_AUTO;
    }
    need = (rlim_t)want * 2 + PROC_FD_RESERVE;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        return want;
    }
    if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need) {
        return want;
    }
    fit = rl.rlim_cur > PROC_FD_RESERVE * 2
          ? (unsigned)((rl.rlim_cur - PROC_FD_RESERVE) / 2) : 1;
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
