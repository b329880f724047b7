/*
 * config.c: the INI file. inih splits lines into section/key/value; a
 * reader of our own feeds it one line at a time so that every message can
 * name FILE:LINE (Debian's inih does not pass line numbers), strips leading
 * blanks (so indentation never turns into inih's multi-line values) and
 * reports over-long lines instead of letting inih cut them.
 *
 * One key table lists every key once: its section, value type, field,
 * default and bounds. A value type is a parser, a printer and an equal
 * function side by side, so the defaults, `mqlb -t` output
 * (config_dump), the reload diff (config_pool_changes) and freeing are
 * walks over the table: a new key is one row.
 *
 * Two passes, as nginx does: a section starts with every key at its
 * default (parsed from the same key table), the handler overwrites what the
 * file sets; when a [pool] ends, the defaults that depend on other keys
 * and the checks within it run (cf_pool_finish), and at the end of the
 * file cf_validate() checks what spans sections. Every error is
 * collected, at the line of the key at fault, and reported in line order.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <netdb.h>
#include <pwd.h>
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
#include "mqlb/resolver.h"

/* A backend host name at load: c-ares tries each resolver twice, 1s each. */
#define CF_RESOLVE_TIMEOUT_MS   2500

enum cf_section {
    CF_NONE = 0,        /* before any section header */
    CF_GLOBAL,
    CF_ADMIN,
    CF_POOL,
    CF_UNKNOWN,         /* reported once, its keys ignored */
};

struct cf_ctx;
struct cf_key;

/* A value type: how its text is read, printed back, and compared. */
typedef int (*cf_parse_t)(struct cf_ctx *ctx, void *base,
                          const struct cf_key *k, const char *value);
typedef void (*cf_print_t)(FILE *out, const struct cf_key *k,
                           const void *base);
typedef bool (*cf_equal_t)(const struct cf_key *k, const void *a,
                           const void *b);

struct cf_type {
    cf_parse_t          parse;      /* text -> field; errors via ctx */
    cf_print_t          print;      /* field -> lines parse reads back */
    cf_equal_t          equal;      /* same value in two configs */
    unsigned            owns:1;     /* the field is a malloc'd pointer */
};

/* One row of the key table: where a key lives and how it is handled. */
struct cf_key {
    enum cf_section     section;
    const char         *name;
    const struct cf_type *type;
    size_t              offset;     /* into struct config or config_pool */
    size_t              len_offset; /* bytes: their length; lists: count */
    const char *const  *names;      /* keywords of an enum (NULL-ended) */
    const char         *def;        /* default, parsed like the file */
    unsigned            min;        /* bounds for integers */
    unsigned            max;
    unsigned            repeat:1;   /* may appear more than once */
    unsigned            secret:1;   /* printed as <set> */
    const char         *group;      /* pool: what a reload says changed */
};

#define CF_MAX_KEYS 128             /* rows cf_ctx.seen has room for */

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
    int                 seen[CF_MAX_KEYS]; /* line each key of this
                                               section was set on, or 0 */
    struct config_errors *errs;
    size_t              first_err;  /* errs->msgs index of our first */
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
 * "host:port", "[v6]:port", "*:port" or ":port" (the last two: every IPv4
 * address, as HAProxy reads them). Names are resolved once, here, as
 * nginx does at start-up; a name with several addresses gives the first
 * getaddrinfo() returns (RFC 6724 order, /etc/gai.conf). On error, <err>
 * says what is wrong in the user's terms.
 */
int
config_parse_addr_err(const char *text, struct config_addr *out, char *err,
                      size_t errlen)
{
    char host[256];
    const char *colon, *port, *start;
    struct addrinfo hints, *res;
    struct in_addr a4;
    unsigned portnum;
    size_t hlen;
    int rc;

    if (text[0] == '[') {
        colon = strchr(text, ']');
        if (colon == NULL || colon[1] != ':') {
            snprintf(err, errlen, "expected [IPV6]:PORT");
            return MQ_ERR;
        }
        start = text + 1;
        hlen = (size_t)(colon - start);
        port = colon + 2;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "expected HOST:PORT, :PORT or "
                     "[IPV6]:PORT");
            return MQ_ERR;
        }
        if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
            snprintf(err, errlen, "an IPv6 address goes in brackets: "
                     "[IPV6]:PORT");
            return MQ_ERR;
        }
        start = text;
        hlen = (size_t)(colon - text);
        port = colon + 1;
    }
    if (strlen(text) >= sizeof(out->text)) {
        snprintf(err, errlen, "longer than %zu characters",
                 sizeof(out->text) - 1);
        return MQ_ERR;
    }
    if (hlen >= sizeof(host)) {
        snprintf(err, errlen, "host name longer than %zu characters",
                 sizeof(host) - 1);
        return MQ_ERR;
    }
    memcpy(host, start, hlen);
    host[hlen] = '\0';
    if (*port == '\0') {
        snprintf(err, errlen, "no port after ':'");
        return MQ_ERR;
    }
    if (strspn(port, "0123456789") != strlen(port)) {
        snprintf(err, errlen, "port '%s' is not a number", port);
        return MQ_ERR;
    }
    if (config_parse_uint(port, 1, 65535, &portnum) != MQ_OK) {
        snprintf(err, errlen, "port %s is out of range (1-65535)", port);
        return MQ_ERR;
    }
    if (text[0] == '[') {
        if (hlen == 0) {
            snprintf(err, errlen, "no address between [ and ]");
            return MQ_ERR;
        }
    } else if (hlen == 0 || strcmp(host, "*") == 0) {
        strcpy(host, "0.0.0.0");
    } else if (strspn(host, "0123456789.") == hlen &&
               inet_pton(AF_INET, host, &a4) != 1) {
        /* getaddrinfo would take "1.2.3" as 1.2.0.3 */
        snprintf(err, errlen, "'%s' is not an IPv4 address", host);
        return MQ_ERR;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (text[0] == '[' ? AI_NUMERICHOST : 0);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        if (text[0] == '[') {
            snprintf(err, errlen, "'%s' is not an IPv6 address", host);
        } else {
            snprintf(err, errlen, "host '%s' does not resolve: %s", host,
                     rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        }
        return MQ_ERR;
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(out->text, sizeof(out->text), "%s", text);
    return MQ_OK;
}

int
config_split_hostport(const char *text, char *host, size_t hostlen,
                      unsigned *port)
{
    const char *colon, *ps;
    size_t hlen;

    if (text[0] == '[') {
        colon = strchr(text, ']');
        if (colon == NULL || colon[1] != ':') {
            return MQ_ERR;
        }
        hlen = (size_t)(colon - text - 1);
        ps = colon + 2;
        text++;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || memchr(text, ':', (size_t)(colon - text))) {
            return MQ_ERR;
        }
        hlen = (size_t)(colon - text);
        ps = colon + 1;
    }
    if (hlen == 0 || hlen >= hostlen) {
        return MQ_ERR;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    return config_parse_uint(ps, 1, 65535, port);
}

bool
config_host_is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

int
config_parse_addr(const char *text, struct config_addr *out)
{
    char err[MQ_ERR_LEN];

    return config_parse_addr_err(text, out, err, sizeof(err));
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

/* ---- did you mean ---------------------------------------------------- */

/* Edit distance of <a> and <b> (Levenshtein); keys are short. */
static size_t
cf_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, diag, up;
    size_t row[CONFIG_NAME_LEN + 1];

    if (la > CONFIG_NAME_LEN || lb > CONFIG_NAME_LEN) {
        return SIZE_MAX;
    }
    for (j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (i = 1; i <= la; i++) {
        diag = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            up = row[j];
            row[j] = MQ_MIN(MQ_MIN(row[j] + 1, row[j - 1] + 1),
                            diag + (a[i - 1] != b[j - 1]));
            diag = up;
        }
    }
    return row[lb];
}

/* Whether <cand> is close enough to <name> to be what the user meant. */
static bool
cf_is_near(const char *name, const char *cand, size_t *best)
{
    size_t d = cf_distance(name, cand), len = strlen(name);
    size_t limit = len <= 3 ? 1 : len <= 8 ? 2 : 3;

    if (d > limit || d >= *best) {
        return false;
    }
    *best = d;
    return true;
}

/* The word of <names> (NULL-ended) nearest to <name>, or NULL. */
static const char *
cf_nearest(const char *const *names, const char *name)
{
    const char *near = NULL;
    size_t best = SIZE_MAX, i;

    for (i = 0; names[i] != NULL; i++) {
        if (cf_is_near(name, names[i], &best)) {
            near = names[i];
        }
    }
    return near;
}

/* ---- value types: parse, print and compare, side by side -------------
 *
 * A parser writes the field at <base> + k->offset (and the length or
 * count at <base> + k->len_offset); a printer writes the "key = value"
 * lines its parser reads back to the same value; an equal function says
 * whether two configs hold the same value. -t output, the reload diff
 * and the defaults are walks over the one key table below, so a new key
 * is one row.
 */

#define CF_FIELD(base, off, type)   ((type *)((char *)(base) + (off)))
#define CF_CFIELD(base, off, type)  \
    ((const type *)((const char *)(base) + (off)))

/* uint: a bounded whole number; k->names[0], if given, is a keyword for 0 */
static int
cf_uint_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    unsigned *field = CF_FIELD(base, k->offset, unsigned);

    if (k->names != NULL && strcmp(v, k->names[0]) == 0) {
        *field = 0;
        return MQ_OK;
    }
    if (config_parse_uint(v, k->min, k->max, field) != MQ_OK) {
        cf_error(ctx, "%s = %s: expected %s%sa whole number from %u to %u",
                 k->name, v, k->names != NULL ? k->names[0] : "",
                 k->names != NULL ? " or " : "", k->min, k->max);
        return MQ_ERR;
    }
    return MQ_OK;
}

static void
cf_uint_print(FILE *out, const struct cf_key *k, const void *base)
{
    unsigned v = *CF_CFIELD(base, k->offset, unsigned);

    if (k->names != NULL && v == 0) {
        fprintf(out, "%s = %s\n", k->name, k->names[0]);
    } else {
        fprintf(out, "%s = %u\n", k->name, v);
    }
}

