/*
 * test_ctlsock.c: the control socket is created 0600, refuses to
 * replace a live one, replaces a stale file, passes a same-user peer's
 * first bytes to its callback, and removes its file when stopped.
 * A client with nobody listening gets a message that says so.
 */
#include <criterion/criterion.h>
#include <ev.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/ctlsock.h"

struct ct_seen {
    int     calls;
    char    first[8];
};

static void
ct_conn(void *ctx, int fd, pid_t pid)
{
    struct ct_seen *seen = ctx;

    cr_assert_eq(pid, getpid());
    /* (The refused second start's probe connects and hangs up: EOF.) */
    if (read(fd, seen->first, 4) == 4) {
        seen->calls++;
    }
    close(fd);
}

Test(ctlsock, socket_is_private_and_serves_a_peer_of_ours)
{
    char dir[] = "/tmp/mqlb-ctl-XXXXXX", path[64], err[MQ_ERR_LEN];
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct ct_seen seen = { 0, "" };
    struct ctlsock *c, *again;
    struct stat st;
    int fd, i;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/mqlb.sock", dir);
    c = ctlsock_start(loop, path, ct_conn, &seen, err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600);
    again = ctlsock_start(loop, path, ct_conn, &seen, err);
    cr_assert_null(again);
    cr_assert_not_null(strstr(err, "another process is listening"), "%s",
                       err);
    fd = ctlsock_connect(path, 1000, err);
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert_eq(write(fd, "PING", 4), 4);
    for (i = 0; i < 100 && seen.calls == 0; i++) {
        ev_run(loop, EVRUN_ONCE);
    }
    cr_assert_eq(seen.calls, 1);
    cr_assert_eq(memcmp(seen.first, "PING", 4), 0);
    close(fd);
    ctlsock_stop(c);
    cr_assert_eq(access(path, F_OK), -1, "the file goes with the socket");
    ev_loop_destroy(loop);
    rmdir(dir);
}

Test(ctlsock, a_stale_file_is_replaced)
{
    char dir[] = "/tmp/mqlb-ctl-XXXXXX", path[64], err[MQ_ERR_LEN];
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct sockaddr_un sun;
    struct ctlsock *c;
    int fd;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/mqlb.sock", dir);
    /* a socket file nobody listens on any more */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    c = ctlsock_start(loop, path, ct_conn, NULL, err);
    cr_assert_not_null(c, "%s", err);
    ctlsock_stop(c);
    ev_loop_destroy(loop);
    rmdir(dir);
}

Test(ctlsock, connecting_to_nothing_says_so)
{
    char err[MQ_ERR_LEN];

    cr_assert_eq(ctlsock_connect("/tmp/mqlb-no-such.sock", 1000, err), -1);
    cr_assert_not_null(strstr(err, "nothing is listening on the control "
                              "socket /tmp/mqlb-no-such.sock"), "%s", err);
}

Test(ctlsock, same_user_or_root_only)
{
    cr_assert(ctlsock_peer_allowed(1000, 1000));
    cr_assert(ctlsock_peer_allowed(0, 1000));
    cr_assert(!ctlsock_peer_allowed(65534, 1000));
    cr_assert(!ctlsock_peer_allowed(1000, 0));
}
