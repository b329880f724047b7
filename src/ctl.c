/*
 * ctl.c: `mqlb -s`: one request to the running instance and a wait for
 * its outcome. With [global] control_socket set it goes there (one
 * COMMAND frame, one REPLY frame: see handover.h; the server side is
 * ctlserve.c); otherwise to the admin port's /control/ endpoints and
 * /status with the file's token. Both answer with the same status and
 * JSON, read by one piece of code below.
 *
 * A tiny blocking HTTP/1.1 client is enough for the admin port: one
 * request, our own server, `Connection: close`, a bounded read.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>
#include <jansson.h>

#include "mqlb/common.h"
#include "mqlb/ctl.h"
#include "mqlb/ctlsock.h"
#include "mqlb/handover.h"

#define CTL_DEFAULT_ADMIN   "127.0.0.1:9000"    /* as config.c's default */
#define CTL_REPLY_MAX       (1024 * 1024)       /* /status of a big fleet */
#define CTL_IO_TIMEOUT_MS   60000               /* a reload of many names */
#define CTL_STOP_WAIT_MS    120000              /* past shutdown_timeout */

/* Split "host:port", "[v6]:port" or ":port" into <out>. */
static int
ctl_split_addr(const char *addr, struct ctl_target *out)
{
    const char *colon, *host = addr;
    size_t hlen;

    while (*host == ' ' || *host == '\t') {
        host++;
    }
    colon = strrchr(host, ':');
    if (colon == NULL || colon[1] == '\0' ||
        strlen(colon + 1) >= sizeof(out->port)) {
        return -1;
    }
    snprintf(out->port, sizeof(out->port), "%s", colon + 1);
    out->port[strcspn(out->port, " \t;")] = '\0';
    hlen = (size_t)(colon - host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen >= sizeof(out->host)) {
        return -1;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    /* A wildcard listener is reached on loopback. */
    if (hlen == 0 || strcmp(out->host, "*") == 0 ||
        strcmp(out->host, "0.0.0.0") == 0) {
        snprintf(out->host, sizeof(out->host), "127.0.0.1");
    } else if (strcmp(out->host, "::") == 0) {
        snprintf(out->host, sizeof(out->host), "::1");
    }
    return 0;
}

struct ctl_scan {
    struct ctl_target  *t;
    int                 bad;        /* the listen value did not split */
};

static int
ctl_ini_cb(void *user, const char *section, const char *name,
           const char *value)
{
    struct ctl_scan *sc = user;

    if (strcmp(section, "global") == 0 &&
        strcmp(name, "control_socket") == 0) {
        snprintf(sc->t->sock, sizeof(sc->t->sock), "%s", value);
        return 1;
    }
    if (strcmp(section, "admin") != 0) {
        return 1;
    }
    if (strcmp(name, "listen") == 0) {
        sc->bad = ctl_split_addr(value, sc->t) != 0;
    } else if (strcmp(name, "token") == 0) {
        snprintf(sc->t->token, sizeof(sc->t->token), "%s", value);
    }
    return 1;   /* keep going whatever else the file holds */
}

int
ctl_parse_target(const char *text, struct ctl_target *out)
{
    struct ctl_scan sc = { out, 0 };

    memset(out, 0, sizeof(*out));
    ctl_split_addr(CTL_DEFAULT_ADMIN, out);
    ini_parse_string(text, ctl_ini_cb, &sc);
    return sc.bad ? -1 : 0;
}

static int
ctl_read_target(const char *path, struct ctl_target *out)
{
    char *text;
    long size;
    FILE *f;
    int rc;

    f = fopen(path, "re");
    if (f == NULL) {
        fprintf(stderr, "mqlb: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (text = malloc((size_t)size + 1))
        == NULL) {
        fclose(f);
        fprintf(stderr, "mqlb: %s: cannot read\n", path);
        return -1;
    }
    text[fread(text, 1, (size_t)size, f)] = '\0';
    fclose(f);
    rc = ctl_parse_target(text, out);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "mqlb: %s: [admin] listen is not HOST:PORT\n", path);
        return -1;
    }
    snprintf(out->path, sizeof(out->path), "%s", path);
    return 0;
}