static bool
cf_uint_equal(const struct cf_key *k, const void *a, const void *b)
{
    return *CF_CFIELD(a, k->offset, unsigned) ==
           *CF_CFIELD(b, k->offset, unsigned);
}

/* duration: milliseconds in a uint64_t; k->min > 0 refuses 0 */
static int
cf_duration_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
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
    *CF_FIELD(base, k->offset, uint64_t) = ms;
    return MQ_OK;
}

/* <ms> in the largest unit that keeps it whole: 90s, 2m, 1500ms, 0s. */
static void
cf_print_ms(FILE *out, uint64_t ms)
{
    unsigned long long v = (unsigned long long)ms;

    if (ms > 0 && ms % 3600000 == 0) {
        fprintf(out, "%lluh", v / 3600000);
    } else if (ms > 0 && ms % 60000 == 0) {
        fprintf(out, "%llum", v / 60000);
    } else if (ms % 1000 == 0) {
        fprintf(out, "%llus", v / 1000);
    } else {
        fprintf(out, "%llums", v);
    }
}

static void
cf_duration_print(FILE *out, const struct cf_key *k, const void *base)
{
    fprintf(out, "%s = ", k->name);
    cf_print_ms(out, *CF_CFIELD(base, k->offset, uint64_t));
    fputc('\n', out);
}

static bool
cf_duration_equal(const struct cf_key *k, const void *a, const void *b)
{
    return *CF_CFIELD(a, k->offset, uint64_t) ==
           *CF_CFIELD(b, k->offset, uint64_t);
}

/* enum: a keyword of k->names; its index is stored as an int */
static int
cf_enum_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    char choices[256];
    const char *near;
    size_t i, n = 0;

    for (i = 0; k->names[i] != NULL; i++) {
        if (strcmp(v, k->names[i]) == 0) {
            *CF_FIELD(base, k->offset, int) = (int)i;
            return MQ_OK;
        }
        n += (size_t)snprintf(choices + n, sizeof(choices) - n, "%s%s",
                              i == 0 ? "" : " | ", k->names[i]);
    }
    near = cf_nearest(k->names, v);
    cf_error(ctx, "%s = %s: expected %s%s%s%s", k->name, v, choices,
             near != NULL ? ", did you mean '" : "", near != NULL ? near : "",
             near != NULL ? "'?" : "");
    return MQ_ERR;
}

static void
cf_enum_print(FILE *out, const struct cf_key *k, const void *base)
{
    fprintf(out, "%s = %s\n", k->name,
            k->names[*CF_CFIELD(base, k->offset, int)]);
}

static bool
cf_int_equal(const struct cf_key *k, const void *a, const void *b)
{
    return *CF_CFIELD(a, k->offset, int) == *CF_CFIELD(b, k->offset, int);
}

/* log_level: the names log.c knows, in its order */
static int
cf_log_level_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                   const char *v)
{
    int level = log_level_parse(v);

    if (level < 0) {
        cf_error(ctx, "%s = %s: expected error | warn | notice | info | "
                 "debug", k->name, v);
        return MQ_ERR;
    }
    *CF_FIELD(base, k->offset, int) = level;
    return MQ_OK;
}

static void
cf_log_level_print(FILE *out, const struct cf_key *k, const void *base)
{
    fprintf(out, "%s = %s\n", k->name,
            log_level_name(*CF_CFIELD(base, k->offset, int)));
}

/* string: owned copy, NULL when empty; k->secret prints as <set> */
static int
cf_string_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                const char *v)
{
    char **field = CF_FIELD(base, k->offset, char *);

    mq_free(*field);
    if (*v != '\0') {
        *field = strdup(v);
        if (*field == NULL) {
            cf_error(ctx, "%s: out of memory", k->name);
            return MQ_ERR;
        }
    }
    return MQ_OK;
}

/* resolvers: a resolv.conf path or a list of IP[:PORT] */
static int
cf_resolvers_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                   const char *v)
{
    char csv[1024], err[MQ_ERR_LEN];

    ctx->cf->resolvers_bad = 0;
    if (cf_string_parse(ctx, base, k, v) != MQ_OK) {
        return MQ_ERR;
    }
    if (v[0] == '/' && access(v, R_OK) == -1) {
        cf_error(ctx, "%s = %s: %s", k->name, v, strerror(errno));
        ctx->cf->resolvers_bad = 1;
        return MQ_ERR;
    }
    if (v[0] != '\0' && v[0] != '/' &&
        resolver_servers_csv(v, csv, sizeof(csv), err) != MQ_OK) {
        cf_error(ctx, "%s = %s: %s", k->name, v, err);
        ctx->cf->resolvers_bad = 1;
        return MQ_ERR;
    }
    return MQ_OK;
}

/* resolve_interval: DNS is asked at most once a second */
static int
cf_interval_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                  const char *v)
{
    if (cf_duration_parse(ctx, base, k, v) != MQ_OK) {
        return MQ_ERR;
    }
    if (*CF_FIELD(base, k->offset, uint64_t) < 1000) {
        cf_error(ctx, "%s = %s: at least 1s (DNS is never asked more than "
                 "once a second)", k->name, v);
        return MQ_ERR;
    }
    return MQ_OK;
}

static void
cf_string_print(FILE *out, const struct cf_key *k, const void *base)
{
    const char *v = *CF_CFIELD(base, k->offset, char *);

    if (v == NULL) {
        fprintf(out, "%s =\n", k->name);
    } else {
        fprintf(out, "%s = %s\n", k->name, k->secret ? "<set>" : v);
    }
}

static bool
cf_string_equal(const struct cf_key *k, const void *a, const void *b)
{
    const char *x = *CF_CFIELD(a, k->offset, char *);
    const char *y = *CF_CFIELD(b, k->offset, char *);

    return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* user: a string naming an existing user (checked now, not at the drop) */
static int
cf_user_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    if (*v != '\0' && getpwnam(v) == NULL) {
        cf_error(ctx, "%s = %s: no such user on this system", k->name, v);
        return MQ_ERR;
    }
    return cf_string_parse(ctx, base, k, v);
}

/*
 * cred: check_user, check_password, check_vhost: a string of at most
 * CONFIG_CRED_MAX bytes (an AMQP short string; every probe's request
 * stays bounded).
 */
static int
cf_cred_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    if (strlen(v) > CONFIG_CRED_MAX) {
        cf_error(ctx, "%s: at most %d characters", k->name,
                 CONFIG_CRED_MAX);
        return MQ_ERR;
    }
    return cf_string_parse(ctx, base, k, v);
}

/*
 * hosts: [admin] allowed_hosts, host names separated by blanks or commas,
 * each of [A-Za-z0-9.-] (at most 253 characters).
 */
static int
cf_hosts_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
               const char *v)
{
    size_t n, i;
    const char *p = v;

    while (*p != '\0') {
        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        for (i = 0; i < n; i++) {
            if (!isalnum((unsigned char)p[i]) && p[i] != '.' &&
                p[i] != '-') {
                break;
            }
        }
        if (i < n || n > 253) {
            cf_error(ctx, "%s: '%.*s' is not a host name", k->name,
                     (int)MQ_MIN(n, 64), p);
            return MQ_ERR;
        }
        p += n;
    }
    return cf_string_parse(ctx, base, k, v);
}

/* path: a string starting with '/', no blanks */
static int
cf_path_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    if (v[0] != '/' || strpbrk(v, " \t\r\n") != NULL) {
        cf_error(ctx, "%s = %s: expected a path starting with '/'",
                 k->name, v);
        return MQ_ERR;
    }
    return cf_string_parse(ctx, base, k, v);
}

/* file: empty (none) or an absolute path, no blanks */
static int
cf_file_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    if (*v == '\0') {
        return cf_string_parse(ctx, base, k, v);
    }
    if (v[0] != '/' || strpbrk(v, " \t\r\n") != NULL) {
        cf_error(ctx, "%s = %s: expected an absolute file path (starting "
                 "with '/')", k->name, v);
        return MQ_ERR;
    }
    return cf_string_parse(ctx, base, k, v);
}

/* bytes: C escapes unescaped; the length (size_t) at k->len_offset */
static int
cf_bytes_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
               const char *v)
{
    char **field = CF_FIELD(base, k->offset, char *);
    size_t *len = CF_FIELD(base, k->len_offset, size_t);
    char *bytes;
    size_t n;

    if (config_unescape(v, &bytes, &n) != MQ_OK) {
        cf_error(ctx, "%s = %s: bad escape (use \\r \\n \\t \\\\ \\xHH)",
                 k->name, v);
        return MQ_ERR;
    }
    free(*field);
    *field = bytes;
    *len = n;
    return MQ_OK;
}

/*
 * Printed so that the reader and inih give the same bytes back: escapes
 * for what is not printable, for '\' itself, and for ';' and '#' (which
 * could start a comment) and blanks at either end (which inih strips).
 */
static void
cf_bytes_print(FILE *out, const struct cf_key *k, const void *base)
{
    const unsigned char *p = *CF_CFIELD(base, k->offset, unsigned char *);
    size_t n = *CF_CFIELD(base, k->len_offset, size_t), i;

    fprintf(out, "%s =%s", k->name, n > 0 ? " " : "");
    for (i = 0; i < n; i++) {
        switch (p[i]) {
        case '\r': fputs("\\r", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\\': fputs("\\\\", out); break;
        default:
            if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == ';' || p[i] == '#' ||
                (p[i] == ' ' && (i == 0 || i == n - 1))) {
                fprintf(out, "\\x%02x", p[i]);
            } else {
                fputc(p[i], out);
            }
        }
    }
    fputc('\n', out);
}

static bool
cf_bytes_equal(const struct cf_key *k, const void *a, const void *b)
{
    size_t n = *CF_CFIELD(a, k->len_offset, size_t);

    return n == *CF_CFIELD(b, k->len_offset, size_t) &&
           (n == 0 || memcmp(*CF_CFIELD(a, k->offset, char *),
                             *CF_CFIELD(b, k->offset, char *), n) == 0);
}

