/*
 * privsep.c: the privileged helper (see privsep.h). One request and its
 * answer at a time over a SOCK_SEQPACKET socketpair, so every message
 * keeps its bounds and a listening socket travels with its answer:
 *
 *   mqlb (user)                         helper (uid 0, two capabilities)
 *   {LISTEN, backlog, addr}    ---->    net_listen()
 *                              <----    {status, err} + SCM_RIGHTS fd
 *   {READ}                     ---->    open(path), read
 *                              <----    {0, more=1} + up to 32 KiB, ...
 *                              <----    {0, more=0}  (or {-1, err})
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/net.h"
#include "mqlb/privsep.h"

#define PRIVSEP_CHUNK       (32 * 1024)     /* file bytes a message */
#define PRIVSEP_FILE_MAX    (16 * 1024 * 1024)  /* a config is smaller */

enum privsep_op {
    PRIVSEP_READ = 1,
    PRIVSEP_LISTEN,
};

/* What mqlb asks. */
struct privsep_req {
    uint32_t            op;             /* enum privsep_op */
    int32_t             backlog;        /* LISTEN */
    struct config_addr  addr;           /* LISTEN */
};

/* What the helper answers, before any file bytes. */
struct privsep_rep {
    int32_t             status;         /* 0 or -1 */
    uint32_t            more;           /* READ: more messages follow */
    char                err[MQ_ERR_LEN];    /* when status is -1 */
};

struct privsep {
    int                 fd;             /* our end of the socketpair */
    pid_t               pid;            /* the helper */
    char                path[4096];     /* the config file */
};

/* ---- the helper's side ------------------------------------------------ */

/* Send <rep> (with <data>, and <fd> as SCM_RIGHTS when >= 0). */
static int
privsep_send(int sock, const struct privsep_rep *rep, const void *data,
             size_t len, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov[2];
    struct msghdr msg;
    struct cmsghdr *cm;
    ssize_t n;

    memset(&msg, 0, sizeof(msg));
    iov[0].iov_base = (void *)rep;
    iov[0].iov_len = sizeof(*rep);
    iov[1].iov_base = (void *)data;
    iov[1].iov_len = len;
    msg.msg_iov = iov;
    msg.msg_iovlen = len > 0 ? 2 : 1;
    if (fd >= 0) {
        memset(cbuf, 0, sizeof(cbuf));
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    return n == -1 ? MQ_ERR : MQ_OK;
}

/* Answer a failure: "<what><why>". */
static void
privsep_fail(int sock, const char *what, const char *why)
{
    struct privsep_rep rep;

    memset(&rep, 0, sizeof(rep));
    rep.status = -1;
    snprintf(rep.err, sizeof(rep.err), "%s%s", what, why);
    privsep_send(sock, &rep, NULL, 0, -1);
}

static void
privsep_serve_read(int sock, const char *path)
{
    struct privsep_rep rep;
    char buf[PRIVSEP_CHUNK];
    size_t total = 0;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        privsep_fail(sock, "cannot open: ", strerror(errno));
        return;
    }
    memset(&rep, 0, sizeof(rep));
    rep.more = 1;
    for (;;) {
        n = read(fd, buf, sizeof(buf));
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            privsep_fail(sock, "cannot read: ", strerror(errno));
            break;
        }
        total += (size_t)n;
        if (total > PRIVSEP_FILE_MAX) {
            privsep_fail(sock, "larger than 16 MiB", "");
            break;
        }
        if (n == 0) {
            rep.more = 0;
            privsep_send(sock, &rep, NULL, 0, -1);
            break;
        }
        if (privsep_send(sock, &rep, buf, (size_t)n, -1) != MQ_OK) {
            break;
        }
    }
    close(fd);
}

static void
privsep_serve_listen(int sock, struct privsep_req *req)
{
    struct privsep_rep rep;
    int fd;

    memset(&rep, 0, sizeof(rep));
    req->addr.text[sizeof(req->addr.text) - 1] = '\0';  /* for messages */
    if ((req->addr.ss.ss_family != AF_INET &&
         req->addr.ss.ss_family != AF_INET6) ||
        req->addr.len > sizeof(req->addr.ss)) {
        privsep_fail(sock, "not a TCP address", "");
        return;
    }
    fd = net_listen(&req->addr, req->backlog, rep.err);
    if (fd == -1) {
        rep.status = -1;
        privsep_send(sock, &rep, NULL, 0, -1);
        return;
    }
    privsep_send(sock, &rep, NULL, 0, fd);
    close(fd);
}

