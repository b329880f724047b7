/*
 * ctl.h: `mqlb -s reload|stop|status`, the client side. It reads from the
 * config file only how to reach the running instance ([global]
 * control_socket when it is set, else the admin listen address and
 * token), so that a file with errors can still be reported on: the
 * running instance reloads it and sends back its errors.
 */
#ifndef MQLB_CTL_H
#define MQLB_CTL_H

#include <stddef.h>

/* Exit codes of ctl_run, as `systemctl`/LSB scripts read them. */
#define CTL_EXIT_OK         0
#define CTL_EXIT_FAILED     1       /* the command ran and failed */
#define CTL_EXIT_USAGE      2
#define CTL_EXIT_NOT_RUNNING 3      /* no instance answers */

/* How to reach the instance; filled by ctl_read_target(). */
struct ctl_target {
    char    host[64];               /* numeric, loopback for a wildcard */
    char    port[8];
    char    token[256];             /* "" when none */
    char    sock[1024];             /* [global] control_socket: used
                                       instead of the admin port when
                                       set; "" when not */
    char    path[1024];             /* the config file, for messages */
};

/*
 * Pull [global] control_socket and [admin] listen and token out of the
 * INI text <text> (lenient: any other key or a broken line is ignored).
 * Returns 0, or -1 when the listen value cannot be read.
 */
int ctl_parse_target(const char *text, struct ctl_target *out);

/* Run <cmd> ("reload", "stop" or "status") against the instance of the
 * config file <path>. Prints what happened; returns a CTL_EXIT_ code. */
int ctl_run(const char *cmd, const char *path);

#endif /* MQLB_CTL_H */