static int
ctl_connect(const struct ctl_target *t)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(t->host, t->port, &hints, &res) != 0) {
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Wait for <fd> to be readable or writable within <ms>. */
static int
ctl_wait(int fd, short events, int ms)
{
    struct pollfd p = { fd, events, 0 };
    int n;

    do {
        n = poll(&p, 1, ms);
    } while (n < 0 && errno == EINTR);
    return n > 0 ? 0 : -1;
}

/*
 * One request; fills <*body> (owned, NUL-terminated) and returns the HTTP
 * status, or -1 when nothing answers (not running), -2 on a broken reply.
 */
static int
ctl_request(const struct ctl_target *t, const char *method, const char *url,
            char **body)
{
    char req[1024], *buf, *p;
    size_t len = 0, cap = 16384;
    ssize_t n;
    int fd, status, w;

    *body = NULL;
    fd = ctl_connect(t);
    if (fd < 0) {
        return -1;
    }
    w = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: mqlb-ctl\r\n"
                 "%s%s%sContent-Length: 0\r\nConnection: close\r\n\r\n",
                 method, url, t->host, t->port,
                 t->token[0] != '\0' ? "Authorization: Bearer " : "",
                 t->token, t->token[0] != '\0' ? "\r\n" : "");
    if (w <= 0 || (size_t)w >= sizeof(req) ||
        send(fd, req, (size_t)w, MSG_NOSIGNAL) != w ||
        (buf = malloc(cap)) == NULL) {
        close(fd);
        return -2;
    }
    for (;;) {
        if (len + 1 == cap) {
            if (cap >= CTL_REPLY_MAX || (p = realloc(buf, cap * 2)) == NULL) {
                break;
            }
            buf = p;
            cap *= 2;
        }
        if (ctl_wait(fd, POLLIN, CTL_IO_TIMEOUT_MS) != 0) {
            break;
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*c %d", &status) != 1 ||
        (p = strstr(buf, "\r\n\r\n")) == NULL) {
        free(buf);
        return -2;
    }
    memmove(buf, p + 4, strlen(p + 4) + 1);
    *body = buf;
    return status;
}

static void
ctl_print_errors(json_t *j)
{
    json_t *errs = json_object_get(j, "errors"), *e;
    size_t i;

    json_array_foreach(errs, i, e) {
        if (json_is_string(e)) {
            fprintf(stderr, "%s\n", json_string_value(e));
        }
    }
}

static const char *
ctl_json_str(json_t *j, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(j, key));

    return s != NULL ? s : dflt;
}

static int
ctl_reload(const struct ctl_target *t, json_t *j, int status)
{
    if (status == 200) {
        printf("mqlb: reloaded %s: %s\n", ctl_json_str(j, "path", t->path),
               ctl_json_str(j, "summary", "ok"));
        return CTL_EXIT_OK;
    }
    ctl_print_errors(j);
    fprintf(stderr, "mqlb: reload failed: %s\n",
            ctl_json_str(j, "error", "the running config stays"));
    return CTL_EXIT_FAILED;
}

static int
ctl_status(json_t *j)
{
    json_t *pools = json_object_get(j, "pools"), *p, *b;
    size_t i, k, up, n;

    printf("mqlb running, pid %lld, generation %lld\n",
           (long long)json_integer_value(json_object_get(j, "pid")),
           (long long)json_integer_value(json_object_get(j, "generation")));
    json_array_foreach(pools, i, p) {
        up = 0;
        n = json_array_size(json_object_get(p, "backends"));
        json_array_foreach(json_object_get(p, "backends"), k, b) {
            up += strcmp(ctl_json_str(b, "state", ""), "up") == 0;
        }
        printf("  pool %s: %zu/%zu backends up\n", ctl_json_str(p, "name",
               "?"), up, n);
    }
    return CTL_EXIT_OK;
}

/* ---- the control socket ---------------------------------------------- */

/*
 * A descriptor that becomes readable when the process at the other end
 * of <fd> has exited (a zombie counts), or -1 when the kernel has no
 * pidfd: then ctl_wait_gone polls the socket instead.
 */
