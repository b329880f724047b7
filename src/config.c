/*
 * config.c: the INI file. inih splits lines into section/key/value; a
 * reader of our own feeds it one line at a time so that every message can
 * name FILE:LINE (Debian's inih does not pass line numbers), strips leading
 * blanks (so indentation never turns into inih's multi-line values) and
 * reports over-long lines instead of letting inih cut them.
 *
 * Two passes, as nginx does: a section starts with every key at its
 * default (parsed from the same key table), the handler overwrites what the
 * file sets, then config_validate() checks what spans keys and sections.
 * Every error is collected; nothing stops at the first one.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/log.h"

enum cf_section {
    CF_NONE = 0,        /* before any section header */
    CF_GLOBAL,
    CF_ADMIN,
    CF_POOL,
    CF_UNKNOWN,         /* reported once, its keys ignored */
};

struct cf_ctx;
struct cf_key;

typedef int (*cf_parse_t)(struct cf_ctx *ctx, void *base,
                          const struct cf_key *k, const char *value);

/* One row of the key table: where a key lives and how it is parsed. */
struct cf_key {
    enum cf_section     section;
    const char         *name;
    cf_parse_t          parse;
    size_t              offset;     /* into struct config or config_pool */
    const char         *def;        /* default, parsed like the file */
    unsigned            min;        /* bounds for integers */
    unsigned            max;
    unsigned            repeat:1;   /* may appear more than once */
};

/* Parser state while reading one file. */
struct cf_ctx {
    const char         *name;       /* file name for messages */
    const char         *text;       /* whole file */
    size_t              pos;        /* reader position in <text> */
    int                 line;       /* line the reader last returned */
    enum cf_section     section;
    int                 section_line;
    struct config      *cf;
    struct config_pool *pool;       /* current [pool] or NULL */
    uint64_t            seen;       /* keys set in this section (bits) */
    struct config_errors *errs;
    unsigned            nerrs;
};

static void
cf_error_at(struct cf_ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cf_error_at(struct cf_ctx *ctx, int line, const char *fmt, ...)
{
    char msg[512], full[700];
    char **msgs;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "%s:%d: %s", ctx->name, line, msg);
    ctx->nerrs++;
    msgs = realloc(ctx->errs->msgs, (ctx->errs->nmsgs + 1) * sizeof(*msgs));
    if (msgs == NULL) {
        return;
    }
    ctx->errs->msgs = msgs;
    msgs[ctx->errs->nmsgs] = strdup(full);
    if (msgs[ctx->errs->nmsgs] != NULL) {
        ctx->errs->nmsgs++;
    }
}

#define cf_error(ctx, ...)  cf_error_at((ctx), (ctx)->line, __VA_ARGS__)

void
config_errors_deinit(struct config_errors *errs)
{
    size_t i;

    for (i = 0; i < errs->nmsgs; i++) {
        mq_free(errs->msgs[i]);
    }
    mq_free(errs->msgs);
    errs->nmsgs = 0;
}

/* ---- typed value parsers ------------------------------------------- */

/* The leading decimal number of <text> (no sign, no blanks) and its end. */
static int
cf_number(const char *text, unsigned long long *v, char **end)
{
    if (!isdigit((unsigned char)text[0])) {
        return MQ_ERR;
    }
    errno = 0;
    *v = strtoull(text, end, 10);
    return errno != 0 ? MQ_ERR : MQ_OK;
}