/* addr: one address, kept as written for printing */
static int
cf_addr_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    struct config_addr *a = CF_FIELD(base, k->offset, struct config_addr);
    char err[MQ_ERR_LEN];

    if (config_parse_addr_err(v, a, err, sizeof(err)) != MQ_OK) {
        cf_error(ctx, "%s = %s: %s", k->name, v, err);
        return MQ_ERR;
    }
    a->line = ctx->line;
    return MQ_OK;
}

static void
cf_addr_print(FILE *out, const struct cf_key *k, const void *base)
{
    fprintf(out, "%s = %s\n", k->name,
            CF_CFIELD(base, k->offset, struct config_addr)->text);
}

static bool
cf_addr_key_equal(const struct cf_key *k, const void *a, const void *b)
{
    return config_addr_equal(CF_CFIELD(a, k->offset, struct config_addr),
                         CF_CFIELD(b, k->offset, struct config_addr));
}

/*
 * Append the <elem_size> bytes at <elem> to a list key: the array pointer
 * is at k->offset, its length at k->len_offset; each line of the key
 * appends one or more elements. MQ_ERR, reported, on no memory.
 */
static int
cf_list_push(struct cf_ctx *ctx, void *base, const struct cf_key *k,
             const void *elem, size_t elem_size)
{
    void **arr = CF_FIELD(base, k->offset, void *);
    size_t *n = CF_FIELD(base, k->len_offset, size_t);
    char *grown;

    grown = realloc(*arr, (*n + 1) * elem_size);
    if (grown == NULL) {
        cf_error(ctx, "%s: out of memory", k->name);
        return MQ_ERR;
    }
    *arr = grown;
    memcpy(grown + (*n)++ * elem_size, elem, elem_size);
    return MQ_OK;
}

/* listen: addresses of a pool, each optionally followed by "tls" */
static int
cf_listen_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                const char *v)
{
    struct config_addr a;
    char err[MQ_ERR_LEN], addr[128];
    const char *opt;
    size_t n;

    n = strcspn(v, " \t");
    opt = v + n;
    while (*opt == ' ' || *opt == '\t') {
        opt++;
    }
    if (*opt != '\0' && strcmp(opt, "tls") != 0) {
        cf_error(ctx, "%s = %s: unknown option '%s' (the only one is 'tls')",
                 k->name, v, opt);
        return MQ_ERR;
    }
    if (n >= sizeof(addr)) {
        cf_error(ctx, "%s = %s: address too long", k->name, v);
        return MQ_ERR;
    }
    memcpy(addr, v, n);
    addr[n] = '\0';
    if (config_parse_addr_err(addr, &a, err, sizeof(err)) != MQ_OK) {
        cf_error(ctx, "%s = %s: %s", k->name, v, err);
        return MQ_ERR;
    }
    a.line = ctx->line;
    a.tls = *opt != '\0';
    return cf_list_push(ctx, base, k, &a, sizeof(a));
}

static void
cf_listen_print(FILE *out, const struct cf_key *k, const void *base)
{
    const struct config_addr *a = *CF_CFIELD(base, k->offset,
                                             struct config_addr *);
    size_t n = *CF_CFIELD(base, k->len_offset, size_t), i;

    for (i = 0; i < n; i++) {
        fprintf(out, "%s = %s%s\n", k->name, a[i].text,
                a[i].tls ? " tls" : "");
    }
}

static bool
cf_listen_equal(const struct cf_key *k, const void *a, const void *b)
{
    const struct config_addr *x = *CF_CFIELD(a, k->offset,
                                             struct config_addr *);
    const struct config_addr *y = *CF_CFIELD(b, k->offset,
                                             struct config_addr *);
    size_t n = *CF_CFIELD(a, k->len_offset, size_t), i;

    if (n != *CF_CFIELD(b, k->len_offset, size_t)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!config_addr_equal(&x[i], &y[i]) || x[i].tls != y[i].tls) {
            return false;
        }
    }
    return true;
}

/*
 * Word lists (tls_cert, sni): an owned array of owned strings and its
 * count. tls_cert adds one file a line (its line kept for errors); sni
 * takes blank- or comma-separated names on one line.
 */
static int
cf_words_add(struct cf_ctx *ctx, void *base, const struct cf_key *k,
             const char *word)
{
    char *copy;

    copy = strdup(word);
    if (copy == NULL) {
        cf_error(ctx, "%s: out of memory", k->name);
        return MQ_ERR;
    }
    if (cf_list_push(ctx, base, k, &copy, sizeof(copy)) != MQ_OK) {
        free(copy);
        return MQ_ERR;
    }
    return MQ_OK;
}

static int
cf_tls_cert_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                  const char *v)
{
    struct tls_server_conf *t = &((struct config_pool *)base)->tls;
    int *lines;

    if (*v == '\0' || strpbrk(v, " \t") != NULL) {
        cf_error(ctx, "%s = %s: expected one PEM file", k->name, v);
        return MQ_ERR;
    }
    lines = realloc(t->cert_lines, (t->ncerts + 1) * sizeof(*lines));
    if (lines == NULL) {
        cf_error(ctx, "%s: out of memory", k->name);
        return MQ_ERR;
    }
    t->cert_lines = lines;
    lines[t->ncerts] = ctx->line;
    return cf_words_add(ctx, base, k, v);
}

/* A host name as SNI, or (<pattern>) also "*" and "*.domain". */
static bool
cf_sni_ok(const char *s, bool pattern)
{
    if (pattern && strcmp(s, "*") == 0) {
        return true;
    }
    if (pattern && s[0] == '*' && s[1] == '.') {
        s += 2;
    }
    if (*s == '\0' || strlen(s) > 253 || *s == '.' || strstr(s, "..")) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.'
            && *s != '_') {
            return false;
        }
    }
    return true;
}

static int
cf_sni_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
             const char *v)
{
    char *copy, *tok, *save = NULL;
    int rc = MQ_OK, n = 0;

    copy = strdup(v);
    if (copy == NULL) {
        cf_error(ctx, "%s: out of memory", k->name);
        return MQ_ERR;
    }
    for (tok = strtok_r(copy, " ,\t", &save); tok != NULL;
         tok = strtok_r(NULL, " ,\t", &save), n++) {
        if (!cf_sni_ok(tok, true)) {
            cf_error(ctx, "%s: '%s' is not a host name, *.domain or *",
                     k->name, tok);
            rc = MQ_ERR;
        } else if (cf_words_add(ctx, base, k, tok) != MQ_OK) {
            rc = MQ_ERR;
            break;
        }
    }
    free(copy);
    if (n == 0) {
        cf_error(ctx, "%s: expected host names, *.domain or *", k->name);
        rc = MQ_ERR;
    }
    return rc;
}

static void
cf_words_print(FILE *out, const struct cf_key *k, const void *base)
{
    const char *const *w = *CF_CFIELD(base, k->offset, char **);
    size_t n = *CF_CFIELD(base, k->len_offset, size_t), i;
    bool one_line = strcmp(k->name, "sni") == 0;

    for (i = 0; i < n; i++) {
        if (one_line) {
            fprintf(out, "%s%s", i == 0 ? "sni = " : " ", w[i]);
        } else {
            fprintf(out, "%s = %s\n", k->name, w[i]);
        }
    }
    if (one_line && n > 0) {
        fputc('\n', out);
    }
}

