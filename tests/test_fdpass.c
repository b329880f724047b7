/*
 * test_fdpass.c: messages with descriptors over a socketpair: the fds
 * arrive usable and in order, a long message arrives whole, a peer that
 * hangs up is ECONNRESET, and more fds than asked for are refused and
 * closed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/fdpass.h"

Test(fdpass, two_descriptors_arrive_usable_and_in_order)
{
    int sp[2], a[2], b[2], fds[2] = { -1, -1 }, got[4];
    size_t ngot = 0;
    char msg[16], c;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    fds[0] = a[1];
    fds[1] = b[1];
    cr_assert_eq(fdpass_send(sp[0], "hello, world!!!", 16, fds, 2), MQ_OK);
    cr_assert_eq(fdpass_recv(sp[1], msg, 16, got, 4, &ngot), MQ_OK);
    cr_assert_str_eq(msg, "hello, world!!!");
    cr_assert_eq(ngot, 2);
    cr_assert(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
    cr_assert_eq(write(got[0], "A", 1), 1);
    cr_assert_eq(write(got[1], "B", 1), 1);
    cr_assert_eq(read(a[0], &c, 1), 1);
    cr_assert_eq(c, 'A');
    cr_assert_eq(read(b[0], &c, 1), 1);
    cr_assert_eq(c, 'B');
    close(got[0]);
    close(got[1]);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    close(sp[0]);
    close(sp[1]);
}

/* A message larger than the socket buffer, read in two parts. */
static void *
fdpass_writer(void *arg)
{
    static char big[1 << 20];
    int *sp = arg, fd = 0;

    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = 'z';
    cr_assert_eq(fdpass_send(sp[0], big, sizeof(big), &fd, 1), MQ_OK);
    return NULL;
}

Test(fdpass, a_long_message_arrives_whole_with_its_fd)
{
    static char in[1 << 20];
    pthread_t t;
    int sp[2], got[2];
    size_t ngot = 0;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    pthread_create(&t, NULL, fdpass_writer, sp);
    cr_assert_eq(fdpass_recv(sp[1], in, 12, got, 2, &ngot), MQ_OK);
    cr_assert_eq(ngot, 1);
    cr_assert_eq(fdpass_recv(sp[1], in + 12, sizeof(in) - 12, got, 2,
                             &ngot), MQ_OK);
    cr_assert_eq(ngot, 1, "the fd comes once");
    cr_assert_eq(in[sizeof(in) - 1], 'z');
    cr_assert_eq(in[0], 'x');
    pthread_join(t, NULL);
    close(got[0]);
    close(sp[0]);
    close(sp[1]);
}

Test(fdpass, a_peer_that_hangs_up_is_connreset)
{
    int sp[2], got[1];
    size_t ngot = 0;
    char buf[8];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    cr_assert_eq(write(sp[0], "abc", 3), 3);
    close(sp[0]);
    cr_assert_eq(fdpass_recv(sp[1], buf, 8, got, 1, &ngot), MQ_ERR);
    cr_assert_eq(errno, ECONNRESET);
    close(sp[1]);
}

Test(fdpass, more_descriptors_than_expected_are_refused_and_closed)
{
    int sp[2], p[2], fds[3], got[1] = { -1 };
    size_t ngot = 0;
    char buf[4];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    cr_assert_eq(pipe(p), 0);
    fds[0] = fds[1] = fds[2] = p[1];
    cr_assert_eq(fdpass_send(sp[0], "abcd", 4, fds, 3), MQ_OK);
    close(p[1]);
    cr_assert_eq(fdpass_recv(sp[1], buf, 4, got, 1, &ngot), MQ_ERR);
    cr_assert_eq(errno, EPROTO);
    cr_assert_eq(ngot, 1);
    close(got[0]);
    /* every write end is closed now: the reader sees EOF */
    cr_assert_eq(read(p[0], buf, 1), 0);
    close(p[0]);
    close(sp[0]);
    close(sp[1]);
}

Test(fdpass, frames_sent_together_arrive_with_all_their_descriptors)
{
    int sp[2], p[2], fds[6], got[FDPASS_MAX_FDS];
    char buf[64];
    size_t ngot = 0, i;
    long n, total = 0;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    cr_assert_eq(pipe(p), 0);
    for (i = 0; i < 6; i++) {
        fds[i] = i % 2 == 0 ? p[0] : p[1];
    }
    /* three "frames" of 10 bytes, two descriptors each, in one message */
    cr_assert_eq(fdpass_send(sp[0], "aaaaaaaaaabbbbbbbbbbcccccccccc", 30, fds,
                             6), MQ_OK);
    while (total < 30) {
        n = fdpass_recv_some(sp[1], buf + total, sizeof(buf) - (size_t)total,
                             got, FDPASS_MAX_FDS, &ngot);
        cr_assert_gt(n, 0);
        total += n;
    }
    cr_assert_eq(memcmp(buf, "aaaaaaaaaabbbbbbbbbbcccccccccc", 30), 0);
    cr_assert_eq(ngot, 6, "every descriptor, in order");
    cr_assert_eq(write(got[1], "z", 1), 1);
    cr_assert_eq(read(got[4], buf, 1), 1);
    cr_assert_eq(buf[0], 'z');
    for (i = 0; i < ngot; i++) {
        close(got[i]);
    }
    close(sp[1]);
    cr_assert_eq(fdpass_recv_some(sp[0], buf, sizeof(buf), got,
                                  FDPASS_MAX_FDS, &ngot), 0,
                 "the peer closed: 0");
    close(sp[0]);
    close(p[0]);
    close(p[1]);
}