int
config_parse_duration_ms(const char *text, uint64_t *ms)
{
    unsigned long long v;
    uint64_t mult;
    char *end;

    if (cf_number(text, &v, &end) != MQ_OK) {
        return MQ_ERR;
    }
    if (strcmp(end, "ms") == 0) {
        mult = 1;
    } else if (strcmp(end, "s") == 0) {
        mult = 1000;
    } else if (strcmp(end, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(end, "h") == 0) {
        mult = 3600 * 1000;
    } else if (*end == '\0' && v == 0) {
        mult = 1;           /* a bare 0 needs no unit */
    } else {
        return MQ_ERR;
    }
    if (v > UINT64_MAX / mult / 1000) {
        return MQ_ERR;      /* keeps later arithmetic in range */
    }
    *ms = v * mult;
    return MQ_OK;
}

int
config_parse_size(const char *text, uint64_t *bytes)
{
    unsigned long long v;
    uint64_t mult = 1;
    char *end;

    if (cf_number(text, &v, &end) != MQ_OK) {
        return MQ_ERR;
    }
    if (*end == 'k' || *end == 'K') {
        mult = 1024;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        mult = 1024 * 1024;
        end++;
    }
    if (*end != '\0' || v > UINT64_MAX / mult) {
        return MQ_ERR;
    }
    *bytes = v * mult;
    return MQ_OK;
}

int
config_parse_uint(const char *text, unsigned min, unsigned max,
                  unsigned *out)
{
    unsigned long long v;
    char *end;

    if (cf_number(text, &v, &end) != MQ_OK || *end != '\0' || v < min ||
        v > max) {
        return MQ_ERR;
    }
    *out = (unsigned)v;
    return MQ_OK;
}

/*
 * "host:port", "[v6]:port" or "*:port". Names are resolved once, here, as
 * nginx does at start-up.
 */
int
config_parse_addr(const char *text, struct config_addr *out)
{
    char host[256];
    const char *colon, *port;
    struct addrinfo hints, *res;
    unsigned portnum;
    size_t hlen;

    if (text[0] == '[') {
        colon = strchr(text, ']');
        if (colon == NULL || colon[1] != ':') {
            return MQ_ERR;
        }
        hlen = (size_t)(colon - text - 1);
        memcpy(host, text + 1, MQ_MIN(hlen, sizeof(host) - 1));
        port = colon + 2;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || memchr(text, ':', (size_t)(colon - text))) {
            return MQ_ERR;
        }
        hlen = (size_t)(colon - text);
        memcpy(host, text, MQ_MIN(hlen, sizeof(host) - 1));
        port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        return MQ_ERR;
    }
    host[hlen] = '\0';
    if (config_parse_uint(port, 1, 65535, &portnum) != MQ_OK) {
        return MQ_ERR;
    }
    if (strcmp(host, "*") == 0) {
        strcpy(host, "0.0.0.0");
    }
    if (strspn(host, "0123456789.") == hlen &&
        inet_pton(AF_INET, host, &hints) != 1) {
        return MQ_ERR;      /* getaddrinfo would take "1.2.3" as 1.2.0.3 */
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (text[0] == '[' ? AI_NUMERICHOST : 0);
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return MQ_ERR;
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(out->text, sizeof(out->text), "%s", text);
    return MQ_OK;
}

static int
cf_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

int
config_unescape(const char *text, char **out, size_t *len)
{
    size_t n = 0;
    char *buf;
    int hi, lo;

    buf = malloc(strlen(text) + 1);
    if (buf == NULL) {
        return MQ_ERR;
    }
    while (*text != '\0') {
        if (*text != '\\') {
            buf[n++] = *text++;
            continue;
        }
        text++;
        switch (*text) {
        case 'r':  buf[n++] = '\r'; break;
        case 'n':  buf[n++] = '\n'; break;
        case 't':  buf[n++] = '\t'; break;
        case '0':  buf[n++] = '\0'; break;
        case '\\': buf[n++] = '\\'; break;
        case 'x':
            hi = cf_hex((unsigned char)text[1]);
            lo = hi < 0 ? -1 : cf_hex((unsigned char)text[2]);
            if (lo < 0) {
                free(buf);
                return MQ_ERR;
            }
            buf[n++] = (char)(hi * 16 + lo);
            text += 2;
            break;
        default:
            free(buf);
            return MQ_ERR;
        }
        text++;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return MQ_OK;
}

/* ---- key parsers (write at base + offset) -------------------------- */

#define CF_FIELD(base, k, type)  ((type *)((char *)(base) + (k)->offset))

static int
cf_set_uint(struct cf_ctx *ctx, void *base, const struct cf_key *k,
            const char *v)
{
    if (config_parse_uint(v, k->min, k->max, CF_FIELD(base, k, unsigned))
        != MQ_OK) {
        cf_error(ctx, "%s = %s: expected a whole number from %u to %u",
                 k->name, v, k->min, k->max);
        return MQ_ERR;
    }
    return MQ_OK;
}

static int
cf_set_duration(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                const char *v)
{
    uint64_t ms;

    if (config_parse_duration_ms(v, &ms) != MQ_OK) {
        cf_error(ctx, "%s = %s: expected a duration such as 250ms, 2s, "
                 "5m or 1h", k->name, v);
        return MQ_ERR;
    }
    if (k->min > 0 && ms == 0) {
        cf_error(ctx, "%s = %s: must be greater than 0", k->name, v);
        return MQ_ERR;
    }
    *CF_FIELD(base, k, uint64_t) = ms;
    return MQ_OK;
}

static int
cf_set_string(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    char **field = CF_FIELD(base, k, char *);

    (void)ctx;
    mq_free(*field);
    if (*v != '\0') {
        *field = strdup(v);
    }
    return MQ_OK;
}

/*
 * check_user, check_password, check_vhost: at most PROBE_CRED_MAX bytes
 * (255: AMQP short strings, and every probe's request stays bounded).
 */
static int
cf_set_cred(struct cf_ctx *ctx, void *base, const struct cf_key *k,
            const char *v)
{
    if (strlen(v) > CONFIG_CRED_MAX) {
        cf_error(ctx, "%s: at most %d characters", k->name,
                 CONFIG_CRED_MAX);
        return MQ_ERR;
    }
    return cf_set_string(ctx, base, k, v);
}

static int
cf_set_path(struct cf_ctx *ctx, void *base, const struct cf_key *k,
            const char *v)
{
    if (v[0] != '/' || strpbrk(v, " \t\r\n") != NULL) {
        cf_error(ctx, "%s = %s: expected a path starting with '/'",
                 k->name, v);
        return MQ_ERR;
    }
    return cf_set_string(ctx, base, k, v);
}

/* check_send / check_expect: the text, its unescaped bytes and length. */
static int
cf_set_bytes(struct cf_ctx *ctx, void *base, const struct cf_key *k,
             const char *v)
{
    char **field = CF_FIELD(base, k, char *);
    size_t *len = (size_t *)(field + 1);
    char *bytes;

    if (config_unescape(v, &bytes, len) != MQ_OK) {
        cf_error(ctx, "%s = %s: bad escape (use \\r \\n \\t \\\\ \\xHH)",
                 k->name, v);
        return MQ_ERR;
    }
    free(*field);
    *field = bytes;
    return MQ_OK;
}

static int
cf_set_listen(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    struct config_pool *p = base;
    struct config_addr a, *arr;

    (void)k;
    if (config_parse_addr(v, &a) != MQ_OK) {
        cf_error(ctx, "listen = %s: expected HOST:PORT or [IPV6]:PORT", v);
        return MQ_ERR;
    }
    a.line = ctx->line;
    arr = realloc(p->listens, (p->nlistens + 1) * sizeof(*arr));
    if (arr == NULL) {
        cf_error(ctx, "out of memory");
        return MQ_ERR;
    }
    p->listens = arr;
    arr[p->nlistens++] = a;
    return MQ_OK;
}

static int
cf_set_admin_listen(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                    const char *v)
{
    struct config_addr *a = CF_FIELD(base, k, struct config_addr);

    if (config_parse_addr(v, a) != MQ_OK) {
        cf_error(ctx, "listen = %s: expected HOST:PORT or [IPV6]:PORT", v);
        return MQ_ERR;
    }
    a->line = ctx->line;
    return MQ_OK;
}

/* A keyword out of a NULL-terminated list; its index is stored as int. */
static int
cf_set_enum(struct cf_ctx *ctx, int *field, const char *key, const char *v,
            const char *const *names)
{
    char choices[256];
    size_t i, n = 0;

    for (i = 0; names[i] != NULL; i++) {
        if (strcmp(v, names[i]) == 0) {
            *field = (int)i;
            return MQ_OK;
        }
        n += (size_t)snprintf(choices + n, sizeof(choices) - n, "%s%s",
                              i == 0 ? "" : " | ", names[i]);
    }
    cf_error(ctx, "%s = %s: expected %s", key, v, choices);
    return MQ_ERR;
}

static const char *const cf_balance_names[] = {
    "roundrobin", "leastconn", "source", "random", "mqtt-client-id", NULL,
};
static const char *const cf_check_names[] = {
    "tcp", "redis", "redis-master", "amqp", "mqtt", "nats", "kafka", "http",
    "send-expect", "none", NULL,
};
static const char *const cf_pp_names[] = { "off", "v1", "v2", NULL };
static const char *const cf_check_pp_names[] = {
    "auto", "on", "off", "addresses", NULL,
};
static const char *const cf_format_names[] = { "text", "json", NULL };
static const char *const cf_down_names[] = { "keep", "close", NULL };

const char *
config_balance_name(enum config_balance b)
{
    return cf_balance_names[b];
}

const char *
config_check_name(enum config_check c)
{
    return cf_check_names[c];
}

int
config_check_pp_version(const struct config_pool *p)
{
    if (p->check_proxy_protocol == CHECK_PP_OFF) {
        return 0;
    }
    return p->proxy_protocol == PROXY_PROTOCOL_V1 ? 1 :
           p->proxy_protocol == PROXY_PROTOCOL_V2 ? 2 : 0;
}

#define CF_ENUM_SETTER(fn, names)                                       \
static int                                                              \
fn(struct cf_ctx *ctx, void *base, const struct cf_key *k, const char *v) \
{                                                                       \
    int idx;                                                            \
    if (cf_set_enum(ctx, &idx, k->name, v, names) != MQ_OK) {           \
        return MQ_ERR;                                                  \
    }                                                                   \
    *CF_FIELD(base, k, int) = idx;                                      \
    return MQ_OK;                                                       \
}

CF_ENUM_SETTER(cf_set_balance, cf_balance_names)
CF_ENUM_SETTER(cf_set_check, cf_check_names)
CF_ENUM_SETTER(cf_set_pp, cf_pp_names)
CF_ENUM_SETTER(cf_set_check_pp, cf_check_pp_names)
CF_ENUM_SETTER(cf_set_format, cf_format_names)

static int
cf_set_on_down(struct cf_ctx *ctx, void *base, const struct cf_key *k,
               const char *v)
{
    struct config_pool *p = base;
    int idx;

    if (cf_set_enum(ctx, &idx, k->name, v, cf_down_names) != MQ_OK) {
        return MQ_ERR;
    }
    p->close_on_down = idx == 1;
    return MQ_OK;
}

static int
cf_set_log_level(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                 const char *v)
{
    int level = log_level_parse(v);

    if (level < 0 || level == LOG_NOTICE) {
        cf_error(ctx, "%s = %s: expected error | warn | info | debug",
                 k->name, v);
        return MQ_ERR;
    }
    *CF_FIELD(base, k, int) = level;
    return MQ_OK;
}

/* off | IDLE[:INTERVAL[:COUNT]], e.g. 60s:10s:5 */
static int
cf_set_keepalive(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                 const char *v)
{
    struct config_keepalive *ka = CF_FIELD(base, k, struct config_keepalive);
    char buf[64], *part[3] = { NULL, NULL, NULL }, *save = NULL, *tok;
    uint64_t idle, intvl = 0;
    unsigned cnt = 0, n = 0;

    memset(ka, 0, sizeof(*ka));
    if (strcmp(v, "off") == 0) {
        return MQ_OK;
    }
    if (strlen(v) >= sizeof(buf)) {
        goto bad;
    }
    strcpy(buf, v);
    for (tok = strtok_r(buf, ":", &save); tok != NULL;
         tok = strtok_r(NULL, ":", &save)) {
        if (n == 3) {
            goto bad;
        }
        part[n++] = tok;
    }
    if (n == 0 || config_parse_duration_ms(part[0], &idle) != MQ_OK ||
        idle < 1000 ||
        (n > 1 && (config_parse_duration_ms(part[1], &intvl) != MQ_OK ||
                   intvl < 1000)) ||
        (n > 2 && config_parse_uint(part[2], 1, 127, &cnt) != MQ_OK)) {
        goto bad;
    }
    ka->on = 1;
    ka->idle_s = (unsigned)(idle / 1000);
    ka->interval_s = (unsigned)(intvl / 1000);
    ka->count = cnt;
    return MQ_OK;
bad:
    cf_error(ctx, "%s = %s: expected off or IDLE[:INTERVAL[:COUNT]] with "
             "durations of at least 1s, e.g. 60s:10s:5", k->name, v);
    return MQ_ERR;
}

static int
cf_set_allow(struct cf_ctx *ctx, void *base, const struct cf_key *k,
             const char *v)
{
    struct config_pool *p = base;
    char *copy, *tok, *save = NULL;
    struct acl_cidr c, *arr;
    int rc = MQ_OK;

    (void)k;
    copy = strdup(v);
    if (copy == NULL) {
        return MQ_ERR;
    }
    for (tok = strtok_r(copy, " ,\t", &save); tok != NULL;
         tok = strtok_r(NULL, " ,\t", &save)) {
        if (acl_parse_cidr(tok, &c) != MQ_OK) {
            cf_error(ctx, "allow: '%s' is not an address or CIDR block",
                     tok);
            rc = MQ_ERR;
            continue;
        }
        arr = realloc(p->allow, (p->nallow + 1) * sizeof(*arr));
        if (arr == NULL) {
            rc = MQ_ERR;
            break;
        }
        p->allow = arr;
        arr[p->nallow++] = c;
    }
    free(copy);
    return rc;
}

static bool
cf_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) >= CONFIG_NAME_LEN) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!config_name_char((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}


/* backend = NAME HOST:PORT [weight=N] [backup] [max_conns=N] */
static int
cf_set_backend(struct cf_ctx *ctx, void *base, const struct cf_key *k,
               const char *v)
{
    struct config_pool *p = base;
    struct config_backend b, *arr;
    char *copy, *tok, *save = NULL;
    int n = 0, rc = MQ_OK;

    (void)k;
    memset(&b, 0, sizeof(b));
    b.weight = 1;
    b.line = ctx->line;
    copy = strdup(v);
    if (copy == NULL) {
        return MQ_ERR;
    }
    for (tok = strtok_r(copy, " \t", &save); tok != NULL && rc == MQ_OK;
         tok = strtok_r(NULL, " \t", &save), n++) {
        if (n == 0) {
            if (!cf_name_ok(tok)) {
                cf_error(ctx, "backend name '%s': use 1-63 of "
                         "[A-Za-z0-9_.-]", tok);
                rc = MQ_ERR;
            }
            snprintf(b.name, sizeof(b.name), "%s", tok);
        } else if (n == 1) {
            if (config_parse_addr(tok, &b.addr) != MQ_OK) {
                cf_error(ctx, "backend %s: address '%s': expected "
                         "HOST:PORT or [IPV6]:PORT", b.name, tok);
                rc = MQ_ERR;
            }
        } else if (strncmp(tok, "weight=", 7) == 0) {
            if (config_parse_uint(tok + 7, 0, 256, &b.weight) != MQ_OK) {
                cf_error(ctx, "backend %s: %s: weight is 0..256", b.name,
                         tok);
                rc = MQ_ERR;
            }
        } else if (strncmp(tok, "max_conns=", 10) == 0) {
            if (config_parse_uint(tok + 10, 0, 10000000, &b.max_conns)
                != MQ_OK) {
                cf_error(ctx, "backend %s: %s: max_conns is 0..10000000",
                         b.name, tok);
                rc = MQ_ERR;
            }
        } else if (strcmp(tok, "backup") == 0) {
            b.backup = 1;
        } else {
            cf_error(ctx, "backend %s: unknown option '%s' (weight=N, "
                     "backup, max_conns=N)", b.name, tok);
            rc = MQ_ERR;
        }
    }
    free(copy);
    if (rc == MQ_OK && n < 2) {
        cf_error(ctx, "backend = %s: expected NAME HOST:PORT [weight=N] "
                 "[backup] [max_conns=N]", v);
        rc = MQ_ERR;
    }
    if (rc != MQ_OK) {
        return rc;
    }
    b.addr.line = ctx->line;
    arr = realloc(p->backends, (p->nbackends + 1) * sizeof(*arr));
    if (arr == NULL) {
        return MQ_ERR;
    }
    p->backends = arr;
    arr[p->nbackends++] = b;
    return MQ_OK;
}

#define G(f)    offsetof(struct config, f)
#define P(f)    offsetof(struct config_pool, f)

static const struct cf_key cf_keys[] = {
    { CF_GLOBAL, "workers", cf_set_uint, G(workers), "0", 0, 256, 0 },
    { CF_GLOBAL, "max_connections", cf_set_uint, G(max_connections),
      "100000", 1, 10000000, 0 },
    { CF_GLOBAL, "log_level", cf_set_log_level, G(log_level), "info",
      0, 0, 0 },
    { CF_GLOBAL, "log_format", cf_set_format, G(log_format), "text",
      0, 0, 0 },
    { CF_GLOBAL, "shutdown_timeout", cf_set_duration,
      G(shutdown_timeout_ms), "30s", 0, 0, 0 },
    { CF_GLOBAL, "user", cf_set_string, G(user), "", 0, 0, 0 },
    { CF_ADMIN, "listen", cf_set_admin_listen, G(admin_listen),
      "127.0.0.1:9000", 0, 0, 0 },
    { CF_ADMIN, "token", cf_set_string, G(admin_token), "", 0, 0, 0 },
    { CF_POOL, "listen", cf_set_listen, 0, NULL, 0, 0, 1 },
    { CF_POOL, "balance", cf_set_balance, P(balance), "roundrobin",
      0, 0, 0 },
    { CF_POOL, "health_check", cf_set_check, P(check), "tcp", 0, 0, 0 },
    { CF_POOL, "check_interval", cf_set_duration, P(check_interval_ms),
      "2s", 1, 0, 0 },
    { CF_POOL, "check_timeout", cf_set_duration, P(check_timeout_ms),
      "1s", 1, 0, 0 },
    { CF_POOL, "rise", cf_set_uint, P(rise), "2", 1, 1000, 0 },
    { CF_POOL, "fall", cf_set_uint, P(fall), "3", 1, 1000, 0 },
    { CF_POOL, "check_send", cf_set_bytes, P(check_send), "", 0, 0, 0 },
    { CF_POOL, "check_expect", cf_set_bytes, P(check_expect), "", 0, 0, 0 },
    { CF_POOL, "check_path", cf_set_path, P(check_path), "/", 0, 0, 0 },
    { CF_POOL, "check_proxy_protocol", cf_set_check_pp,
      P(check_proxy_protocol), "auto", 0, 0, 0 },
    { CF_POOL, "check_user", cf_set_cred, P(check_user), "", 0, 0, 0 },
    { CF_POOL, "check_password", cf_set_cred, P(check_password), "",
      0, 0, 0 },
    { CF_POOL, "check_vhost", cf_set_cred, P(check_vhost), "", 0, 0, 0 },
    { CF_POOL, "connect_timeout", cf_set_duration, P(connect_timeout_ms),
      "3s", 1, 0, 0 },
    { CF_POOL, "idle_timeout", cf_set_duration, P(idle_timeout_ms), "1h",
      0, 0, 0 },
    { CF_POOL, "tcp_keepalive", cf_set_keepalive, P(keepalive), "off",
      0, 0, 0 },
    { CF_POOL, "retries", cf_set_uint, P(retries), "2", 0,
      CONFIG_MAX_BACKENDS, 0 },
    { CF_POOL, "max_fails", cf_set_uint, P(max_fails), "3", 0, 1000, 0 },
    { CF_POOL, "slow_start", cf_set_duration, P(slow_start_ms), "0s",
      0, 0, 0 },
    { CF_POOL, "on_backend_down", cf_set_on_down, 0, "keep", 0, 0, 0 },
    { CF_POOL, "max_conns_per_backend", cf_set_uint,
      P(max_conns_per_backend), "0", 0, 10000000, 0 },
    { CF_POOL, "max_conns_per_source", cf_set_uint,
      P(max_conns_per_source), "0", 0, 10000000, 0 },
    { CF_POOL, "proxy_protocol", cf_set_pp, P(proxy_protocol), "off",
      0, 0, 0 },
    { CF_POOL, "allow", cf_set_allow, 0, NULL, 0, 0, 1 },
    { CF_POOL, "backend", cf_set_backend, 0, NULL, 0, 0, 1 },
};

#undef G
#undef P

/* Set every key of <section> in <base> to its default. */
static void
cf_defaults(struct cf_ctx *ctx, enum cf_section section, void *base)
{
    size_t i;

    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        if (cf_keys[i].section == section && cf_keys[i].def != NULL) {
            cf_keys[i].parse(ctx, base, &cf_keys[i], cf_keys[i].def);
        }
    }
}

