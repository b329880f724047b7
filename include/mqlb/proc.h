/*
 * proc.h: what the process asks of the system at start: a descriptor
 * limit that fits max_connections, and an unprivileged user.
 */
#ifndef MQLB_PROC_H
#define MQLB_PROC_H

struct config;

/*
 * Each session takes two descriptors; listeners (one per worker and
 * address), checks and NATS watches (one each per backend) and a reserve
 * take the rest. Raise the soft limit as far as the hard one allows (with
 * room for a splice pipe a session) and return how many of <cf>'s
 * max_connections sessions fit (all, or fewer with a warning), so that
 * accepting pauses at the limit instead of running into EMFILE.
 * max_connections = auto (0): up to CONFIG_MAX_CONNECTIONS_AUTO, as many
 * as fit, quietly. <*npipes> is what is left for splice pipes (two
 * descriptors each): bulk sessions copy past it.
 */
unsigned proc_fit_fd_limit(const struct config *cf, long *npipes);

/* Become <user> (groups, gid, uid); MQ_ERR with the reason logged. */
int proc_drop_privileges(const char *user);

#endif /* MQLB_PROC_H */
