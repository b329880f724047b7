/*
 * proc.h: what the process asks of the system at start: a descriptor
 * limit that fits max_connections, and an unprivileged user.
 */
#ifndef MQLB_PROC_H
#define MQLB_PROC_H

/*
 * Each session takes two descriptors. Raise the soft limit as far as the
 * hard one allows and return how many of <want> sessions fit (all, or
 * fewer with a warning), so that accepting pauses at the limit instead of
 * running into EMFILE. <want> 0 is max_connections = auto: up to
 * CONFIG_MAX_CONNECTIONS_AUTO, as many as fit, quietly; only a number
 * the user wrote is worth a warning when it does not fit.
 */
unsigned proc_fit_fd_limit(unsigned want);

/* Become <user> (groups, gid, uid); MQ_ERR with the reason logged. */
int proc_drop_privileges(const char *user);

#endif /* MQLB_PROC_H */