/*
 * Keep uid 0 but only what the two requests need: binding ports below
 * 1024, and reading a file its owner alone may read.
 */
static void
privsep_limit(void)
{
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    uint32_t keep = (1u << CAP_NET_BIND_SERVICE) |
                    (1u << CAP_DAC_READ_SEARCH);

    memset(&hdr, 0, sizeof(hdr));
    memset(data, 0, sizeof(data));
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    /* Of those, what we have (a unit's CapabilityBoundingSet may have
     * left out CAP_DAC_READ_SEARCH: root still reads its own files). */
    if (syscall(SYS_capget, &hdr, data) == 0) {
        keep &= data[0].permitted;
    }
    memset(data, 0, sizeof(data));
    data[0].effective = keep;
    data[0].permitted = keep;
    (void)syscall(SYS_capset, &hdr, data);
    (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* The helper's life: one request after another until mqlb goes away. */
static void
privsep_main(int sock, const char *path)
{
    struct privsep_req req;
    ssize_t n;

    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    (void)prctl(PR_SET_NAME, "mqlb-privsep");
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    privsep_limit();
    for (;;) {
        n = recv(sock, &req, sizeof(req), 0);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n != (ssize_t)sizeof(req)) {
            break;      /* mqlb closed its end, or a malformed request */
        }
        if (req.op == PRIVSEP_READ) {
            privsep_serve_read(sock, path);
        } else if (req.op == PRIVSEP_LISTEN) {
            privsep_serve_listen(sock, &req);
        } else {
            break;
        }
    }
    _exit(0);
}

/* ---- mqlb's side ------------------------------------------------------ */

struct privsep *
privsep_start(const char *path, char *err)
{
    struct privsep *ps;
    int sv[2];
    pid_t pid;

    ps = calloc(1, sizeof(*ps));
    if (ps == NULL) {
        snprintf(err, MQ_ERR_LEN, "out of memory");
        return NULL;
    }
    if (strlen(path) >= sizeof(ps->path)) {
        snprintf(err, MQ_ERR_LEN, "config path too long");
        free(ps);
        return NULL;
    }
    snprintf(ps->path, sizeof(ps->path), "%s", path);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
        snprintf(err, MQ_ERR_LEN, "socketpair: %s", strerror(errno));
        free(ps);
        return NULL;
    }
    pid = fork();
    if (pid == -1) {
        snprintf(err, MQ_ERR_LEN, "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        free(ps);
        return NULL;
    }
    if (pid == 0) {
        close(sv[0]);
        /* Nothing of mqlb's stays open in the helper but stderr. */
        if (sv[1] > 3) {
            (void)syscall(SYS_close_range, 3, sv[1] - 1, 0);
        }
        (void)syscall(SYS_close_range, sv[1] + 1, ~0U, 0);
        privsep_main(sv[1], ps->path);
    }
    close(sv[1]);
    ps->fd = sv[0];
    ps->pid = pid;
    return ps;
}

pid_t
privsep_pid(const struct privsep *ps)
{
    return ps->pid;
}

/* Send one request; MQ_ERR with <err> filled if the helper is gone. */
static int
privsep_ask(struct privsep *ps, const struct privsep_req *req, char *err)
{
    ssize_t n;

    do {
        n = send(ps->fd, req, sizeof(*req), MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    if (n != (ssize_t)sizeof(*req)) {
        snprintf(err, MQ_ERR_LEN, "privileged helper gone: %s",
                 n == -1 ? strerror(errno) : "short write");
        return MQ_ERR;
    }
    return MQ_OK;
}

/*
 * Receive one answer: the header into <rep>, file bytes into <data>
 * (<cap> bytes; their count in <*len>), a passed descriptor into <*fd>
 * (-1 if none). MQ_ERR when the helper is gone.
 */
static int
privsep_recv(struct privsep *ps, struct privsep_rep *rep, void *data,
             size_t cap, size_t *len, int *fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov[2];
    struct msghdr msg;
    struct cmsghdr *cm;
    ssize_t n;

    memset(&msg, 0, sizeof(msg));
    iov[0].iov_base = rep;
    iov[0].iov_len = sizeof(*rep);
    iov[1].iov_base = data;
    iov[1].iov_len = cap;
    msg.msg_iov = iov;
    msg.msg_iovlen = cap > 0 ? 2 : 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    do {
        n = recvmsg(ps->fd, &msg, MSG_CMSG_CLOEXEC);
    } while (n == -1 && errno == EINTR);
    *fd = -1;
    for (cm = CMSG_FIRSTHDR(&msg); n > 0 && cm != NULL;
         cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(fd, CMSG_DATA(cm), sizeof(int));
        }
    }
    if (n < (ssize_t)sizeof(*rep)) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return MQ_ERR;
    }
    rep->err[sizeof(rep->err) - 1] = '\0';
    *len = (size_t)n - sizeof(*rep);
    return MQ_OK;
}

/*
 * Give up a READ halfway: the rest of its answer would be taken for the
 * next one, so the channel closes (later requests fail, the helper goes).
 */
static char *
privsep_abandon(struct privsep *ps, char *buf, char *err, const char *why)
{
    free(buf);
    snprintf(err, MQ_ERR_LEN, "%s", why);
    shutdown(ps->fd, SHUT_RDWR);
    return NULL;
}

char *
privsep_read_config(struct privsep *ps, size_t *len, char *err)
{
    struct privsep_req req;
    struct privsep_rep rep;
    size_t n, total = 0, cap = 0;
    char *buf = NULL, *grown;
    int fd;

    memset(&req, 0, sizeof(req));
    req.op = PRIVSEP_READ;
    if (privsep_ask(ps, &req, err) != MQ_OK) {
        return NULL;
    }
    for (;;) {
        if (cap - total < PRIVSEP_CHUNK + 1) {
            grown = realloc(buf, cap + PRIVSEP_CHUNK * 2);
            if (grown == NULL) {
                return privsep_abandon(ps, buf, err, "out of memory");
            }
            buf = grown;
            cap += PRIVSEP_CHUNK * 2;
        }
        if (privsep_recv(ps, &rep, buf + total, PRIVSEP_CHUNK, &n, &fd)
            != MQ_OK) {
            free(buf);
            snprintf(err, MQ_ERR_LEN, "privileged helper gone");
            return NULL;
        }
        if (fd >= 0) {
            close(fd);
        }
        if (rep.status != 0) {
            free(buf);
            snprintf(err, MQ_ERR_LEN, "%s", rep.err);
            return NULL;
        }
        total += n;
        if (total > PRIVSEP_FILE_MAX) {
            return privsep_abandon(ps, buf, err, "larger than 16 MiB");
        }
        if (rep.more == 0) {
            break;
        }
    }
    buf[total] = '\0';
    *len = total;
    return buf;
}

int
privsep_listen(struct privsep *ps, const struct config_addr *a,
               int backlog, char *err)
{
    struct privsep_req req;
    struct privsep_rep rep;
    size_t n;
    int fd;

    memset(&req, 0, sizeof(req));
    req.op = PRIVSEP_LISTEN;
    req.backlog = backlog;
    req.addr = *a;
    if (privsep_ask(ps, &req, err) != MQ_OK) {
        return -1;
    }
    if (privsep_recv(ps, &rep, NULL, 0, &n, &fd) != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "privileged helper gone");
        return -1;
    }
    if (rep.status != 0 || fd < 0) {
        if (fd >= 0) {
            close(fd);
        }
        snprintf(err, MQ_ERR_LEN, "%s", rep.status != 0 ? rep.err
                 : "privileged helper sent no socket");
        return -1;
    }
    return fd;
}

void
privsep_stop(struct privsep *ps)
{
    int status;

    if (ps == NULL) {
        return;
    }
    close(ps->fd);
    while (waitpid(ps->pid, &status, 0) == -1 && errno == EINTR) {
    }
    free(ps);
}