/* ---- sections and the inih handler --------------------------------- */

static void
cf_section_begin(struct cf_ctx *ctx, const char *header)
{
    char name[CONFIG_NAME_LEN + 1];
    struct config_pool *pools;
    const char *rest;
    size_t n;

    ctx->seen = 0;
    ctx->pool = NULL;
    ctx->section_line = ctx->line;
    if (strcmp(header, "global") == 0) {
        ctx->section = CF_GLOBAL;
        return;
    }
    if (strcmp(header, "admin") == 0) {
        ctx->section = CF_ADMIN;
        return;
    }
    if (strncmp(header, "pool", 4) == 0 && isspace((unsigned char)header[4])) {
        rest = header + 4;
        while (isspace((unsigned char)*rest)) {
            rest++;
        }
        n = strlen(rest);
        while (n > 0 && isspace((unsigned char)rest[n - 1])) {
            n--;
        }
        snprintf(name, sizeof(name), "%.*s", (int)MQ_MIN(n, CONFIG_NAME_LEN),
                 rest);
        ctx->section = CF_POOL;
        if (n >= CONFIG_NAME_LEN || !cf_name_ok(name)) {
            cf_error(ctx, "[pool %.*s]: a pool name is 1-63 of "
                     "[A-Za-z0-9_.-]", (int)n, rest);
            ctx->section = CF_UNKNOWN;
            return;
        }
        pools = realloc(ctx->cf->pools,
                        (ctx->cf->npools + 1) * sizeof(*pools));
        if (pools == NULL) {
            cf_error(ctx, "out of memory");
            ctx->section = CF_UNKNOWN;
            return;
        }
        ctx->cf->pools = pools;
        ctx->pool = &pools[ctx->cf->npools++];
        memset(ctx->pool, 0, sizeof(*ctx->pool));
        memcpy(ctx->pool->name, name, strlen(name) + 1);
        ctx->pool->line = ctx->line;
        cf_defaults(ctx, CF_POOL, ctx->pool);
        return;
    }
    cf_error(ctx, "unknown section [%s] (expected [global], [admin] or "
             "[pool NAME])", header);
    ctx->section = CF_UNKNOWN;
}