static int
ctl_peer_pidfd(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
        cred.pid <= 0) {
        return -1;
    }
    return pidfd_open(cred.pid, 0);
}

/*
 * Send <wire> (enum handover_cmd) on <t>'s control socket; fills <*body>
 * (owned, NUL-terminated) and returns the reply's status, or a negative
 * -CTL_EXIT_ code after saying why. For a stop, <*pidfd> is the
 * instance's (ctl_peer_pidfd), taken before it was asked to go.
 */
static int
ctl_ask_sock(const struct ctl_target *t, uint8_t wire, char **body,
             int *pidfd)
{
    struct handover_command m = { wire };
    struct handover_header h;
    struct handover_reply r = { 0, 0, NULL };
    struct handover_error e;
    struct handover_buf b;
    char err[MQ_ERR_LEN];
    uint8_t *payload = NULL;
    int fd, rc, saved;

    *body = NULL;
    *pidfd = -1;
    fd = ctlsock_connect(t->sock, CTL_IO_TIMEOUT_MS, err);
    if (fd == -1) {
        if (errno == ECONNREFUSED || errno == ENOENT) {
            fprintf(stderr, "mqlb: %s (control_socket of %s)\n", err,
                    t->path);
            return -CTL_EXIT_NOT_RUNNING;
        }
        /* EACCES: another user's instance, say; not "not running". */
        fprintf(stderr, "mqlb: cannot reach the control socket %s: %s "
                "(control_socket of %s)\n", t->sock, errno == ENAMETOOLONG
                ? "the path is too long" : strerror(errno), t->path);
        return -CTL_EXIT_FAILED;
    }
    if (wire == HANDOVER_CMD_STOP) {
        *pidfd = ctl_peer_pidfd(fd);
    }
    handover_buf_init(&b);
    rc = handover_encode_command(&b, &m) == MQ_OK
         ? ctlsock_send_frame(fd, &b) : MQ_ERR;
    handover_buf_deinit(&b);
    if (rc == MQ_OK) {
        rc = ctlsock_read_frame(fd, &h, &payload);
    }
    saved = errno;              /* the message below reads it */
    close(fd);
    errno = saved;
    if (rc != MQ_OK) {
        fprintf(stderr, "mqlb: no answer on the control socket %s: %s%s\n",
                t->sock, ctlsock_frame_error(rc), rc == MQ_ERR &&
                (errno == ECONNRESET || errno == EPIPE) ? " (is mqlb "
                "running as another user?)" : "");
    } else if (h.type == HANDOVER_ERROR &&
               handover_decode_error(payload, h.length, &e) == MQ_OK) {
        fprintf(stderr, "mqlb: the instance on %s refused: %s\n", t->sock,
                e.text);
    } else if (h.type != HANDOVER_REPLY ||
               handover_decode_reply(payload, h.length, &r) != MQ_OK) {
        fprintf(stderr, "mqlb: broken reply (%s) on the control socket "
                "%s\n", handover_type_name(h.type), t->sock);
    } else if ((*body = malloc((size_t)r.len + 1)) == NULL) {
        fprintf(stderr, "mqlb: out of memory\n");
    } else {
        memcpy(*body, r.body, r.len);
        (*body)[r.len] = '\0';
    }
    free(payload);
    if (*body == NULL) {
        if (*pidfd != -1) {
            close(*pidfd);
            *pidfd = -1;
        }
        return -CTL_EXIT_FAILED;
    }
    return (int)r.status;
}

/* ---- the admin port --------------------------------------------------- */

/* As ctl_ask_sock, over HTTP to the admin port with the file's token. */
static int
ctl_ask_http(const struct ctl_target *t, const char *method, const char *url,
             char **body)
{
    int status = ctl_request(t, method, url, body);

    if (status == -1) {
        fprintf(stderr, "mqlb: no instance answers on %s:%s (admin listen "
                "of %s)\n", t->host, t->port, t->path);
        return -CTL_EXIT_NOT_RUNNING;
    }
    if (status < 0) {
        fprintf(stderr, "mqlb: broken reply from %s:%s\n", t->host, t->port);
        return -CTL_EXIT_FAILED;
    }
    if (status == 401 || status == 403) {
        fprintf(stderr, "mqlb: the instance on %s:%s refused us (%d): is "
                "[admin] token in %s the running one's?\n", t->host, t->port,
                status, t->path);
        free(*body);
        *body = NULL;
        return -CTL_EXIT_FAILED;
    }
    return status;
}