static bool
cf_words_equal(const struct cf_key *k, const void *a, const void *b)
{
    const char *const *x = *CF_CFIELD(a, k->offset, char **);
    const char *const *y = *CF_CFIELD(b, k->offset, char **);
    size_t n = *CF_CFIELD(a, k->len_offset, size_t), i;

    if (n != *CF_CFIELD(b, k->len_offset, size_t)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (strcmp(x[i], y[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* Free a word list's strings (the array goes with the table's owns). */
static void
cf_words_free(char **w, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        mq_free(w[i]);
    }
}

/* allow: CIDR blocks, blank- or comma-separated, any number of lines */
static int
cf_allow_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
               const char *v)
{
    char *copy, *tok, *save = NULL;
    struct acl_cidr c;
    int rc = MQ_OK;

    copy = strdup(v);
    if (copy == NULL) {
        cf_error(ctx, "%s: out of memory", k->name);
        return MQ_ERR;
    }
    for (tok = strtok_r(copy, " ,\t", &save); tok != NULL;
         tok = strtok_r(NULL, " ,\t", &save)) {
        if (acl_parse_cidr(tok, &c) != MQ_OK) {
            cf_error(ctx, "%s: '%s' is not an address or CIDR block",
                     k->name, tok);
            rc = MQ_ERR;
            continue;
        }
        if (cf_list_push(ctx, base, k, &c, sizeof(c)) != MQ_OK) {
            rc = MQ_ERR;
            break;
        }
    }
    free(copy);
    return rc;
}

/* One block a line: a long list never meets the line length limit. */
static void
cf_allow_print(FILE *out, const struct cf_key *k, const void *base)
{
    const struct acl_cidr *c = *CF_CFIELD(base, k->offset,
                                          struct acl_cidr *);
    size_t n = *CF_CFIELD(base, k->len_offset, size_t), i;
    char text[ACL_CIDR_TEXT];

    if (n == 0) {
        fprintf(out, "%s =\n", k->name);
    }
    for (i = 0; i < n; i++) {
        acl_format_cidr(&c[i], text, sizeof(text));
        fprintf(out, "%s = %s\n", k->name, text);
    }
}

static bool
cf_allow_equal(const struct cf_key *k, const void *a, const void *b)
{
    const struct acl_cidr *x = *CF_CFIELD(a, k->offset, struct acl_cidr *);
    const struct acl_cidr *y = *CF_CFIELD(b, k->offset, struct acl_cidr *);
    size_t n = *CF_CFIELD(a, k->len_offset, size_t), i;

    if (n != *CF_CFIELD(b, k->len_offset, size_t)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (x[i].prefix != y[i].prefix ||
            memcmp(x[i].addr, y[i].addr, sizeof(x[i].addr)) != 0) {
            return false;
        }
    }
    return true;
}

/* tcp_keepalive: off | IDLE[:INTERVAL[:COUNT]], e.g. 60s:10s:5 */
static int
cf_keepalive_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                   const char *v)
{
    struct config_keepalive *ka = CF_FIELD(base, k->offset,
                                           struct config_keepalive);
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

/* 0 parts are the kernel's defaults and are left out, as when unwritten. */
static void
cf_keepalive_print(FILE *out, const struct cf_key *k, const void *base)
{
    const struct config_keepalive *ka = CF_CFIELD(base, k->offset,
                                                  struct config_keepalive);

    fprintf(out, "%s = ", k->name);
    if (!ka->on) {
        fputs("off\n", out);
        return;
    }
    cf_print_ms(out, (uint64_t)ka->idle_s * 1000);
    if (ka->interval_s > 0 || ka->count > 0) {
        fputc(':', out);
        cf_print_ms(out, (uint64_t)ka->interval_s * 1000);
    }
    if (ka->count > 0) {
        fprintf(out, ":%u", ka->count);
    }
    fputc('\n', out);
}

static bool
cf_keepalive_equal(const struct cf_key *k, const void *a, const void *b)
{
    const struct config_keepalive *x = CF_CFIELD(a, k->offset,
                                                 struct config_keepalive);
    const struct config_keepalive *y = CF_CFIELD(b, k->offset,
                                                 struct config_keepalive);

    return x->on == y->on && (!x->on || (x->idle_s == y->idle_s &&
           x->interval_s == y->interval_s && x->count == y->count));
}

/* on_backend_down: keep | close, stored as a flag */
static const char *const cf_down_names[] = { "keep", "close", NULL };

static int
cf_on_down_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                 const char *v)
{
    struct config_pool *p = base;
    int idx;

    if (cf_enum_parse(ctx, &idx, k, v) != MQ_OK) {
        return MQ_ERR;
    }
    p->close_on_down = idx == 1;
    return MQ_OK;
}

static void
cf_on_down_print(FILE *out, const struct cf_key *k, const void *base)
{
    const struct config_pool *p = base;

    fprintf(out, "%s = %s\n", k->name, cf_down_names[p->close_on_down]);
}

static bool
cf_on_down_equal(const struct cf_key *k, const void *a, const void *b)
{
    const struct config_pool *x = a, *y = b;

    (void)k;
    return x->close_on_down == y->close_on_down;
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

/* rate: "N/s" or "N", new events a second, within k->min..k->max */
static int
cf_rate_value(const char *v, unsigned min, unsigned max, unsigned *out)
{
    char num[24];
    size_t len = strlen(v);

    if (len > 2 && strcmp(v + len - 2, "/s") == 0) {
        len -= 2;
    }
    if (len == 0 || len >= sizeof(num)) {
        return MQ_ERR;
    }
    memcpy(num, v, len);
    num[len] = '\0';
    return config_parse_uint(num, min, max, out);
}

static int
cf_rate_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    if (cf_rate_value(v, k->min, k->max,
                      CF_FIELD(base, k->offset, unsigned)) != MQ_OK) {
        cf_error(ctx, "%s = %s: expected a rate such as 20/s, from %u to "
                 "%u a second", k->name, v, k->min, k->max);
        return MQ_ERR;
    }
    return MQ_OK;
}

static void
cf_rate_print(FILE *out, const struct cf_key *k, const void *base)
{
    unsigned v = *CF_CFIELD(base, k->offset, unsigned);

    fprintf(out, v > 0 ? "%s = %u/s\n" : "%s = %u\n", k->name, v);
}

/* percent: "N%" or "N", 0..100 */
static int
cf_percent_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                 const char *v)
{
    char num[24];
    size_t len = strlen(v);

    if (len > 1 && v[len - 1] == '%') {
        len--;
    }
    if (len == 0 || len >= sizeof(num)) {
        len = sizeof(num) - 1;      /* fails below */
    }
    memcpy(num, v, len);
    num[len] = '\0';
    if (config_parse_uint(num, 0, 100, CF_FIELD(base, k->offset, unsigned))
        != MQ_OK) {
        cf_error(ctx, "%s = %s: expected a percentage from 0%% to 100%%",
                 k->name, v);
        return MQ_ERR;
    }
    return MQ_OK;
}

static void
cf_percent_print(FILE *out, const struct cf_key *k, const void *base)
{
    fprintf(out, "%s = %u%%\n", k->name,
            *CF_CFIELD(base, k->offset, unsigned));
}

/* idle timeout: a duration, or "auto" (CONFIG_IDLE_AUTO) */
static int
cf_idle_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
              const char *v)
{
    uint64_t ms;

    if (strcmp(v, "auto") == 0) {
        *CF_FIELD(base, k->offset, uint64_t) = CONFIG_IDLE_AUTO;
        return MQ_OK;
    }
    if (config_parse_duration_ms(v, &ms) != MQ_OK) {
        cf_error(ctx, "%s = %s: expected auto or a duration such as 90s, "
                 "5m or 1h (0 = never)", k->name, v);
        return MQ_ERR;
    }
    *CF_FIELD(base, k->offset, uint64_t) = ms;
    return MQ_OK;
}

static void
cf_idle_print(FILE *out, const struct cf_key *k, const void *base)
{
    if (*CF_CFIELD(base, k->offset, uint64_t) == CONFIG_IDLE_AUTO) {
        fprintf(out, "%s = auto\n", k->name);
        return;
    }
    cf_duration_print(out, k, base);
}

static const char *const cf_backend_options[] = {
    "weight", "backup", "max_conns", "max_connect_rate", NULL,
};

/* backend = NAME HOST:PORT [weight=N] [backup] [max_conns=N] */
static int
cf_backend_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                 const char *v)
{
    struct config_backend b;
    char *copy, *tok, *save = NULL, err[MQ_ERR_LEN], opt[32];
    const char *near;
    int n = 0, rc = MQ_OK;

    memset(&b, 0, sizeof(b));
    b.weight = 1;
    b.line = ctx->line;
    copy = strdup(v);
    if (copy == NULL) {
        cf_error(ctx, "%s: out of memory", k->name);
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
        } else if (n == 1 && tok[0] != '[' &&
                   config_split_hostport(tok, b.host, sizeof(b.host),
                                         &b.port) == MQ_OK &&
                   strlen(tok) < sizeof(b.addr.text) &&
                   !config_host_is_ip(b.host) &&
                   strspn(b.host, "0123456789.*") != strlen(b.host)) {
            /* a name: resolved once the whole file (resolvers) is read */
            b.is_name = 1;
            snprintf(b.addr.text, sizeof(b.addr.text), "%s", tok);
        } else if (n == 1) {
            if (config_parse_addr_err(tok, &b.addr, err, sizeof(err))
                != MQ_OK) {
                cf_error(ctx, "backend %s: address '%s': %s", b.name, tok,
                         err);
                rc = MQ_ERR;
            }
        } else if (strncmp(tok, "weight=", 7) == 0) {
            if (config_parse_uint(tok + 7, 0, CONFIG_WEIGHT_MAX, &b.weight)
                != MQ_OK) {
                cf_error(ctx, "backend %s: %s: weight is 0..%u", b.name,
                         tok, CONFIG_WEIGHT_MAX);
                rc = MQ_ERR;
            }
        } else if (strncmp(tok, "max_conns=", 10) == 0) {
            if (config_parse_uint(tok + 10, 0, 10000000, &b.max_conns)
                != MQ_OK) {
                cf_error(ctx, "backend %s: %s: max_conns is 0..10000000",
                         b.name, tok);
                rc = MQ_ERR;
            }
        } else if (strncmp(tok, "max_connect_rate=", 17) == 0) {
            if (cf_rate_value(tok + 17, 0, 10000000, &b.max_connect_rate)
                != MQ_OK) {
                cf_error(ctx, "backend %s: %s: max_connect_rate is a number "
                         "of new sessions a second, 0..10000000", b.name,
                         tok);
                rc = MQ_ERR;
            }
            b.connect_rate_set = 1;
        } else if (strcmp(tok, "backup") == 0) {
            b.backup = 1;
        } else {
            snprintf(opt, sizeof(opt), "%.*s", (int)strcspn(tok, "="), tok);
            near = cf_nearest(cf_backend_options, opt);
            cf_error(ctx, "backend %s: unknown option '%s'%s%s%s (weight=N, "
                     "backup, max_conns=N, max_connect_rate=N)", b.name, tok,
                     near != NULL ? ", did you mean '" : "",
                     near != NULL ? near : "", near != NULL ? "'?" : "");
            rc = MQ_ERR;
        }
    }
    free(copy);
    if (rc == MQ_OK && n < 2) {
        cf_error(ctx, "backend = %s: expected NAME HOST:PORT [weight=N] "
                 "[backup] [max_conns=N] [max_connect_rate=N]", v);
        rc = MQ_ERR;
    }
    if (rc != MQ_OK) {
        return rc;
    }
    b.addr.line = ctx->line;
    return cf_list_push(ctx, base, k, &b, sizeof(b));
}

static void
cf_backend_print(FILE *out, const struct cf_key *k, const void *base)
{
    const struct config_backend *b = *CF_CFIELD(base, k->offset,
                                                struct config_backend *);
    size_t n = *CF_CFIELD(base, k->len_offset, size_t), i;

    for (i = 0; i < n; i++) {
        fprintf(out, "%s = %s %s weight=%u%s", k->name, b[i].name,
                b[i].addr.text, b[i].weight, b[i].backup ? " backup" : "");
        if (b[i].max_conns > 0) {
            fprintf(out, " max_conns=%u", b[i].max_conns);
        }
        /* Only where it differs from the pool's default (0 included). */
        if (b[i].max_connect_rate !=
            ((const struct config_pool *)base)->max_connect_rate) {
            fprintf(out, " max_connect_rate=%u", b[i].max_connect_rate);
        }
        fputc('\n', out);
    }
}

