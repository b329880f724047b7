/*
 * fdpass.c: sendmsg/recvmsg with SCM_RIGHTS, looping over short reads
 * and writes. The descriptors ride on the first byte of a message; a
 * reader collects them from whichever recvmsg returns them.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/fdpass.h"

int
fdpass_send(int sock, const void *buf, size_t len, const int *fds,
            size_t nfds)
{
    union {
        struct cmsghdr  h;
        char            space[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
    } ctl;
    const char *p = buf;
    struct msghdr msg;
    struct cmsghdr *cm;
    struct iovec iov;
    size_t off = 0;
    ssize_t n;

    if (nfds > FDPASS_MAX_FDS || (len == 0 && nfds > 0)) {
        errno = EINVAL;
        return MQ_ERR;
    }
    while (off < len) {
        memset(&msg, 0, sizeof(msg));
        iov.iov_base = (void *)(p + off);
        iov.iov_len = len - off;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (off == 0 && nfds > 0) {
            memset(&ctl, 0, sizeof(ctl));
            msg.msg_control = ctl.space;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
        }
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            return MQ_ERR;
        }
        off += (size_t)n;
    }
    return MQ_OK;
}

/* Take the descriptors of every SCM_RIGHTS block in <msg>. */
static int
fdpass_collect(struct msghdr *msg, int *fds, size_t maxfds, size_t *nfds)
{
    struct cmsghdr *cm;
    size_t i, k;
    int fd, rc = MQ_OK;

    for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < k; i++) {
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*nfds < maxfds) {
                fds[(*nfds)++] = fd;
            } else {
                close(fd);
                rc = MQ_ERR;
            }
        }
    }
    return rc;
}

int
fdpass_recv(int sock, void *buf, size_t len, int *fds, size_t maxfds,
            size_t *nfds)
{
    union {
        struct cmsghdr  h;
        char            space[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
    } ctl;
    char *p = buf;
    struct msghdr msg;
    struct iovec iov;
    size_t off = 0;
    ssize_t n;
    int over = 0;

    while (off < len) {
        memset(&msg, 0, sizeof(msg));
        iov.iov_base = p + off;
        iov.iov_len = len - off;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.space;
        msg.msg_controllen = sizeof(ctl.space);
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            return MQ_ERR;
        }
        if (fdpass_collect(&msg, fds, maxfds, nfds) != MQ_OK ||
            (msg.msg_flags & MSG_CTRUNC)) {
            over = 1;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return MQ_ERR;
        }
        off += (size_t)n;
    }
    if (over) {
        errno = EPROTO;
        return MQ_ERR;
    }
    return MQ_OK;
}

long
fdpass_recv_some(int sock, void *buf, size_t len, int *fds, size_t maxfds,
                 size_t *nfds)
{
    union {
        struct cmsghdr  h;
        char            space[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
    } ctl;
    struct msghdr msg;
    struct iovec iov;
    ssize_t n;

    for (;;) {
        memset(&msg, 0, sizeof(msg));
        iov.iov_base = buf;
        iov.iov_len = len;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl.space;
        msg.msg_controllen = sizeof(ctl.space);
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            return -1;
        }
        if (fdpass_collect(&msg, fds, maxfds, nfds) != MQ_OK ||
            (msg.msg_flags & MSG_CTRUNC)) {
            errno = EPROTO;
            return -1;
        }
        return (long)n;
    }
}
