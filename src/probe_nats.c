/*
 * probe_nats.c: the nats check. The server speaks first with an
 * "INFO {...}" line; then PING must bring PONG. An INFO that carries
 * "ldm":true (lame duck mode: the server is shutting down) sets p->drain,
 * and the check still passes if PONG comes. With check_user and
 * check_password, a CONNECT carrying them ("user", "pass") goes before
 * the PING; a check_password alone is sent as "auth_token".
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/probe.h"

#define PROBE_NATS_PING     "PING\r\n"
#define PROBE_NATS_PONG     "PONG\r\n"
#define PROBE_NATS_LDM      "\"ldm\""

/* Values of p->step. */
enum probe_nats_step {
    PROBE_NATS_WANT_INFO = 0,   /* connected, waiting for the first line */
    PROBE_NATS_WANT_PONG,       /* PING sent */
};

static void
probe_nats_start(struct probe *p)
{
    /* The server speaks first. */
    (void)p;
}

static bool
probe_nats_space(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* True if <line> starts with the protocol verb <verb> and a blank. */
static bool
probe_nats_verb(const uint8_t *line, size_t len, const char *verb)
{
    size_t n;

    n = strlen(verb);
    return len > n && memcmp(line, verb, n) == 0
           && probe_nats_space(line[n]);
}

/*
 * True if the JSON object in <json> sets "ldm" to true. A shallow scan is
 * enough: nats-server writes the key as "ldm" and the value bare.
 */
static bool
probe_nats_ldm(const uint8_t *json, size_t len)
{
    static const char key[] = PROBE_NATS_LDM;
    size_t            i, at;

    for (i = 0; i + sizeof(key) - 1 <= len; i++) {
        if (memcmp(json + i, key, sizeof(key) - 1) != 0) {
            continue;
        }
        at = i + sizeof(key) - 1;
        while (at < len && probe_nats_space(json[at])) {
            at++;
        }
        if (at == len || json[at] != ':') {
            continue;
        }
        at++;
        while (at < len && probe_nats_space(json[at])) {
            at++;
        }
        return len - at >= 4 && memcmp(json + at, "true", 4) == 0;
    }
    return false;
}

bool
probe_nats_info_line(const uint8_t *line, size_t len, bool *ldm)
{
    if (!probe_nats_verb(line, len, "INFO")) {
        return false;
    }
    line += 4;
    len -= 4;
    while (len > 0 && probe_nats_space(line[0])) {
        line++;
        len--;
    }
    while (len > 0 && probe_nats_space(line[len - 1])) {
        len--;
    }
    if (len < 2 || line[0] != '{' || line[len - 1] != '}') {
        return false;
    }
    *ldm = probe_nats_ldm(line, len);
    return true;
}

/* An INFO line sets p->drain from its ldm flag. */
static bool
probe_nats_info(struct probe *p, const uint8_t *line, size_t len)
{
    bool ldm;

    if (!probe_nats_info_line(line, len, &ldm)) {
        return false;
    }
    p->drain = ldm;
    return true;
}

/* Fail with the text of a "-ERR 'Authorization Violation'" <line>. */
/*
 * An "-ERR ..." line. With credentials, a server that refuses them says
 * "Authorization Violation" (or "Authentication ..."): name it a refused
 * login.
 */
static enum probe_verdict
probe_nats_error(struct probe *p, const uint8_t *line, size_t len)
{
    char text[PROBE_REASON_MAX];

    probe_escape(text, sizeof(text), line + 1, len - 1);
    if (probe_has_auth(p->params) &&
        (strstr(text, "Authorization") != NULL ||
         strstr(text, "Authentication") != NULL)) {
        return probe_fail(p, PROBE_AUTH_REFUSED ": nats error: %s", text);
    }
    return probe_fail(p, "nats error: %s", text);
}

/* Append <s> to <o> (<cap> bytes, at <*at>) as a JSON string; false if
 * it does not fit. */
static bool
probe_nats_json(char *o, size_t cap, size_t *at, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c;

    if (*at + 1 >= cap) {
        return false;
    }
    o[(*at)++] = '"';
    for (; *s != '\0'; s++) {
        c = (unsigned char)*s;
        if (*at + 7 >= cap) {
            return false;
        }
        if (c == '"' || c == '\\') {
            o[(*at)++] = '\\';
            o[(*at)++] = (char)c;
        } else if (c < 0x20) {
            memcpy(o + *at, "\\u00", 4);
            *at += 4;
            o[(*at)++] = hex[c >> 4];
            o[(*at)++] = hex[c & 0x0f];
        } else {
            o[(*at)++] = (char)c;
        }
    }
    o[(*at)++] = '"';
    return true;
}

/* Append the literal <lit> to <o> (<cap> bytes, at <*at>); false if it
 * does not fit. */
static bool
probe_nats_lit(char *o, size_t cap, size_t *at, const char *lit)
{
    size_t n = strlen(lit);

    if (n > cap - *at) {
        return false;
    }
    memcpy(o + *at, lit, n);
    *at += n;
    return true;
}

size_t
probe_nats_connect_line(char *out, size_t cap, const char *fields,
                        const char *user, const char *password)
{
    size_t at = 0;
    bool   ok;

    ok = probe_nats_lit(out, cap, &at, "CONNECT {") &&
         probe_nats_lit(out, cap, &at, fields);
    if (user != NULL) {
        ok = ok && probe_nats_lit(out, cap, &at, ",\"user\":") &&
             probe_nats_json(out, cap, &at, user);
        if (password != NULL) {
            ok = ok && probe_nats_lit(out, cap, &at, ",\"pass\":") &&
                 probe_nats_json(out, cap, &at, password);
        }
    } else if (password != NULL) {
        ok = ok && probe_nats_lit(out, cap, &at, ",\"auth_token\":") &&
             probe_nats_json(out, cap, &at, password);
    }
    ok = ok && probe_nats_lit(out, cap, &at, "}\r\n");
    return ok ? at : 0;
}

/*
 * Queue CONNECT with the credentials. Queues nothing if they do not fit
 * p->out; the server then refuses the PING, which names the problem well
 * enough.
 */
static void
probe_nats_connect(struct probe *p)
{
    char   o[PROBE_OUT_MAX];
    size_t n;

    n = probe_nats_connect_line(o, sizeof(o),
                                "\"verbose\":false,\"pedantic\":false",
                                p->params->user, p->params->password);
    if (n > 0) {
        probe_out_append(p, o, n);
    }
}

static enum probe_verdict
probe_nats_after_ping(struct probe *p, const uint8_t *buf, size_t len)
{
    const uint8_t *line;
    size_t         linelen, used;

    while (p->consumed < len) {
        line = buf + p->consumed;
        if (!probe_line(line, len - p->consumed, &linelen, &used)) {
            /* Fail early on a line that cannot become one we know. */
            if (line[0] == 'P' || line[0] == 'I' || line[0] == '+'
                || line[0] == '-')
            {
                return probe_more(p, len);
            }
            goto unexpected;
        }
        if (linelen == 4 && memcmp(line, "PONG", 4) == 0) {
            return PROBE_PASS;
        }
        if (linelen == 4 && memcmp(line, "PING", 4) == 0) {
            probe_out_append(p, PROBE_NATS_PONG, sizeof(PROBE_NATS_PONG) - 1);
        } else if (linelen > 0 && line[0] == '-') {
            return probe_nats_error(p, line, linelen);
        } else if (!(linelen == 3 && memcmp(line, "+OK", 3) == 0)
                   && !probe_nats_info(p, line, linelen))
        {
            goto unexpected;
        }
        p->consumed += used;
    }
    return probe_more(p, len);

unexpected:
    probe_fail_unexpected(p, buf + p->consumed, len - p->consumed);
    return PROBE_FAIL;
}

static enum probe_verdict
probe_nats_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    size_t linelen, used;

    if (p->step == PROBE_NATS_WANT_INFO) {
        if (len == 0) {
            return PROBE_MORE;
        }
        if (buf[0] != '-' && probe_match(buf, len, "INFO", 4) == PROBE_FAIL) {
            goto unexpected;
        }
        if (!probe_line(buf, len, &linelen, &used)) {
            return probe_more(p, len);
        }
        if (buf[0] == '-') {
            return probe_nats_error(p, buf, linelen);
        }
        if (!probe_nats_info(p, buf, linelen)) {
            goto unexpected;
        }
        p->consumed = used;
        p->step = PROBE_NATS_WANT_PONG;
        if (probe_has_auth(p->params)) {
            probe_nats_connect(p);
        }
        probe_out_append(p, PROBE_NATS_PING, sizeof(PROBE_NATS_PING) - 1);
    }
    return probe_nats_after_ping(p, buf, len);

unexpected:
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

const struct probe_ops probe_nats_ops = {
    .name = "nats",
    .start = probe_nats_start,
    .judge = probe_nats_judge,
};