/* A DNS name: labels of [A-Za-z0-9_-], dots between, at most 253. */
static bool
cf_dns_name_ok(const char *s)
{
    size_t n = strlen(s), label = 0, i;

    if (n == 0 || n > 253) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (label == 0 && !(i == n - 1 && i > 0)) {
                return false;
            }
            label = 0;
            continue;
        }
        if (!config_name_char((unsigned char)s[i]) || ++label > 63) {
            return false;
        }
    }
    return true;
}

/* discover = dns NAME:PORT | dns-srv _service._proto.NAME */
static int
cf_discover_parse(struct cf_ctx *ctx, void *base, const struct cf_key *k,
                  const char *v)
{
    struct config_discover d;
    const char *sp;
    size_t klen;

    memset(&d, 0, sizeof(d));
    d.line = ctx->line;
    sp = v + strcspn(v, " \t");
    klen = (size_t)(sp - v);
    sp += strspn(sp, " \t");
    if (klen == 3 && strncmp(v, "dns", 3) == 0) {
        d.kind = DISCOVER_DNS;
        if (config_split_hostport(sp, d.name, sizeof(d.name), &d.port)
            != MQ_OK || !cf_dns_name_ok(d.name)) {
            cf_error(ctx, "discover = %s: expected dns NAME:PORT", v);
            return MQ_ERR;
        }
    } else if (klen == 7 && strncmp(v, "dns-srv", 7) == 0) {
        d.kind = DISCOVER_DNS_SRV;
        if (strlen(sp) >= sizeof(d.name) || !cf_dns_name_ok(sp) ||
            sp[0] != '_') {
            cf_error(ctx, "discover = %s: expected dns-srv "
                     "_service._proto.NAME (e.g. _amqp._tcp.rabbit.svc)", v);
            return MQ_ERR;
        }
        snprintf(d.name, sizeof(d.name), "%s", sp);
    } else {
        cf_error(ctx, "discover = %s: expected dns NAME:PORT or dns-srv "
                 "_service._proto.NAME", v);
        return MQ_ERR;
    }
    return cf_list_push(ctx, base, k, &d, sizeof(d));
}

static void
cf_discover_print(FILE *out, const struct cf_key *k, const void *base)
{
    const struct config_discover *d = *CF_CFIELD(base, k->offset,
                                                 struct config_discover *);
    size_t n = *CF_CFIELD(base, k->len_offset, size_t), i;

    for (i = 0; i < n; i++) {
        if (d[i].kind == DISCOVER_DNS) {
            fprintf(out, "%s = dns %s:%u\n", k->name, d[i].name, d[i].port);
        } else {
            fprintf(out, "%s = dns-srv %s\n", k->name, d[i].name);
        }
    }
}

static bool
cf_discover_equal(const struct cf_key *k, const void *a, const void *b)
{
    const struct config_discover *x = *CF_CFIELD(a, k->offset,
                                                 struct config_discover *);
    const struct config_discover *y = *CF_CFIELD(b, k->offset,
                                                 struct config_discover *);
    size_t n = *CF_CFIELD(a, k->len_offset, size_t), i;

    if (n != *CF_CFIELD(b, k->len_offset, size_t)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (x[i].kind != y[i].kind || x[i].port != y[i].port ||
            strcmp(x[i].name, y[i].name) != 0) {
            return false;
        }
    }
    return true;
}

unsigned
config_backend_changes(const struct config_backend *a,
                       const struct config_backend *b)
{
    unsigned changes = 0;

    if (!config_addr_equal(&a->addr, &b->addr)) {
        changes |= CONFIG_BACKEND_ADDRESS;
    }
    if (a->weight != b->weight) {
        changes |= CONFIG_BACKEND_WEIGHT;
    }
    if (a->backup != b->backup) {
        changes |= CONFIG_BACKEND_BACKUP;
    }
    if (a->max_conns != b->max_conns) {
        changes |= CONFIG_BACKEND_MAX_CONNS;
    }
    if (a->max_connect_rate != b->max_connect_rate) {
        changes |= CONFIG_BACKEND_CONNECT_RATE;
    }
    return changes;
}

const char *
config_backend_change_name(unsigned bit)
{
    switch (bit) {
    case CONFIG_BACKEND_ADDRESS:    return "address";
    case CONFIG_BACKEND_WEIGHT:     return "weight";
    case CONFIG_BACKEND_BACKUP:     return "backup";
    case CONFIG_BACKEND_MAX_CONNS:  return "max_conns";
    case CONFIG_BACKEND_CONNECT_RATE: return "max_connect_rate";
    default:                        return "?";
    }
}

static const struct cf_type cf_uint = {
    cf_uint_parse, cf_uint_print, cf_uint_equal, 0,
};
static const struct cf_type cf_duration = {
    cf_duration_parse, cf_duration_print, cf_duration_equal, 0,
};
static const struct cf_type cf_enum = {
    cf_enum_parse, cf_enum_print, cf_int_equal, 0,
};
static const struct cf_type cf_log_level = {
    cf_log_level_parse, cf_log_level_print, cf_int_equal, 0,
};
static const struct cf_type cf_string = {
    cf_string_parse, cf_string_print, cf_string_equal, 1,
};
static const struct cf_type cf_user = {
    cf_user_parse, cf_string_print, cf_string_equal, 1,
};
static const struct cf_type cf_hosts = {
    cf_hosts_parse, cf_string_print, cf_string_equal, 1,
};
static const struct cf_type cf_cred = {
    cf_cred_parse, cf_string_print, cf_string_equal, 1,
};
static const struct cf_type cf_path = {
    cf_path_parse, cf_string_print, cf_string_equal, 1,
};
static const struct cf_type cf_file = {
    cf_file_parse, cf_string_print, cf_string_equal, 1,
};
static const struct cf_type cf_bytes = {
    cf_bytes_parse, cf_bytes_print, cf_bytes_equal, 1,
};
static const struct cf_type cf_addr = {
    cf_addr_parse, cf_addr_print, cf_addr_key_equal, 0,
};
static const struct cf_type cf_listen = {
    cf_listen_parse, cf_listen_print, cf_listen_equal, 1,
};
static const struct cf_type cf_tls_cert = {
    cf_tls_cert_parse, cf_words_print, cf_words_equal, 1,
};
static const struct cf_type cf_sni = {
    cf_sni_parse, cf_words_print, cf_words_equal, 1,
};
static const struct cf_type cf_allow = {
    cf_allow_parse, cf_allow_print, cf_allow_equal, 1,
};
static const struct cf_type cf_keepalive = {
    cf_keepalive_parse, cf_keepalive_print, cf_keepalive_equal, 0,
};
static const struct cf_type cf_on_down = {
    cf_on_down_parse, cf_on_down_print, cf_on_down_equal, 0,
};
static const struct cf_type cf_rate = {
    cf_rate_parse, cf_rate_print, cf_uint_equal, 0,
};
static const struct cf_type cf_percent = {
    cf_percent_parse, cf_percent_print, cf_uint_equal, 0,
};
static const struct cf_type cf_idle = {
    cf_idle_parse, cf_idle_print, cf_duration_equal, 0,
};
/* Backends are compared one by one, by name (config_backend_changes). */
static const struct cf_type cf_backend = {
    cf_backend_parse, cf_backend_print, NULL, 1,
};
static const struct cf_type cf_resolvers = {
    cf_resolvers_parse, cf_string_print, cf_string_equal, 1,
};
static const struct cf_type cf_interval = {
    cf_interval_parse, cf_duration_print, cf_duration_equal, 0,
};
static const struct cf_type cf_discover = {
    cf_discover_parse, cf_discover_print, cf_discover_equal, 1,
};

static const char *const cf_balance_names[] = {
    "roundrobin", "leastconn", "source", "random", "mqtt-client-id", NULL,
};
static const char *const cf_check_names[] = {
    "tcp", "redis", "redis-master", "amqp", "mqtt", "nats", "kafka", "http",
    "send-expect", "none", NULL,
};
static const char *const cf_rebalance_names[] = { "off", "paced", NULL };
static const char *const cf_pp_names[] = { "off", "v1", "v2", NULL };
static const char *const cf_check_pp_names[] = {
    "auto", "on", "off", "addresses", NULL,
};
static const char *const cf_format_names[] = { "text", "json", NULL };
static const char *const cf_auto_names[] = { "auto", NULL };
static const char *const cf_onoff_names[] = { "off", "on", NULL };
static const char *const cf_defer_names[] = { "off", "on", "auto", NULL };
static const char *const cf_tls_version_names[] = { "1.2", "1.3", NULL };
static const char *const cf_verify_names[] = {
    "off", "optional", "required", NULL,
};

const char *
config_balance_name(enum config_balance b)
{
    return cf_balance_names[b];
}

