/*
 * test_ctlsock.c: the control socket is created 0600, refuses to
 * replace a live one, replaces a stale file, passes a same-user peer's
 * first bytes to its callback, and removes its file when stopped.
 * A client with nobody listening gets a message that says so. Frames
 * without descriptors go across whole; a hang-up, descriptors, a bad
 * header and a timeout are each told apart.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/ctlsock.h"
#include "mqlb/fdpass.h"
#include "mqlb/handover.h"

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

Test(ctlsock, frames_go_across_whole_and_errors_are_told_apart)
{
    struct handover_command m = { HANDOVER_CMD_STATUS }, m2;
    struct handover_header h;
    struct handover_error e;
    struct handover_buf b;
    uint8_t *payload;
    int sv[2], fd;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    handover_buf_init(&b);
    cr_assert_eq(handover_encode_command(&b, &m), MQ_OK);
    cr_assert_eq(ctlsock_send_frame(sv[0], &b), MQ_OK);
    cr_assert_eq(b.len, 0);         /* emptied for the next one */
    cr_assert_eq(ctlsock_read_frame(sv[1], &h, &payload), MQ_OK);
    cr_assert_eq(h.type, HANDOVER_COMMAND);
    cr_assert_eq(handover_decode_command(payload, h.length, &m2), MQ_OK);
    cr_assert_eq(m2.cmd, HANDOVER_CMD_STATUS);
    free(payload);

    ctlsock_send_error(sv[1], "unknown command 9");
    cr_assert_eq(ctlsock_read_frame(sv[0], &h, &payload), MQ_OK);
    cr_assert_eq(h.type, HANDOVER_ERROR);
    cr_assert_eq(handover_decode_error(payload, h.length, &e), MQ_OK);
    cr_assert_str_eq(e.text, "unknown command 9");
    free(payload);

    /* a frame with a descriptor: refused, the descriptor closed */
    cr_assert_eq(handover_encode_command(&b, &m), MQ_OK);
    fd = sv[0];
    cr_assert_eq(fdpass_send(sv[0], b.data, b.len, &fd, 1), MQ_OK);
    handover_buf_reset(&b);
    cr_assert_eq(ctlsock_read_frame(sv[1], &h, &payload), MQ_ERR);
    cr_assert_eq(errno, EPROTO);
    cr_assert_null(payload);
    cr_assert_str_eq(ctlsock_frame_error(MQ_ERR), "unexpected descriptors");
    /* (the rest of that frame is still in the socket: start afresh) */
    close(sv[0]);
    close(sv[1]);

    /* not a frame at all, then a silent peer, then a hang-up */
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(write(sv[0], "GET / HTTP/1.1\r\n", 16), 16);
    cr_assert_eq(ctlsock_read_frame(sv[1], &h, &payload), HANDOVER_EMAGIC);
    cr_assert_str_eq(ctlsock_frame_error(HANDOVER_EMAGIC),
                     "not a handover frame");
    cr_assert_eq(ctlsock_set_timeouts(sv[1], 50), MQ_OK);
    cr_assert_eq(ctlsock_read_frame(sv[1], &h, &payload), MQ_ERR);
    cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "%s",
              strerror(errno));
    close(sv[0]);
    cr_assert_eq(ctlsock_read_frame(sv[1], &h, &payload), MQ_ERR);
    cr_assert_eq(errno, ECONNRESET);
    cr_assert_str_eq(ctlsock_frame_error(MQ_ERR), "hung up");
    close(sv[1]);
    handover_buf_deinit(&b);
}