/* Is something still answering where <t> points? */
static bool
ctl_answers(const struct ctl_target *t)
{
    char err[MQ_ERR_LEN];
    int fd;

    fd = t->sock[0] != '\0' ? ctlsock_connect(t->sock, 1000, err)
                            : ctl_connect(t);
    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

/*
 * After a stop was accepted: wait until the process has exited (its
 * <pidfd>, when there is one), or else until nothing answers any more.
 */
static int
ctl_wait_gone(const struct ctl_target *t, int pidfd)
{
    uint64_t deadline = mq_now_ms() + CTL_STOP_WAIT_MS;
    struct timespec nap = { 0, 50 * 1000 * 1000 };
    struct pollfd p = { pidfd, POLLIN, 0 };
    int n;

    if (pidfd != -1) {
        do {
            n = poll(&p, 1, CTL_STOP_WAIT_MS);
        } while (n == -1 && errno == EINTR);
        close(pidfd);
        if (n == 1) {
            printf("mqlb: stopped\n");
            return CTL_EXIT_OK;
        }
    } else {
        while (mq_now_ms() < deadline) {
            if (!ctl_answers(t)) {
                printf("mqlb: stopped\n");
                return CTL_EXIT_OK;
            }
            nanosleep(&nap, NULL);
        }
    }
    fprintf(stderr, "mqlb: still running after %d s\n",
            CTL_STOP_WAIT_MS / 1000);
    return CTL_EXIT_FAILED;
}

/* The commands, and how each is asked on either way in. */
static const struct ctl_cmd {
    const char         *name;
    const char         *method;     /* admin port */
    const char         *url;
    uint8_t             wire;       /* control socket: enum handover_cmd */
} ctl_cmds[] = {
    { "reload", "POST", "/control/reload", HANDOVER_CMD_RELOAD },
    { "stop",   "POST", "/control/stop",   HANDOVER_CMD_STOP },
    { "status", "GET",  "/status",         HANDOVER_CMD_STATUS },
};

int
ctl_run(const char *cmd, const char *path)
{
    const struct ctl_cmd *c = NULL;
    struct ctl_target t;
    json_error_t jerr;
    char *body;
    json_t *j;
    int status, rc, pidfd = -1;
    size_t i;

    for (i = 0; i < MQ_NELEMS(ctl_cmds); i++) {
        if (strcmp(cmd, ctl_cmds[i].name) == 0) {
            c = &ctl_cmds[i];
        }
    }
    if (c == NULL) {
        fprintf(stderr, "mqlb: -s takes reload, stop or status, not '%s'\n",
                cmd);
        return CTL_EXIT_USAGE;
    }
    if (ctl_read_target(path, &t) != 0) {
        return CTL_EXIT_FAILED;
    }
    status = t.sock[0] != '\0' ? ctl_ask_sock(&t, c->wire, &body, &pidfd)
                               : ctl_ask_http(&t, c->method, c->url, &body);
    if (status < 0) {
        return -status;
    }
    j = json_loads(body, 0, &jerr);
    free(body);
    if (c->wire == HANDOVER_CMD_RELOAD) {
        rc = ctl_reload(&t, j, status);
    } else if (c->wire == HANDOVER_CMD_STOP) {
        rc = CTL_EXIT_FAILED;
        if (status == 202 || status == 200) {
            rc = ctl_wait_gone(&t, pidfd);
            pidfd = -1;     /* closed there */
        }
    } else {
        rc = status == 200 && j != NULL ? ctl_status(j) : CTL_EXIT_FAILED;
    }
    if (rc == CTL_EXIT_FAILED && status != 200 && status != 202 &&
        c->wire != HANDOVER_CMD_RELOAD) {
        fprintf(stderr, "mqlb: %s: status %d %s\n", cmd, status,
                ctl_json_str(j, "error", ""));
    }
    if (pidfd != -1) {
        close(pidfd);
    }
    json_decref(j);
    return rc;
}