bool
config_pool_defer_accept(const struct config_pool *p)
{
    if (p->defer_accept != DEFER_AUTO) {
        return p->defer_accept == DEFER_ON;
    }
    switch (p->check) {
    case CHECK_REDIS:
    case CHECK_REDIS_MASTER:
    case CHECK_MQTT:
    case CHECK_AMQP:
    case CHECK_KAFKA:
        return true;
    default:
        return false;
    }
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

/* ---- the key table ----------------------------------------------------
 *
 * One row a key, in the order -t prints them. <group> names what a
 * reload reports as changed when the key differs (pool keys; the key's
 * own name if none); .def is
 * parsed like the file at the start of each section (none: a list, or a
 * default that depends on other keys, set in cf_pool_finish).
 */

#define K(sec, key, t)  .section = (sec), .name = (key), .type = &(t)
#define G(f)            .offset = offsetof(struct config, f)
#define P(f)            .offset = offsetof(struct config_pool, f)
#define PLEN(f)         .len_offset = offsetof(struct config_pool, f)

static const struct cf_key cf_keys[] = {
    { K(CF_GLOBAL, "workers", cf_uint), G(workers), .def = "0",
      .max = 256 },
    { K(CF_GLOBAL, "max_connections", cf_uint), G(max_connections),
      .names = cf_auto_names, .def = "auto", .min = 1, .max = 10000000 },
    { K(CF_GLOBAL, "log_level", cf_log_level), G(log_level),
      .def = "info" },
    { K(CF_GLOBAL, "log_format", cf_enum), G(log_format),
      .names = cf_format_names, .def = "text" },
    { K(CF_GLOBAL, "shutdown_timeout", cf_duration),
      G(shutdown_timeout_ms), .def = "30s" },
    { K(CF_GLOBAL, "user", cf_user), G(user), .def = "" },
    { K(CF_GLOBAL, "resolvers", cf_resolvers), G(resolvers), .def = "" },
    { K(CF_GLOBAL, "resolve_interval", cf_interval),
      G(resolve_interval_ms), .def = "10s", .min = 1 },
    { K(CF_GLOBAL, "control_socket", cf_file), G(control_socket),
      .def = "" },
    { K(CF_GLOBAL, "state_file", cf_file), G(state_file), .def = "" },

    { K(CF_ADMIN, "listen", cf_addr), G(admin_listen),
      .def = "127.0.0.1:9000" },
    { K(CF_ADMIN, "token", cf_string), G(admin_token), .def = "",
      .secret = 1 },
    { K(CF_ADMIN, "allowed_hosts", cf_hosts), G(admin_allowed_hosts),
      .def = "" },

    { K(CF_POOL, "listen", cf_listen), P(listens), PLEN(nlistens),
      .repeat = 1, .group = "listen" },
    { K(CF_POOL, "balance", cf_enum), P(balance),
      .names = cf_balance_names, .def = "roundrobin", .group = "balance" },
    { K(CF_POOL, "health_check", cf_enum), P(check),
      .names = cf_check_names, .def = "tcp", .group = "checks" },
    { K(CF_POOL, "check_interval", cf_duration), P(check_interval_ms),
      .def = "2s", .min = 1, .group = "checks" },
    { K(CF_POOL, "check_timeout", cf_duration), P(check_timeout_ms),
      .min = 1, .group = "checks" },
    { K(CF_POOL, "rise", cf_uint), P(rise), .def = "2", .min = 1,
      .max = 1000, .group = "checks" },
    { K(CF_POOL, "fall", cf_uint), P(fall), .def = "3", .min = 1,
      .max = 1000, .group = "checks" },
    { K(CF_POOL, "check_send", cf_bytes), P(check_send),
      PLEN(check_send_len), .def = "", .group = "checks" },
    { K(CF_POOL, "check_expect", cf_bytes), P(check_expect),
      PLEN(check_expect_len), .def = "", .group = "checks" },
    { K(CF_POOL, "check_path", cf_path), P(check_path), .def = "/",
      .group = "checks" },
    { K(CF_POOL, "check_proxy_protocol", cf_enum), P(check_proxy_protocol),
      .names = cf_check_pp_names, .def = "auto", .group = "checks" },
    { K(CF_POOL, "check_reset", cf_enum), P(check_reset),
      .names = cf_onoff_names, .def = "off", .group = "checks" },
    { K(CF_POOL, "check_user", cf_cred), P(check_user), .def = "",
      .group = "checks" },
    { K(CF_POOL, "check_password", cf_cred), P(check_password), .def = "",
      .secret = 1, .group = "checks" },
    { K(CF_POOL, "check_vhost", cf_cred), P(check_vhost), .def = "",
      .group = "checks" },
    { K(CF_POOL, "connect_timeout", cf_duration), P(connect_timeout_ms),
      .def = "3s", .min = 1, .group = "sessions" },
    { K(CF_POOL, "idle_timeout", cf_idle), P(idle_timeout_ms),
      .def = "1h", .group = "sessions" },
    { K(CF_POOL, "tcp_keepalive", cf_keepalive), P(keepalive),
      .def = "off", .group = "sessions" },
    { K(CF_POOL, "retries", cf_uint), P(retries), .def = "2",
      .max = CONFIG_MAX_BACKENDS, .group = "sessions" },
    { K(CF_POOL, "max_fails", cf_uint), P(max_fails), .def = "3",
      .max = 1000, .group = "sessions" },
    { K(CF_POOL, "replay", cf_enum), P(replay), .names = cf_onoff_names,
      .def = "off", .group = "sessions" },
    { K(CF_POOL, "slow_start", cf_duration), P(slow_start_ms),
      .def = "0s", .group = "sessions" },
    { K(CF_POOL, "on_backend_down", cf_on_down), .names = cf_down_names,
      .def = "keep", .group = "sessions" },
    { K(CF_POOL, "max_conns_per_backend", cf_uint),
      P(max_conns_per_backend), .def = "0", .max = 10000000,
      .group = "sessions" },
    { K(CF_POOL, "max_conns_per_source", cf_uint),
      P(max_conns_per_source), .def = "0", .max = 10000000,
      .group = "sessions" },
    { K(CF_POOL, "proxy_protocol", cf_enum), P(proxy_protocol),
      .names = cf_pp_names, .def = "off", .group = "sessions" },
    { K(CF_POOL, "allow", cf_allow), P(allow), PLEN(nallow), .repeat = 1,
      .group = "sessions" },
    { K(CF_POOL, "max_session_duration", cf_duration),
      P(max_session_duration_ms), .def = "0", .group = "sessions" },
    { K(CF_POOL, "max_queue", cf_uint), P(max_queue), .def = "0",
      .max = 10000000, .group = "sessions" },
    { K(CF_POOL, "queue_timeout", cf_duration), P(queue_timeout_ms),
      .def = "5s", .min = 1, .group = "sessions" },
    { K(CF_POOL, "max_connect_rate", cf_rate), P(max_connect_rate),
      .def = "0", .max = 10000000, .group = "sessions" },
    { K(CF_POOL, "rebalance", cf_enum), P(rebalance),
      .names = cf_rebalance_names, .def = "off", .group = "rebalance" },
    { K(CF_POOL, "rebalance_rate", cf_rate), P(rebalance_rate),
      .def = "20/s", .min = 1, .max = 1000000, .group = "rebalance" },
    { K(CF_POOL, "rebalance_tolerance", cf_percent),
      P(rebalance_tolerance_pct), .def = "10%", .group = "rebalance" },
    { K(CF_POOL, "rebalance_min_age", cf_duration),
      P(rebalance_min_age_ms), .def = "30s", .group = "rebalance" },
    { K(CF_POOL, "sni", cf_sni), P(sni), PLEN(nsni), .group = "listen" },
    { K(CF_POOL, "defer_accept", cf_enum), P(defer_accept),
      .names = cf_defer_names, .def = "off", .group = "listen" },
    { K(CF_POOL, "tls_cert", cf_tls_cert), P(tls.certs), PLEN(tls.ncerts),
      .repeat = 1, .group = "tls" },
    { K(CF_POOL, "tls_key", cf_string), P(tls.key), .def = "",
      .group = "tls" },
    { K(CF_POOL, "tls_min_version", cf_enum), P(tls.min_version),
      .names = cf_tls_version_names, .def = "1.2", .group = "tls" },
    { K(CF_POOL, "tls_ciphers", cf_string), P(tls.ciphers), .def = "",
      .group = "tls" },
    { K(CF_POOL, "tls_ciphersuites", cf_string), P(tls.ciphersuites),
      .def = "", .group = "tls" },
    { K(CF_POOL, "tls_alpn", cf_string), P(tls.alpn), .def = "",
      .group = "tls" },
    { K(CF_POOL, "tls_handshake_timeout", cf_duration),
      P(tls_handshake_timeout_ms), .def = "5s", .min = 1, .group = "tls" },
    { K(CF_POOL, "tls_session_tickets", cf_enum), P(tls.tickets),
      .names = cf_onoff_names, .def = "on", .group = "tls" },
    { K(CF_POOL, "tls_client_ca", cf_string), P(tls.client_ca), .def = "",
      .group = "tls" },
    { K(CF_POOL, "tls_verify_client", cf_enum), P(tls.verify_client),
      .names = cf_verify_names, .def = "off", .group = "tls" },
    { K(CF_POOL, "backend_tls", cf_enum), P(backend_tls.enabled),
      .names = cf_onoff_names, .def = "off", .group = "backend_tls" },
    { K(CF_POOL, "backend_tls_ca", cf_string), P(backend_tls.ca),
      .def = "", .group = "backend_tls" },
    { K(CF_POOL, "backend_tls_verify", cf_enum), P(backend_tls.verify),
      .names = cf_onoff_names, .def = "on", .group = "backend_tls" },
    { K(CF_POOL, "backend_tls_sni", cf_string), P(backend_tls.sni),
      .def = "", .group = "backend_tls" },
    { K(CF_POOL, "backend", cf_backend), P(backends), PLEN(nbackends),
      .repeat = 1 },
    { K(CF_POOL, "discover", cf_discover), P(discovers), PLEN(ndiscovers),
      .repeat = 1, .group = "discover" },
};

#undef K
#undef G
#undef P
#undef PLEN

_Static_assert(MQ_NELEMS(cf_keys) <= CF_MAX_KEYS,
               "raise CF_MAX_KEYS: cf_ctx.seen has a slot per key");

/* Set every key of <section> in <base> to its default. */
static void
cf_defaults(struct cf_ctx *ctx, enum cf_section section, void *base)
{
    size_t i;

    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        if (cf_keys[i].section == section && cf_keys[i].def != NULL) {
            cf_keys[i].type->parse(ctx, base, &cf_keys[i], cf_keys[i].def);
        }
    }
}

/* The line key <name> of the current section was set on; 0 if unset. */
static int
cf_seen_line(const struct cf_ctx *ctx, const char *name)
{
    size_t i;

    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        if (cf_keys[i].section == ctx->section &&
            strcmp(cf_keys[i].name, name) == 0) {
            return ctx->seen[i];
        }
    }
    return 0;
}

