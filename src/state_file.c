/*
 * state_file.c: reading and writing the runtime state file (see
 * state_file.h for the format).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/state_file.h"

#define STATE_MAX_TOKENS    16
#define STATE_MAX_BYTES     (16u << 20)     /* a sane file is far smaller */
#define STATE_HEADER        "# mqlb runtime state: drain, disable, weights " \
                            "and backends added at runtime.\n"           \
                            "# Rewritten by mqlb on every change; edit it " \
                            "only while mqlb is stopped.\n"

static const char *const state_admin_names[] = { "ready", "drain",
                                                 "disable" };

static bool
state_name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n >= STATE_NAME_LEN) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!config_name_char((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static bool
state_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* One key=value of a line into <e>; the reason it is bad, or NULL. */
static const char *
state_option(struct state_entry *e, char *tok)
{
    char *eq = strchr(tok, '=');
    const char *val;
    unsigned v, i;

    if (eq == NULL) {
        return "expected key=value";
    }
    *eq = '\0';
    val = eq + 1;
    if (strcmp(tok, "admin") == 0) {
        for (i = 0; i < MQ_NELEMS(state_admin_names); i++) {
            if (strcmp(val, state_admin_names[i]) == 0) {
                e->admin = (enum state_admin)i;
                return NULL;
            }
        }
        return "admin must be ready, drain or disable";
    }
    if (strcmp(tok, "weight") == 0) {
        if (!state_uint(val, CONFIG_WEIGHT_MAX, &e->weight)) {
            return "weight must be 0..256";
        }
        e->has_weight = true;
        return NULL;
    }
    if (strcmp(tok, "file_weight") == 0) {
        return state_uint(val, CONFIG_WEIGHT_MAX, &e->file_weight) ? NULL
               : "file_weight must be 0..256";
    }
    if (strcmp(tok, "max_conns") == 0 && e->added) {
        return state_uint(val, 0xffffffu, &e->max_conns) ? NULL
               : "bad max_conns";
    }
    if (strcmp(tok, "backup") == 0 && e->added) {
        if (!state_uint(val, 1, &v)) {
            return "backup must be 0 or 1";
        }
        e->backup = v == 1;
        return NULL;
    }
    return "unknown key";
}

/* Parse the tokens of one line into <e>; the reason it is bad, or NULL. */
static const char *
state_line(struct state_entry *e, char **tok, size_t ntok)
{
    const char *why;
    size_t i, first;

    memset(e, 0, sizeof(*e));
    if (strcmp(tok[0], "backend") == 0) {
        first = 3;
    } else if (strcmp(tok[0], "add") == 0) {
        e->added = true;
        e->weight = 1;
        first = 4;
    } else {
        return "expected 'backend' or 'add'";
    }
    if (ntok < first) {
        return "too few fields";
    }
    if (!state_name_ok(tok[1]) || !state_name_ok(tok[2])) {
        return "bad pool or backend name";
    }
    snprintf(e->pool, sizeof(e->pool), "%s", tok[1]);
    snprintf(e->backend, sizeof(e->backend), "%s", tok[2]);
    if (e->added) {
        if (strlen(tok[3]) >= sizeof(e->addr)) {
            return "address too long";
        }
        snprintf(e->addr, sizeof(e->addr), "%s", tok[3]);
    }
    for (i = first; i < ntok; i++) {
        why = state_option(e, tok[i]);
        if (why != NULL) {
            return why;
        }
    }
    if (!e->has_weight) {
        e->file_weight = e->weight;
    }
    return NULL;
}

int
state_file_parse(const char *text, const char *name,
                 struct state_entry **out, size_t *n, state_warn_fn warn,
                 void *ctx)
{
    struct state_entry *list = NULL, *grown, e;
    char *copy, *line, *next, *tok[STATE_MAX_TOKENS], *save, msg[256];
    const char *why;
    size_t cap = 0, ntok;
    int lineno = 0;

    *out = NULL;
    *n = 0;
    copy = strdup(text);
    if (copy == NULL) {
        return MQ_ERR;
    }
    for (line = copy; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        lineno++;
        ntok = 0;
        for (tok[0] = strtok_r(line, " \t\r", &save);
             tok[ntok] != NULL && ntok < STATE_MAX_TOKENS - 1;
             tok[++ntok] = strtok_r(NULL, " \t\r", &save)) {
        }
        if (ntok == 0 || tok[0][0] == '#') {
            continue;
        }
        why = ntok >= STATE_MAX_TOKENS - 1 ? "too many fields"
              : state_line(&e, tok, ntok);
        if (why != NULL) {
            if (warn != NULL) {
                snprintf(msg, sizeof(msg), "%s:%d: %s, ignored", name,
                         lineno, why);
                warn(ctx, msg);
            }
            continue;
        }
        e.line = lineno;
        if (*n == cap) {
            cap = cap > 0 ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL) {
                free(list);
                free(copy);
                return MQ_ERR;
            }
            list = grown;
        }
        list[(*n)++] = e;
    }
    free(copy);
    *out = list;
    return MQ_OK;
}

int
state_file_read(const char *path, struct state_entry **out, size_t *n,
                state_warn_fn warn, void *ctx, char *err)
{
    char *text = NULL, *grown;
    size_t len = 0, cap = 0;
    ssize_t r;
    int fd, rc;

    *out = NULL;
    *n = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        if (errno == ENOENT) {
            return MQ_OK;
        }
        snprintf(err, MQ_ERR_LEN, "state_file %s: %s", path,
                 strerror(errno));
        return MQ_ERR;
    }
    for (;;) {
        if (len + 1 >= cap) {
            cap = cap > 0 ? cap * 2 : 4096;
            grown = cap <= STATE_MAX_BYTES ? realloc(text, cap) : NULL;
            if (grown == NULL) {
                snprintf(err, MQ_ERR_LEN, "state_file %s: too large or out "
                         "of memory", path);
                goto fail;
            }
            text = grown;
        }
        r = read(fd, text + len, cap - len - 1);
        if (r == -1 && errno == EINTR) {
            continue;
        }
        if (r == -1) {
            snprintf(err, MQ_ERR_LEN, "state_file %s: %s", path,
                     strerror(errno));
            goto fail;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    text[len] = '\0';
    rc = state_file_parse(text, path, out, n, warn, ctx);
    free(text);
    if (rc != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "state_file %s: out of memory", path);
    }
    return rc;
fail:
    close(fd);
    free(text);
    return MQ_ERR;
}

size_t
state_file_format(const struct state_entry *e, size_t n, char *buf,
                  size_t size)
{
    char none[1];
    size_t i, used = 0;
    int k;

    if (buf == NULL) {
        buf = none;     /* measuring only */
        size = 0;
    }

#define STATE_PUT(...)                                                  \
    do {                                                                \
        k = snprintf(buf + MQ_MIN(used, size), size > used ? size - used \
                     : 0, __VA_ARGS__);                                 \
        used += k > 0 ? (size_t)k : 0;                                  \
    } while (0)

    STATE_PUT("%s", STATE_HEADER);
    for (i = 0; i < n; i++) {
        if (e[i].added) {
            STATE_PUT("add %s %s %s weight=%u max_conns=%u backup=%d",
                      e[i].pool, e[i].backend, e[i].addr, e[i].weight,
                      e[i].max_conns, e[i].backup ? 1 : 0);
        } else {
            STATE_PUT("backend %s %s", e[i].pool, e[i].backend);
            if (e[i].has_weight) {
                STATE_PUT(" weight=%u file_weight=%u", e[i].weight,
                          e[i].file_weight);
            }
        }
        STATE_PUT(" admin=%s\n", state_admin_names[e[i].admin]);
    }
#undef STATE_PUT
    return used;
}

int
state_file_write(const char *path, const struct state_entry *e, size_t n,
                 char *err)
{
    char tmp[4096 + 16], *text;
    size_t len, off = 0;
    ssize_t w;
    int fd;

    len = state_file_format(e, n, NULL, 0);
    text = malloc(len + 1);
    if (text == NULL) {
        snprintf(err, MQ_ERR_LEN, "state_file %s: out of memory", path);
        return MQ_ERR;
    }
    state_file_format(e, n, text, len + 1);
    if (strlen(path) + 5 > sizeof(tmp)) {
        snprintf(err, MQ_ERR_LEN, "state_file: path too long");
        free(text);
        return MQ_ERR;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1) {
        snprintf(err, MQ_ERR_LEN, "state_file %s: writing: %s", path,
                 strerror(errno));
        free(text);
        return MQ_ERR;
    }
    while (off < len) {
        w = write(fd, text + off, len - off);
        if (w == -1 && errno == EINTR) {
            continue;
        }
        if (w == -1) {
            snprintf(err, MQ_ERR_LEN, "state_file %s: writing: %s", path,
                     strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    free(text);
    text = NULL;
    if (fsync(fd) == -1 || close(fd) == -1) {
        fd = -1;
        snprintf(err, MQ_ERR_LEN, "state_file %s: writing: %s", path,
                 strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) == -1) {
        snprintf(err, MQ_ERR_LEN, "state_file %s: rename: %s", path,
                 strerror(errno));
        goto fail;
    }
    return MQ_OK;
fail:
    if (fd != -1) {
        close(fd);
    }
    free(text);
    unlink(tmp);
    return MQ_ERR;
}