static int
cf_handler(void *user, const char *section, const char *name,
           const char *value)
{
    struct cf_ctx *ctx = user;
    void *base;
    size_t i;

    (void)section;      /* the reader tracked it, with its line */
    switch (ctx->section) {
    case CF_NONE:
        cf_error(ctx, "'%s' outside any section", name);
        return 1;
    case CF_UNKNOWN:
        return 1;
    case CF_POOL:
        base = ctx->pool;
        break;
    default:
        base = ctx->cf;
        break;
    }
    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        if (cf_keys[i].section != ctx->section ||
            strcmp(cf_keys[i].name, name) != 0) {
            continue;
        }
        if (!cf_keys[i].repeat && (ctx->seen & (1ULL << i))) {
            cf_error(ctx, "'%s' is set twice in this section", name);
            return 1;
        }
        ctx->seen |= 1ULL << i;
        cf_keys[i].parse(ctx, base, &cf_keys[i], value);
        return 1;
    }
    cf_error(ctx, "unknown key '%s' in [%s]", name,
             ctx->section == CF_POOL ? "pool" :
             ctx->section == CF_ADMIN ? "admin" : "global");
    return 1;
}

/*
 * The line reader handed to ini_parse_stream. It counts lines, notes
 * section headers, strips leading blanks, and turns lines inih would
 * mangle (too long, no '=' ) into reported errors and blank lines.
 */