/* Print every key of <section> held at <base>, in table order. */
static void
cf_print_section(FILE *out, enum cf_section section, const void *base)
{
    size_t i;

    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        if (cf_keys[i].section == section) {
            cf_keys[i].type->print(out, &cf_keys[i], base);
        }
    }
}

/* Append <name> to the comma list in <buf> unless it is there already. */
static void
cf_note(char *buf, size_t size, const char *name)
{
    size_t n = strlen(buf), len = strlen(name);
    const char *p;

    for (p = buf; (p = strstr(p, name)) != NULL; p += len) {
        if ((p == buf || p[-1] == ',') && (p[len] == ',' || p[len] == '\0')) {
            return;
        }
    }
    snprintf(buf + n, size - n, "%s%s", n > 0 ? "," : "", name);
}

bool
config_pool_changes(const struct config_pool *a, const struct config_pool *b,
                    char *what, size_t size)
{
    const struct cf_key *k;
    size_t i;

    what[0] = '\0';
    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        k = &cf_keys[i];
        /* No equal: compared elsewhere (backends, one by one); no
         * group: the key names itself. */
        if (k->section == CF_POOL && k->type->equal != NULL &&
            !k->type->equal(k, a, b)) {
            cf_note(what, size, k->group != NULL ? k->group : k->name);
        }
    }
    return what[0] != '\0';
}

bool
config_global_changes(const struct config *a, const struct config *b,
                      char *what, size_t size)
{
    const struct cf_key *k;
    char name[80];
    size_t i;

    what[0] = '\0';
    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        k = &cf_keys[i];
        if (k->section == CF_POOL || k->type->equal(k, a, b)) {
            continue;
        }
        snprintf(name, sizeof(name), "%s%s",
                 k->section == CF_ADMIN ? "admin " : "", k->name);
        cf_note(what, size, name);
    }
    return what[0] != '\0';
}

/* ---- sections and the inih handler --------------------------------- */

static const char *
cf_section_name(enum cf_section section)
{
    return section == CF_POOL ? "[pool NAME]" :
           section == CF_ADMIN ? "[admin]" : "[global]";
}

/* An unknown key: say where it belongs, or what it looks like. */
static void
cf_unknown_key(struct cf_ctx *ctx, const char *name)
{
    const char *here = ctx->section == CF_POOL ? "pool" :
                       ctx->section == CF_ADMIN ? "admin" : "global";
    const char *near = NULL;
    size_t i, best = SIZE_MAX;

    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        if (cf_keys[i].section != ctx->section &&
            strcmp(cf_keys[i].name, name) == 0) {
            cf_error(ctx, "unknown key '%s' in [%s]: '%s' belongs in %s",
                     name, here, name, cf_section_name(cf_keys[i].section));
            return;
        }
    }
    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        if (cf_keys[i].section == ctx->section &&
            cf_is_near(name, cf_keys[i].name, &best)) {
            near = cf_keys[i].name;
        }
    }
    if (near != NULL) {
        cf_error(ctx, "unknown key '%s' in [%s], did you mean '%s'?", name,
                 here, near);
    } else {
        cf_error(ctx, "unknown key '%s' in [%s]", name, here);
    }
}

/* The line of key <name> in this pool, or the pool's header line. */
static int
cf_key_line(const struct cf_ctx *ctx, const struct config_pool *p,
            const char *name)
{
    int line = cf_seen_line(ctx, name);

    return line > 0 ? line : p->line;
}

/*
 * check_user / check_password / check_vhost, for the kinds that log in:
 * what each needs (MQTT has no password without a user name; AMQP PLAIN
 * needs both and opens the vhost after logging in). Like check_path for
 * a non-http check, they are ignored by the kinds that do not log in.
 */
static void
cf_check_login(struct cf_ctx *ctx, const struct config_pool *p)
{
    const char *kind = cf_check_names[p->check];
    bool user = p->check_user != NULL, pass = p->check_password != NULL;
    int line;

    if (p->check_vhost != NULL && p->check == CHECK_AMQP && !user) {
        cf_error_at(ctx, cf_key_line(ctx, p, "check_vhost"), "[pool %s]: "
                    "check_vhost needs check_user and check_password (the "
                    "check opens the vhost after logging in)", p->name);
    }
    if (!user && !pass) {
        return;
    }
    line = cf_key_line(ctx, p, user ? "check_user" : "check_password");
    switch (p->check) {
    case CHECK_REDIS:
    case CHECK_REDIS_MASTER:
    case CHECK_NATS:
        if (user && !pass) {
            cf_error_at(ctx, line, "[pool %s]: check_user needs "
                        "check_password for health_check = %s", p->name,
                        kind);
        }
        break;
    case CHECK_MQTT:
        if (pass && !user) {
            cf_error_at(ctx, line, "[pool %s]: check_password needs "
                        "check_user for health_check = mqtt (MQTT sends no "
                        "password without a user name)", p->name);
        }
        break;
    case CHECK_AMQP:
        if (!user || !pass) {
            cf_error_at(ctx, line, "[pool %s]: health_check = amqp logs in "
                        "with both check_user and check_password", p->name);
        }
        break;
    case CHECK_HTTP:
        if (user && strchr(p->check_user, ':') != NULL) {
            cf_error_at(ctx, line, "[pool %s]: check_user may not contain "
                        "':' for HTTP Basic authorization", p->name);
        }
        break;
    default:
        break;      /* tcp, kafka, send-expect, none: nothing to log in */
    }
}

/*
 * The TLS keys of <p>, at the end of its section: their lines, the rules
 * between them, and the contexts built from them (which loads and checks
 * every certificate, key and CA file: mqlb -t reports them too).
 */
static void
cf_pool_finish_tls(struct cf_ctx *ctx, struct config_pool *p)
{
    const struct config_addr *tls_listen = NULL;
    char err[MQ_ERR_LEN];
    size_t i;
    int line;

    p->tls.key_line = cf_seen_line(ctx, "tls_key");
    p->tls.alpn_line = cf_seen_line(ctx, "tls_alpn");
    p->tls.client_ca_line = cf_seen_line(ctx, "tls_client_ca");
    p->tls.verify_line = cf_seen_line(ctx, "tls_verify_client");
    p->backend_tls.ca_line = cf_seen_line(ctx, "backend_tls_ca");
    for (i = 0; i < p->nlistens && tls_listen == NULL; i++) {
        if (p->listens[i].tls) {
            tls_listen = &p->listens[i];
        }
    }
    if (p->backend_tls.sni != NULL && !cf_sni_ok(p->backend_tls.sni, false)) {
        cf_error_at(ctx, cf_seen_line(ctx, "backend_tls_sni"), "[pool %s]: "
                    "backend_tls_sni = %s is not a host name", p->name,
                    p->backend_tls.sni);
    }
    if (p->backend_tls.enabled) {
        p->tls_client = tls_client_create(&p->backend_tls, err, sizeof(err),
                                          &line);
        if (p->tls_client == NULL) {
            cf_error_at(ctx, line > 0 ? line : cf_seen_line(ctx,
                        "backend_tls"), "[pool %s]: %s", p->name, err);
        }
    }
    if (tls_listen == NULL) {
        if (p->tls.ncerts > 0) {
            cf_error_at(ctx, p->tls.cert_lines[0], "[pool %s]: tls_cert is "
                        "set but no listen has 'tls' (listen = ADDR tls)",
                        p->name);
        }
        return;
    }
    if (p->tls.ncerts == 0) {
        cf_error_at(ctx, tls_listen->line, "[pool %s]: listen %s tls needs "
                    "a certificate: tls_cert = FILE.pem", p->name,
                    tls_listen->text);
        return;
    }
    if (p->tls.verify_client != TLS_VERIFY_OFF && p->tls.client_ca == NULL) {
        cf_error_at(ctx, p->tls.verify_line, "[pool %s]: tls_verify_client "
                    "= %s needs tls_client_ca", p->name,
                    cf_verify_names[p->tls.verify_client]);
        return;
    }
    p->tls_server = tls_server_create(&p->tls, err, sizeof(err), &line);
    if (p->tls_server == NULL) {
        cf_error_at(ctx, line > 0 ? line : tls_listen->line, "[pool %s]: %s",
                    p->name, err);
    }
}

/*
 * A [pool] section ended: the defaults that depend on other keys, and the
 * checks within the pool, each reported at the line of the key at fault
 * (the pool's header when a key is missing).
 */
static void
cf_pool_finish(struct cf_ctx *ctx, struct config_pool *p)
{
    int line;
    size_t i, j;

    if (cf_seen_line(ctx, "check_timeout") == 0) {
        p->check_timeout_ms = MQ_MIN(CONFIG_CHECK_TIMEOUT_MS,
                                     p->check_interval_ms);
    }
    if (p->nlistens == 0) {
        cf_error_at(ctx, p->line, "[pool %s]: no 'listen' address",
                    p->name);
    }
    if (p->nbackends == 0 && p->ndiscovers == 0) {
        cf_error_at(ctx, p->line, "[pool %s]: no 'backend' (or 'discover')",
                    p->name);
    }
    if (p->nbackends > CONFIG_MAX_BACKENDS) {
        cf_error_at(ctx, p->backends[CONFIG_MAX_BACKENDS].line, "[pool %s]: "
                    "more than %d backends", p->name, CONFIG_MAX_BACKENDS);
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
        if (!p->backends[i].connect_rate_set) {
            p->backends[i].max_connect_rate = p->max_connect_rate;
        }
    }
    for (i = 0; i < p->nlistens; i++) {
        for (j = 0; j < i; j++) {
            if (config_addr_equal(&p->listens[i], &p->listens[j])) {
                cf_error_at(ctx, p->listens[i].line, "[pool %s]: listen "
                            "%s is given twice", p->name,
                            p->listens[i].text);
            }
        }
    }
    if (p->check == CHECK_SEND_EXPECT && p->check_expect_len == 0) {
        line = cf_seen_line(ctx, "health_check");
        cf_error_at(ctx, line > 0 ? line : p->line, "[pool %s]: "
                    "health_check = send-expect needs check_expect",
                    p->name);
    }
    cf_check_login(ctx, p);
    if ((p->check_proxy_protocol == CHECK_PP_ON ||
         p->check_proxy_protocol == CHECK_PP_ADDRESSES) &&
        p->proxy_protocol == PROXY_PROTOCOL_OFF) {
        cf_error_at(ctx, cf_key_line(ctx, p, "check_proxy_protocol"),
                    "[pool %s]: check_proxy_protocol = %s needs "
                    "proxy_protocol = v1 or v2 (the checks send the pool's "
                    "version)", p->name,
                    cf_check_pp_names[p->check_proxy_protocol]);
    }
    cf_pool_finish_tls(ctx, p);
}

/* The current section ends (another begins, or the file does). */
static void
cf_section_end(struct cf_ctx *ctx)
{
    if (ctx->section == CF_POOL && ctx->pool != NULL) {
        cf_pool_finish(ctx, ctx->pool);
    }
    ctx->pool = NULL;
    memset(ctx->seen, 0, sizeof(ctx->seen));
}

static const char *const cf_section_words[] = {
    "global", "admin", "pool", NULL,
};

static void
cf_section_begin(struct cf_ctx *ctx, const char *header)
{
    char name[CONFIG_NAME_LEN + 1];
    struct config_pool *pools;
    const char *rest;
    size_t n;

    cf_section_end(ctx);
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
    n = strcspn(header, " \t");
    snprintf(name, sizeof(name), "%.*s", (int)MQ_MIN(n, CONFIG_NAME_LEN),
             header);
    rest = cf_nearest(cf_section_words, name);
    if (rest != NULL) {
        cf_error(ctx, "unknown section [%s] (expected [global], [admin] or "
                 "[pool NAME]), did you mean [%s%s]?", header, rest,
                 header[n] != '\0' ? header + n : "");
    } else {
        cf_error(ctx, "unknown section [%s] (expected [global], [admin] or "
                 "[pool NAME])", header);
    }
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
        if (!cf_keys[i].repeat && ctx->seen[i] != 0) {
            cf_error(ctx, "'%s' is set twice in this section (first on "
                     "line %d)", name, ctx->seen[i]);
            return 1;
        }
        ctx->seen[i] = ctx->line;
        cf_keys[i].type->parse(ctx, base, &cf_keys[i], value);
        return 1;
    }
    cf_unknown_key(ctx, name);
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
            cf_section_end(ctx);
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

void
config_warnings(const struct config *cf, struct config_errors *out)
{
    const struct config_pool *p;
    char msg[512], **msgs;
    size_t i, j;

    for (i = 0; i < cf->npools; i++) {
        p = &cf->pools[i];
        if (p->max_conns_per_source > 0 || p->nallow > 0) {
            continue;
        }
        for (j = 0; j < p->nlistens; j++) {
            if (!cf_addr_is_loopback(&p->listens[j])) {
                break;
            }
        }
        if (j == p->nlistens) {
            continue;
        }
        snprintf(msg, sizeof(msg), "%s:%d: warning: [pool %s] listens on %s "
                 "with max_conns_per_source = 0 and no allow list: one "
                 "client address can take every session; set "
                 "max_conns_per_source (see \"One greedy source\" in the "
                 "README)", cf->path, p->line, p->name, p->listens[j].text);
        msgs = realloc(out->msgs, (out->nmsgs + 1) * sizeof(*msgs));
        if (msgs == NULL) {
            return;
        }
        out->msgs = msgs;
        msgs[out->nmsgs] = strdup(msg);
        if (msgs[out->nmsgs] != NULL) {
            out->nmsgs++;
        }
    }
}

/* Resolve the backend host names of <p> through the configured resolvers. */
static void
cf_resolve_pool(struct cf_ctx *ctx, struct config_pool *p)
{
    struct config_backend *b;
    struct resolver_addr ra;
    char err[MQ_ERR_LEN];
    size_t i;

    for (i = 0; i < p->nbackends; i++) {
        b = &p->backends[i];
        if (!b->is_name) {
            continue;
        }
        if (resolver_lookup_sync(ctx->cf->resolvers, b->host, b->port,
                                 CF_RESOLVE_TIMEOUT_MS, &ra, err) != MQ_OK) {
            cf_error_at(ctx, b->line, "backend %s: address '%s': host "
                        "'%s' does not resolve: %s", b->name, b->addr.text,
                        b->host, err);
            continue;
        }
        memcpy(&b->addr.ss, &ra.ss, ra.len);
        b->addr.len = ra.len;
    }
}

/* Every backend host name through the configured resolvers (c-ares). */
static void
cf_validate_dns(struct cf_ctx *ctx)
{
    size_t i;

    if (ctx->cf->resolvers_bad) {
        return;     /* reported on its line; nothing would resolve */
    }
    for (i = 0; i < ctx->cf->npools; i++) {
        cf_resolve_pool(ctx, &ctx->cf->pools[i]);
    }
}

/*
 * Listen <k> of <p> is listen <l> of the earlier pool <q>: allowed when
 * both route by SNI (sni = ...) and agree on terminating TLS there.
 */
static void
cf_validate_shared(struct cf_ctx *ctx, const struct config_pool *p,
                   const struct config_pool *q, size_t k, size_t l)
{
    const struct config_addr *a = &p->listens[k];

    if (p->nsni == 0 || q->nsni == 0) {
        cf_error_at(ctx, a->line, "listen %s is already used by pool '%s' "
                    "(pools may share an address only when each sets "
                    "sni = NAMES)", a->text, q->name);
    } else if (a->tls != q->listens[l].tls) {
        cf_error_at(ctx, a->line, "listen %s: pool '%s' %s TLS there, so "
                    "this pool must too", a->text, q->name,
                    q->listens[l].tls ? "terminates" : "does not terminate");
    }
}

static void
cf_validate(struct cf_ctx *ctx)
{
    struct config *cf = ctx->cf;
    size_t i, j, k, l;
    long ncpu;

    cf_validate_dns(ctx);

    for (i = 0; i < cf->npools; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(cf->pools[i].name, cf->pools[j].name) == 0) {
                cf_error_at(ctx, cf->pools[i].line, "duplicate pool name "
                            "'%s' (first on line %d)", cf->pools[i].name,
                            cf->pools[j].line);
            }
            for (k = 0; k < cf->pools[i].nlistens; k++) {
                for (l = 0; l < cf->pools[j].nlistens; l++) {
                    if (config_addr_equal(&cf->pools[i].listens[k],
                                      &cf->pools[j].listens[l])) {
                        cf_validate_shared(ctx, &cf->pools[i],
                                           &cf->pools[j], k, l);
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

/* Free what the keys of <section> own at <base>. */
static void
cf_free_section(enum cf_section section, void *base)
{
    size_t i;

    for (i = 0; i < MQ_NELEMS(cf_keys); i++) {
        if (cf_keys[i].section == section && cf_keys[i].type->owns) {
            mq_free(*CF_FIELD(base, cf_keys[i].offset, void *));
        }
    }
}

void
config_destroy(struct config *cf)
{
    size_t i;

    if (cf == NULL) {
        return;
    }
    for (i = 0; i < cf->npools; i++) {
        cf_words_free(cf->pools[i].tls.certs, cf->pools[i].tls.ncerts);
        cf_words_free(cf->pools[i].sni, cf->pools[i].nsni);
        mq_free(cf->pools[i].tls.cert_lines);
        tls_server_destroy(cf->pools[i].tls_server);
        cf->pools[i].tls_server = NULL;
        tls_client_destroy(cf->pools[i].tls_client);
        cf->pools[i].tls_client = NULL;
        cf_free_section(CF_POOL, &cf->pools[i]);
    }
    cf_free_section(CF_GLOBAL, cf);
    cf_free_section(CF_ADMIN, cf);
    mq_free(cf->pools);
    mq_free(cf->path);
    free(cf);
}

static int
cf_error_line(const char *msg, size_t namelen)
{
    return strlen(msg) > namelen ? atoi(msg + namelen + 1) : 0;
}

/* Report in file order: checks at the end of a section or of the file
 * run after the lines they judge. (Insertion sort: stable, and error
 * lists are short.) Only this load's messages move. */
static void
cf_sort_errors(struct cf_ctx *ctx)
{
    struct config_errors *errs = ctx->errs;
    size_t i, j, namelen = strlen(ctx->name);
    char *m;

    for (i = ctx->first_err + 1; i < errs->nmsgs; i++) {
        m = errs->msgs[i];
        for (j = i; j > ctx->first_err &&
             cf_error_line(errs->msgs[j - 1], namelen)
             > cf_error_line(m, namelen); j--) {
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
    ctx.first_err = errs->nmsgs;
    cf->path = strdup(name);
    if (cf->path == NULL) {
        cf_error_at(&ctx, 0, "out of memory");
    }
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
    cf_section_end(&ctx);
    cf_validate(&ctx);
    cf_sort_errors(&ctx);
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
    cf = config_load_text(text, len, path, errs);
out:
    free(text);
    fclose(f);
    return cf;
}

struct config *
config_load_text(const char *text, size_t len, const char *path,
                 struct config_errors *errs)
{
    struct cf_ctx ctx;

    if (memchr(text, '\0', len) != NULL) {
        memset(&ctx, 0, sizeof(ctx));
        ctx.name = path;
        ctx.errs = errs;
        cf_error_at(&ctx, 1, "file contains a NUL byte");
        return NULL;
    }
    return config_load_string(text, path, errs);
}

/* ---- dump ------------------------------------------------------------ */

void
config_dump(const struct config *cf, FILE *out)
{
    size_t i;

    fprintf(out, "; effective configuration of %s\n[global]\n", cf->path);
    cf_print_section(out, CF_GLOBAL, cf);
    fputs("\n[admin]\n", out);
    cf_print_section(out, CF_ADMIN, cf);
    for (i = 0; i < cf->npools; i++) {
        fprintf(out, "\n[pool %s]\n", cf->pools[i].name);
        cf_print_section(out, CF_POOL, &cf->pools[i]);
    }
}