static char *
cf_reader(char *str, int num, void *stream)
{
    struct cf_ctx *ctx = stream;
    const char *start, *end, *p;
    size_t len;
    char header[256];

    if (ctx->text[ctx->pos] == '\0') {
        return NULL;
    }
    start = ctx->text + ctx->pos;
    end = strchr(start, '\n');
    len = end != NULL ? (size_t)(end - start) : strlen(start);
    ctx->pos += len + (end != NULL ? 1 : 0);
    ctx->line++;
    if (len > 0 && start[len - 1] == '\r') {
        len--;
    }
    while (len > 0 && (*start == ' ' || *start == '\t')) {
        start++;
        len--;
    }
    if (len + 2 > (size_t)num) {
        cf_error(ctx, "line too long (%zu characters; at most %d)", len,
                 num - 2);
        strcpy(str, "\n");
        return str;
    }
    if (len == 0 || *start == ';' || *start == '#') {
        strcpy(str, "\n");
        return str;
    }
    if (*start == '[') {
        p = memchr(start, ']', len);
        if (p == NULL || (size_t)(p - start) - 1 >= sizeof(header)) {
            cf_error(ctx, "section header without ']'");
            ctx->section = CF_UNKNOWN;
            strcpy(str, "\n");
            return str;
        }
        memcpy(header, start + 1, (size_t)(p - start) - 1);
        header[p - start - 1] = '\0';
        cf_section_begin(ctx, header);
    } else if (memchr(start, '=', len) == NULL) {
        cf_error(ctx, "expected 'key = value'");
        strcpy(str, "\n");
        return str;
    }
    memcpy(str, start, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

/* ---- validation ------------------------------------------------------ */

static bool
cf_addr_is_loopback(const struct config_addr *a)
{
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

    if (a->ss.ss_family == AF_INET) {
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

static bool
cf_addr_equal(const struct config_addr *a, const struct config_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/*
 * check_user / check_password / check_vhost must mean something to the
 * pool's check: which kinds log in, and with what (MQTT has no password
 * without a user name; AMQP PLAIN needs both).
 */
static void
cf_validate_check_login(struct cf_ctx *ctx, const struct config_pool *p)
{
    const char *kind = cf_check_names[p->check];
    bool user = p->check_user != NULL, pass = p->check_password != NULL;

    if (p->check_vhost != NULL && p->check != CHECK_AMQP) {
        cf_error_at(ctx, p->line, "[pool %s]: check_vhost is for "
                    "health_check = amqp, not %s", p->name, kind);
    }
    if (p->check_vhost != NULL && p->check == CHECK_AMQP && !user) {
        cf_error_at(ctx, p->line, "[pool %s]: check_vhost needs check_user "
                    "and check_password (the check opens the vhost after "
                    "logging in)", p->name);
    }
    if (!user && !pass) {
        return;
    }
    switch (p->check) {
    case CHECK_REDIS:
    case CHECK_REDIS_MASTER:
    case CHECK_NATS:
        if (user && !pass) {
            cf_error_at(ctx, p->line, "[pool %s]: check_user needs "
                        "check_password for health_check = %s", p->name,
                        kind);
        }
        break;
    case CHECK_MQTT:
        if (pass && !user) {
            cf_error_at(ctx, p->line, "[pool %s]: check_password needs "
                        "check_user for health_check = mqtt (MQTT sends no "
                        "password without a user name)", p->name);
        }
        break;
    case CHECK_AMQP:
        if (!user || !pass) {
            cf_error_at(ctx, p->line, "[pool %s]: health_check = amqp logs "
                        "in with both check_user and check_password",
                        p->name);
        }
        break;
    case CHECK_HTTP:
        if (user && strchr(p->check_user, ':') != NULL) {
            cf_error_at(ctx, p->line, "[pool %s]: check_user may not "
                        "contain ':' for HTTP Basic authorization", p->name);
        }
        break;
    default:
        cf_error_at(ctx, p->line, "[pool %s]: health_check = %s does not "
                    "log in; check_user and check_password are for redis, "
                    "redis-master, mqtt, nats, amqp and http", p->name,
                    kind);
        break;
    }
}

static void
cf_validate_pool(struct cf_ctx *ctx, struct config_pool *p)
{
    size_t i, j;

    if (p->nlistens == 0) {
        cf_error_at(ctx, p->line, "[pool %s]: no 'listen' address",
                    p->name);
    }
    if (p->nbackends == 0) {
        cf_error_at(ctx, p->line, "[pool %s]: no 'backend'", p->name);
    }
    if (p->nbackends > CONFIG_MAX_BACKENDS) {
        cf_error_at(ctx, p->line, "[pool %s]: more than %d backends",
                    p->name, CONFIG_MAX_BACKENDS);
    }
    for (i = 0; i < p->nbackends; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(p->backends[i].name, p->backends[j].name) == 0) {
                cf_error_at(ctx, p->backends[i].line, "[pool %s]: "
                            "duplicate backend name '%s' (first on line "
                            "%d)", p->name, p->backends[i].name,
                            p->backends[j].line);
            }
        }
        if (p->backends[i].max_conns == 0) {
            p->backends[i].max_conns = p->max_conns_per_backend;
        }
    }
    for (i = 0; i < p->nlistens; i++) {
        for (j = 0; j < i; j++) {
            if (cf_addr_equal(&p->listens[i], &p->listens[j])) {
                cf_error_at(ctx, p->listens[i].line, "[pool %s]: listen "
                            "%s is given twice", p->name,
                            p->listens[i].text);
            }
        }
    }
    if (p->check == CHECK_SEND_EXPECT && p->check_expect_len == 0) {
        cf_error_at(ctx, p->line, "[pool %s]: health_check = send-expect "
                    "needs check_expect", p->name);
    }
    cf_validate_check_login(ctx, p);
    if ((p->check_proxy_protocol == CHECK_PP_ON ||
         p->check_proxy_protocol == CHECK_PP_ADDRESSES) &&
        p->proxy_protocol == PROXY_PROTOCOL_OFF) {
        cf_error_at(ctx, p->line, "[pool %s]: check_proxy_protocol = %s "
                    "needs proxy_protocol = v1 or v2 (the checks send the "
                    "pool's version)", p->name,
                    cf_check_pp_names[p->check_proxy_protocol]);
    }
    if (p->check_timeout_ms > p->check_interval_ms) {
        cf_error_at(ctx, p->line, "[pool %s]: check_timeout is longer than "
                    "check_interval", p->name);
    }
}

static void
cf_validate(struct cf_ctx *ctx)
{
    struct config *cf = ctx->cf;
    size_t i, j, k, l;
    long ncpu;

    for (i = 0; i < cf->npools; i++) {
        cf_validate_pool(ctx, &cf->pools[i]);
        for (j = 0; j < i; j++) {
            if (strcmp(cf->pools[i].name, cf->pools[j].name) == 0) {
                cf_error_at(ctx, cf->pools[i].line, "duplicate pool name "
                            "'%s' (first on line %d)", cf->pools[i].name,
                            cf->pools[j].line);
            }
            for (k = 0; k < cf->pools[i].nlistens; k++) {
                for (l = 0; l < cf->pools[j].nlistens; l++) {
                    if (cf_addr_equal(&cf->pools[i].listens[k],
                                      &cf->pools[j].listens[l])) {
                        cf_error_at(ctx, cf->pools[i].listens[k].line,
                                    "listen %s is already used by pool "
                                    "'%s'", cf->pools[i].listens[k].text,
                                    cf->pools[j].name);
                    }
                }
            }
        }
    }
    if (cf->npools == 0) {
        cf_error_at(ctx, ctx->line > 0 ? ctx->line : 1,
                    "no [pool NAME] section");
    }
    if (!cf_addr_is_loopback(&cf->admin_listen) && cf->admin_token == NULL) {
        cf_error_at(ctx, cf->admin_listen.line > 0 ? cf->admin_listen.line
                    : 1, "[admin] listen %s is not loopback: set a token",
                    cf->admin_listen.text);
    }
    if (cf->workers == 0) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cf->workers = ncpu > 0 ? (unsigned)ncpu : 1;
    }
}

static void
cf_pool_deinit(struct config_pool *p)
{
    mq_free(p->listens);
    mq_free(p->check_send);
    mq_free(p->check_expect);
    mq_free(p->check_path);
    mq_free(p->check_user);
    mq_free(p->check_password);
    mq_free(p->check_vhost);
    mq_free(p->allow);
    mq_free(p->backends);
}

void
config_destroy(struct config *cf)
{
    size_t i;

    if (cf == NULL) {
        return;
    }
    for (i = 0; i < cf->npools; i++) {
        cf_pool_deinit(&cf->pools[i]);
    }
    mq_free(cf->pools);
    mq_free(cf->path);
    mq_free(cf->user);
    mq_free(cf->admin_token);
    free(cf);
}

static int
cf_error_line(const char *msg)
{
    const char *p = strchr(msg, ':');

    return p != NULL ? atoi(p + 1) : 0;
}

/* Report in file order: validation runs after parsing. (Insertion sort:
 * stable, and error lists are short.) */
static void
cf_sort_errors(struct config_errors *errs)
{
    size_t i, j;
    char *m;

    for (i = 1; i < errs->nmsgs; i++) {
        m = errs->msgs[i];
        for (j = i; j > 0 && cf_error_line(errs->msgs[j - 1])
                             > cf_error_line(m); j--) {
            errs->msgs[j] = errs->msgs[j - 1];
        }
        errs->msgs[j] = m;
    }
}

struct config *
config_load_string(const char *text, const char *name,
                   struct config_errors *errs)
{
    struct cf_ctx ctx;
    struct config *cf;
    int rc;

    cf = calloc(1, sizeof(*cf));
    if (cf == NULL) {
        return NULL;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.name = name;
    ctx.text = text;
    ctx.cf = cf;
    ctx.errs = errs;
    cf->path = strdup(name);
    cf_defaults(&ctx, CF_GLOBAL, cf);
    cf_defaults(&ctx, CF_ADMIN, cf);
    cf->admin_listen.line = 0;

    rc = ini_parse_stream(cf_reader, &ctx, cf_handler, &ctx);
    if (rc > 0) {
        /* Our reader hides the usual syntax errors; this is the rest. */
        cf_error_at(&ctx, rc, "syntax error");
    } else if (rc == -2) {
        cf_error_at(&ctx, ctx.line, "out of memory");
    }
    cf_validate(&ctx);
    cf_sort_errors(errs);
    if (ctx.nerrs > 0) {
        config_destroy(cf);
        return NULL;
    }
    return cf;
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
    struct config *cf = NULL;
    struct cf_ctx ctx;
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    FILE *f;

    f = fopen(path, "r");
    if (f == NULL) {
        memset(&ctx, 0, sizeof(ctx));
        ctx.name = path;
        ctx.errs = errs;
        cf_error_at(&ctx, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *t = realloc(text, cap + 65536);

            if (t == NULL) {
                goto out;
            }
            text = t;
            cap += 65536;
        }
        n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL) {
        memset(&ctx, 0, sizeof(ctx));
        ctx.name = path;
        ctx.errs = errs;
        cf_error_at(&ctx, 1, "file contains a NUL byte");
        goto out;
    }
    cf = config_load_string(text, path, errs);
out:
    free(text);
    fclose(f);
    return cf;
}

/* ---- dump ------------------------------------------------------------ */

static void
cf_dump_ms(FILE *out, const char *key, uint64_t ms)
{
    if (ms % 3600000 == 0 && ms > 0) {
        fprintf(out, "%s = %lluh\n", key, (unsigned long long)(ms / 3600000));
    } else if (ms % 60000 == 0 && ms > 0) {
        fprintf(out, "%s = %llum\n", key, (unsigned long long)(ms / 60000));
    } else if (ms % 1000 == 0) {
        fprintf(out, "%s = %llus\n", key, (unsigned long long)(ms / 1000));
    } else {
        fprintf(out, "%s = %llums\n", key, (unsigned long long)ms);
    }
}

void
config_dump(const struct config *cf, FILE *out)
{
    const struct config_pool *p;
    const struct config_backend *b;
    size_t i, j;

    fprintf(out, "[global]\nworkers = %u\nmax_connections = %u\n"
            "log_level = %s\nlog_format = %s\n", cf->workers,
            cf->max_connections, log_level_name(cf->log_level),
            cf_format_names[cf->log_format]);
    cf_dump_ms(out, "shutdown_timeout", cf->shutdown_timeout_ms);
    if (cf->user != NULL) {
        fprintf(out, "user = %s\n", cf->user);
    }
    fprintf(out, "\n[admin]\nlisten = %s\ntoken = %s\n",
            cf->admin_listen.text, cf->admin_token != NULL ? "(set)" : "");
    for (i = 0; i < cf->npools; i++) {
        p = &cf->pools[i];
        fprintf(out, "\n[pool %s]\n", p->name);
        for (j = 0; j < p->nlistens; j++) {
            fprintf(out, "listen = %s\n", p->listens[j].text);
        }
        fprintf(out, "balance = %s\nhealth_check = %s\n",
                cf_balance_names[p->balance], cf_check_names[p->check]);
        cf_dump_ms(out, "check_interval", p->check_interval_ms);
        cf_dump_ms(out, "check_timeout", p->check_timeout_ms);
        fprintf(out, "rise = %u\nfall = %u\n", p->rise, p->fall);
        if (p->check == CHECK_HTTP) {
            fprintf(out, "check_path = %s\n", p->check_path);
        }
        fprintf(out, "check_proxy_protocol = %s\n",
                cf_check_pp_names[p->check_proxy_protocol]);
        if (p->check_user != NULL) {
            fprintf(out, "check_user = %s\n", p->check_user);
        }
        if (p->check_password != NULL) {
            fprintf(out, "check_password = <set>\n");
        }
        if (p->check_vhost != NULL) {
            fprintf(out, "check_vhost = %s\n", p->check_vhost);
        }
        cf_dump_ms(out, "connect_timeout", p->connect_timeout_ms);
        cf_dump_ms(out, "idle_timeout", p->idle_timeout_ms);
        if (p->keepalive.on) {
            fprintf(out, "tcp_keepalive = %us:%us:%u\n", p->keepalive.idle_s,
                    p->keepalive.interval_s, p->keepalive.count);
        } else {
            fprintf(out, "tcp_keepalive = off\n");
        }
        fprintf(out, "retries = %u\nmax_fails = %u\n", p->retries,
                p->max_fails);
        cf_dump_ms(out, "slow_start", p->slow_start_ms);
        fprintf(out, "on_backend_down = %s\nmax_conns_per_backend = %u\n"
                "max_conns_per_source = %u\nproxy_protocol = %s\n",
                p->close_on_down ? "close" : "keep",
                p->max_conns_per_backend, p->max_conns_per_source,
                cf_pp_names[p->proxy_protocol]);
        if (p->nallow > 0) {
            fprintf(out, "allow = (%zu blocks)\n", p->nallow);
        }
        for (j = 0; j < p->nbackends; j++) {
            b = &p->backends[j];
            fprintf(out, "backend = %s %s weight=%u%s", b->name,
                    b->addr.text, b->weight, b->backup ? " backup" : "");
            if (b->max_conns > 0) {
                fprintf(out, " max_conns=%u", b->max_conns);
            }
            fputc('\n', out);
        }
    }
}
